"""Scheduled quality checks in `meshgate serve`: one daemon thread, off unless configured.

A product is scheduled by its own `quality_schedule`, else by `server.quality_schedule`, and
only when it declares expectations. Each product runs first when the server starts, then
every interval after its last run; a failing run is logged and retried at the next interval,
never stopping the thread or the server.
"""

from __future__ import annotations

import logging
import threading
import time

from meshgate.catalog.config import duration_seconds
from meshgate.errors import MeshgateError
from meshgate.quality.runner import run_checks
from meshgate.service import QueryService

LOG = logging.getLogger("meshgate.quality")


def scheduled_intervals(service: QueryService) -> dict[tuple[str, str], float]:
    """(domain, product) -> seconds between runs, for every scheduled product."""
    default = service.definition.server.quality_schedule
    intervals = {}
    for key, config in sorted(service.definition.products.items()):
        every = config.quality_schedule or default
        if config.quality and every is not None:
            intervals[key] = float(duration_seconds(every))
    return intervals


class QualitySchedule:
    """Runs each scheduled product's checks every its interval until `stop()`."""

    def __init__(self, service: QueryService) -> None:
        self._service = service
        self._intervals = scheduled_intervals(service)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="meshgate-quality",
                                        daemon=True)  # fmt: skip

    @property
    def products(self) -> list[str]:
        return [f"{domain}.{name}" for domain, name in self._intervals]

    def start(self) -> None:
        if self._intervals:
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        due = dict.fromkeys(self._intervals, time.monotonic())
        while not self._stopped.is_set():
            now = time.monotonic()
            for key in [k for k, at in due.items() if at <= now]:
                if self._stopped.is_set():
                    return
                self._run(key)
                due[key] = time.monotonic() + self._intervals[key]
            self._stopped.wait(max(0.0, min(due.values()) - time.monotonic()))

    def _run(self, key: tuple[str, str]) -> None:
        product = self._service.catalog.products[key]
        try:
            runs = run_checks(self._service, [product])
        except MeshgateError as exc:
            LOG.warning("quality checks of %s did not run: %s", product.qualified_name, exc)
            return
        failed = [r.result.expectation for r in runs if r.result.outcome != "pass"]
        if failed:
            LOG.warning("quality of %s: %d of %d expectations failed: %s",
                        product.qualified_name, len(failed), len(runs), ", ".join(failed))
        else:
            LOG.info("quality of %s: %d expectations passed", product.qualified_name, len(runs))
