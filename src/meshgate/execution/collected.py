"""Clean-up for objects the garbage collector reclaims, run on a thread of its own.

A finalizer (`weakref.finalize`, a generator's `finally` when it is collected) runs in
whichever thread the collector happens to run in, at whatever allocation set it off: often a
thread inside a registry's lock. A clean-up that takes that lock there waits for itself
forever, and every later call that needs the lock waits behind it: under a PostgreSQL
outage (many streams abandoned at once) one such collection stopped every query of the
server, the ones reading no PostgreSQL included (tests/faults/test_load.py). So what a
collected object must release is only queued where it is collected (`queue.SimpleQueue.put`
is safe from finalizers) and done here, on the clean-up thread, which holds no lock.
"""

from __future__ import annotations

import logging
import queue
import threading
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)

_pending: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
_started = threading.Event()
_start_lock = threading.Lock()


def later(release: Callable[[], object]) -> None:
    """Run `release` soon on the clean-up thread; safe from a finalizer or a collection."""
    _pending.put(release)
    if not _started.is_set():
        # Not from a collection: the thread is started by `on_collect` before any finalizer
        # it registers can run, and `later` callers in a normal context may start it.
        _start()


def on_collect(obj: object, release: Callable[[], object]) -> None:
    """Like `weakref.finalize(obj, release)`, but `release` runs on the clean-up thread."""
    _start()
    weakref.finalize(obj, _pending.put, release)


def _start() -> None:
    if _started.is_set():
        return
    with _start_lock:
        if _started.is_set():
            return
        threading.Thread(target=_run, name="meshgate-collected", daemon=True).start()
        _started.set()


def _run() -> None:
    while True:
        release = _pending.get()
        try:
            release()
        except Exception:  # one failed clean-up must not stop the others
            log.exception("releasing a collected query stream failed")
