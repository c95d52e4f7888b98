"""Short-lived work of a query on threads that outlive it.

A query starts a thread per fragment stream, per load, per range of a split scan. Each
`threading.Thread.start()` waits until the new thread holds the GIL, and while the query's
other threads decode batches that wait lasts up to the interpreter's switch interval: TPC-H
Q2 spent 8 ms of its 50 ms in `start()`, Q9 15 ms. A thread that finished its task waits
here for the next one instead, and handing it a task does not wait at all.

Not `concurrent.futures.ThreadPoolExecutor`: its threads are joined at interpreter exit,
and a task blocked on a source that never answers would then hang the process's exit; these
are daemon threads, as the ones they replace were. No bound on the number of threads: a
task may wait for another (a load reads a fragment's prefetch), so a bounded pool could
deadlock. Idle threads end after `IDLE_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

IDLE_SECONDS = 60.0
log = logging.getLogger(__name__)


class Task:
    """One piece of work handed to a thread: wait for it, or ask whether it still runs."""

    def __init__(self, target: Callable[..., object], args: tuple[Any, ...], name: str) -> None:
        self.name = name
        self._target = target
        self._args = args
        self._done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        return not self._done.is_set()

    def run(self) -> None:
        """The work itself, on the worker's thread."""
        try:
            self._target(*self._args)
        except BaseException:  # as a thread's own excepthook would, without ending the thread
            log.exception("background task %s failed", self.name)
        finally:
            self._target, self._args = _nothing, ()  # nothing of the query stays referenced
            self._done.set()


def _nothing() -> None:
    return None


class _Worker:
    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue[Task] = queue.SimpleQueue()


class _Idle:
    """The workers waiting for a task, and the lock over them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.workers: list[_Worker] = []


_idle = _Idle()


def _forget_parent_threads() -> None:
    """A forked child has none of its parent's threads (a task handed to one would never
    run), and the lock may have been held by one of them."""
    _idle.lock = threading.Lock()
    _idle.workers = []


os.register_at_fork(after_in_child=_forget_parent_threads)


def start_task(target: Callable[..., object], *args: Any, name: str) -> Task:
    """Run `target(*args)` on an idle daemon thread, or a new one if none is idle; `name`
    becomes the thread's name while it runs (profiles and stack dumps show it)."""
    task = Task(target, args, name)
    with _idle.lock:
        worker = _idle.workers.pop() if _idle.workers else None
    if worker is not None:
        worker.tasks.put(task)
        return task
    worker = _Worker()
    worker.tasks.put(task)
    threading.Thread(target=_serve, args=(worker,), name=name, daemon=True).start()
    return task


def idle_threads() -> int:
    with _idle.lock:
        return len(_idle.workers)


def _serve(worker: _Worker) -> None:
    current = threading.current_thread()
    while True:
        try:
            task = worker.tasks.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with _idle.lock:
                if worker in _idle.workers:  # not handed a task meanwhile: end
                    _idle.workers.remove(worker)
                    return
            task = worker.tasks.get()  # taken from the idle list just now: its task comes
        current.name = task.name
        task.run()
        current.name = "meshgate-idle"
        with _idle.lock:
            _idle.workers.append(worker)
