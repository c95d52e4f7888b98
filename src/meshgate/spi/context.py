"""What one query's run carries to every connector call: who, until when, how much, which values.

The front end makes one `QueryContext` per execution; execution hands the same object to each
fragment's `Connector.execute`, so a deadline, a cancel or a limit reaches running work in one
way everywhere. It lives in the SPI because connectors receive it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


class CancelToken:
    """Set once, never cleared. Running work registers a callback (a driver's cancel, a
    DuckDB interrupt) that runs when the token is set, or at once if it already is."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` on cancel; returns the function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                key = self._next
                self._next += 1
                self._callbacks[key] = callback

                def unregister() -> None:
                    with self._lock:
                        self._callbacks.pop(key, None)

                return unregister
        callback()
        return lambda: None

    @contextmanager
    def stopping(self, stop: Callable[[], None]) -> Iterator[None]:
        """While the block runs, a cancel calls `stop` (a driver's cancel, an interrupt);
        once it has left, never: the driver object `stop` uses may be closed right after."""
        lock = threading.Lock()
        running = True

        def guarded() -> None:
            with lock:
                if running:
                    stop()

        unregister = self.on_cancel(guarded)
        try:
            yield
        finally:
            unregister()
            with lock:
                running = False


@dataclass(frozen=True)
class QueryLimits:
    """Bounds one query's run must stay inside; None is unbounded."""

    max_result_rows: int | None = None
    merge_memory_bytes: int | None = None


@dataclass(frozen=True)
class ScanSlice:
    """One part of a scan its source split for several result endpoints
    (`Connector.share_scan`): the source that made it and its own opaque `token`."""

    source: str
    token: str


@dataclass(frozen=True)
class QueryContext:
    """One execution of one query. `deadline` is on `time.monotonic()`'s clock; `parameters`
    are the client's bound values, by position (a fragment's handle says which it uses)."""

    query_id: str
    user: str
    deadline: float | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    limits: QueryLimits = field(default_factory=QueryLimits)
    parameters: tuple[Any, ...] = ()
    # The part of the one fragment's scan this run reads (several result endpoints).
    slice: ScanSlice | None = None

    @staticmethod
    def standalone(user: str = "", parameters: tuple[Any, ...] = ()) -> QueryContext:
        """A context of its own (a tool or a test calling a connector directly)."""
        return QueryContext(uuid.uuid4().hex, user, parameters=parameters)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline
