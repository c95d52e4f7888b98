"""A served deployment's life: configuration reloads, and a graceful end on SIGTERM.

Reload (SIGHUP, or a changed `*.yaml` under the config directory when
`server.reload_poll_seconds` is set): the directory is loaded and validated as at start; a bad
one is logged with its problems and the running definition keeps serving. A good one is
swapped into the one `QueryService` (`QueryService.reconfigure`), so connections, sessions
and tokens stay; sources whose settings did not change keep their connectors (and pools), the
others are closed once running queries had their grace period. Listening addresses, the audit
file and the log format are read once, at start.

Shutdown (SIGTERM, SIGINT): `/readyz` turns not-ready, new calls are refused, running ones
get `server.shutdown_grace_seconds` to finish and are then cancelled; past that and a margin
the process exits hard rather than hang.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, cast

from meshgate.catalog.config import ServerConfig
from meshgate.catalog.tls import TlsMaterial
from meshgate.errors import MeshgateError
from meshgate.server.app import MeshgateFlightServer
from meshgate.server.location import listening
from meshgate.server.memory import collect_garbage_less_often
from meshgate.server.ops import OpsEndpoint, WSGIApplication
from meshgate.service import QueryService, connect_source, load_definition
from meshgate.spi import Connector

if TYPE_CHECKING:
    from meshgate.server.postgres import PostgresFrontEnd

log = logging.getLogger(__name__)

# Past the grace period, cancelled queries get this long to unwind before a hard exit.
HARD_EXIT_MARGIN_SECONDS = 10.0
EXIT_STUCK = 1
# Settings that only a restart applies: they shape listeners, log handlers, the handle stores
# and the merge engine's memory and concurrency slots, all made once at start.
_AT_START = ("host", "port", "postgres_port", "postgres_auth",
             "http_port", "log_format", "audit", "tls",
             "replicas", "state_directory", "token_ttl_seconds", "ticket_ttl_seconds",
             "prepared_statement_ttl_seconds", "max_open_handles", "limits.merge_memory_limit",
             "limits.max_concurrent_queries", "limits.max_concurrent_queries_per_user",
             "limits.queue_timeout_seconds")


class Reloader:
    """Loads the config directory again and swaps it in if valid; one reload at a time."""

    def __init__(self, service: QueryService, directory: Path) -> None:
        self._service = service
        self._directory = directory
        self._lock = threading.Lock()

    def reload(self, reason: str) -> bool:
        """Whether the directory's current definition now serves."""
        with self._lock:
            try:
                definition = load_definition(self._directory)
            except MeshgateError as exc:
                log.error("configuration reload (%s) rejected, the previous configuration "
                          "keeps serving: %s", reason, exc)  # fmt: skip
                self._service.metrics.config_reloaded(applied=False)
                return False
            old = self._service.definition
            kept = {name: connector for name, connector in self._service.connectors.items()
                    if old.sources.get(name) == definition.sources.get(name)
                    and old.directory == definition.directory}  # fmt: skip
            opened: dict[str, Connector] = {}
            try:
                for name in definition.sources:
                    if name not in kept:
                        opened[name] = connect_source(definition, name)
            except MeshgateError as exc:
                for connector in opened.values():
                    connector.close()
                log.error("configuration reload (%s) rejected, the previous configuration "
                          "keeps serving: %s", reason, exc)  # fmt: skip
                self._service.metrics.config_reloaded(applied=False)
                return False
            retired = [c for n, c in self._service.connectors.items() if n not in kept]
            self._service.reconfigure(definition, {**kept, **opened})
            self._service.metrics.config_reloaded(applied=True)
            collect_garbage_less_often()  # the old definition's objects may go now
        for setting in _AT_START:
            if _setting(old.server, setting) != _setting(definition.server, setting):
                log.warning("configuration reload: server.%s changed; it applies at the next "
                            "restart", setting)  # fmt: skip
        log.info("configuration reloaded (%s): generation %d, %d products, %d sources "
                 "(%d reconnected)", reason, self._service.generation,
                 len(definition.products), len(definition.sources), len(opened))  # fmt: skip
        if retired:
            _close_later(retired, definition.server.shutdown_grace_seconds)
        return True


def _setting(server: object, dotted: str) -> object:
    value = server
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _close_later(connectors: list[Connector], seconds: float) -> None:
    """Close `connectors` once queries that started on them had `seconds` to finish."""

    def close() -> None:
        for connector in connectors:
            try:
                connector.close()
            except Exception:
                log.exception("closing a replaced source's connector failed")

    timer = threading.Timer(seconds, close)
    timer.daemon = True
    timer.start()


def _snapshot(directory: Path) -> dict[Path, tuple[int, int]]:
    """Each config file under `directory` with its modification time and size."""
    found: dict[Path, tuple[int, int]] = {}
    for path in directory.rglob("*"):
        if path.suffix in {".yaml", ".yml"}:
            try:
                stat = path.stat()
            except OSError:
                continue
            found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


class ConfigWatch:
    """Polls the config directory's files and calls `changed()` when any differs."""

    def __init__(self, directory: Path, interval: float, changed: Callable[[], object]) -> None:
        self._directory = directory
        self._interval = interval
        self._changed = changed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="meshgate-config-watch",
                                        daemon=True)  # fmt: skip

    def start(self) -> ConfigWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        last = _snapshot(self._directory)
        while not self._stop.wait(self._interval):
            now = _snapshot(self._directory)
            if now != last:
                last = now
                try:
                    self._changed()
                except Exception:
                    log.exception("configuration reload failed")


class Serving:
    """The Flight SQL server with its side listeners, from start to a graceful end."""

    def __init__(self, service: QueryService, host: str, port: int,
                 tls: TlsMaterial | None = None) -> None:
        self._service = service
        self._config: ServerConfig = service.definition.server
        location, options = listening(host, port, tls)
        self.flight = MeshgateFlightServer(service, location, self._config, **options)
        self._tls = tls
        self._host = host
        self._reloader = Reloader(service, service.definition.directory)
        self._stop = False
        self._hangup = False
        self.ops: OpsEndpoint | None = None

    def _catalog_page(self) -> WSGIApplication:
        """The catalog web page, following the service through reloads; its connection
        strings name this server's Flight SQL address."""
        from meshgate.server.catalog_web import Connection, catalog_app

        service = self._service
        connection = Connection(self._host, self.flight.port, tls=self._tls is not None)
        app = catalog_app(lambda: service, connection, self._config.token_ttl_seconds)
        return cast("WSGIApplication", app.wsgi_app)  # Flask's own WSGI typing is narrower

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._hangup = True
        else:
            self._stop = True

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT; reload on SIGHUP. Call from the main thread."""
        config = self._config
        self._service.note_served_versions()
        if config.http_port is not None:
            try:
                self.ops = OpsEndpoint(self._service, self._host, config.http_port,
                                       self._catalog_page()).start()
            except MeshgateError:
                self.flight.shutdown()
                raise
        postgres = None
        if config.postgres_port is not None:
            # Imported here: the PostgreSQL front end's library loads only when switched on.
            from meshgate.server.postgres import PostgresFrontEnd

            postgres = PostgresFrontEnd(self._service, self._host, config.postgres_port,
                                        self._tls, auth=config.postgres_auth).start()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        watch = None
        if config.reload_poll_seconds is not None:
            watch = ConfigWatch(self._service.definition.directory, config.reload_poll_seconds,
                                lambda: self._reloader.reload("config files changed")).start()
        try:
            while not self._stop:
                time.sleep(0.2)
                if self._hangup:
                    self._hangup = False
                    self._reloader.reload("SIGHUP")
        finally:
            if watch is not None:
                watch.stop()
            self._shut_down(postgres)

    def _shut_down(self, postgres: PostgresFrontEnd | None) -> None:
        grace = self._service.definition.server.shutdown_grace_seconds
        if self.ops is not None:
            self.ops.readiness.draining = True
        log.info("shutting down: refusing new calls; %d running queries have %gs to finish",
                 self.flight.statements.running(), grace)  # fmt: skip
        hard = threading.Timer(grace + HARD_EXIT_MARGIN_SECONDS, _exit_stuck)
        hard.daemon = True
        hard.start()
        stopping = threading.Thread(target=self.flight.shutdown, name="meshgate-shutdown",
                                    daemon=True)  # fmt: skip
        stopping.start()
        if postgres is not None:
            postgres.shutdown()
        stopping.join(grace)
        if stopping.is_alive():
            cancelled = self.flight.statements.cancel_running()
            log.warning("shutting down: grace period over, cancelled %d running queries",
                        cancelled)  # fmt: skip
            stopping.join()
        if self.ops is not None:
            self.ops.shutdown()
        hard.cancel()


def _exit_stuck() -> None:
    log.error("shutting down: calls still running %gs past the grace period; exiting hard",
              HARD_EXIT_MARGIN_SECONDS)  # fmt: skip
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_STUCK)
