"""Admission: how many queries run at once, in total and per principal
(`server.limits.max_concurrent_queries[_per_user]`).

A query holds a slot from its start until its stream is read to the end, fails or is closed;
one past a limit waits up to `queue_timeout_seconds` for a slot, then fails with
RESOURCE_EXHAUSTED naming the limit. A stream its client abandons without closing releases
its slot when it is collected (`Slot` is released by a finalizer, on the clean-up thread of
`collected`, as well as explicitly).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from meshgate.errors import ResourceExhausted
from meshgate.execution.collected import on_collect


@dataclass(frozen=True)
class ConcurrencyLimits:
    max_queries: int | None = None
    max_queries_per_user: int | None = None
    queue_timeout_seconds: float = 5.0


class Slot:
    """One admitted query; `release` is idempotent."""

    def __init__(self, slots: QuerySlots, user: str) -> None:
        self._slots = slots
        self._user = user
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._slots._leave(self._user)


class QuerySlots:
    """Counts running queries; thread-safe, one per service."""

    def __init__(self, limits: ConcurrencyLimits) -> None:
        self._limits = limits
        self._running: Counter[str] = Counter()
        self._total = 0
        self._changed = threading.Condition()

    def running(self, user: str | None = None) -> int:
        with self._changed:
            return self._total if user is None else self._running[user]

    def admit(self, user: str) -> Slot:
        """A slot for one of `user`'s queries, waiting for one at most the queue timeout."""
        limits = self._limits
        give_up = time.monotonic() + limits.queue_timeout_seconds
        with self._changed:
            while True:
                refusal = self._refusal(user)
                if refusal is None:
                    self._running[user] += 1
                    self._total += 1
                    return Slot(self, user)
                left = give_up - time.monotonic()
                if left <= 0:
                    raise refusal
                self._changed.wait(left)

    def _refusal(self, user: str) -> ResourceExhausted | None:
        limits = self._limits
        wait = f"waited {limits.queue_timeout_seconds:g} s for a slot"
        per_user = limits.max_queries_per_user
        if per_user is not None and self._running[user] >= per_user:
            return ResourceExhausted(
                f"you already run {per_user} queries at once, the most this server allows one "
                f"user (server.limits.max_concurrent_queries_per_user); {wait}. Finish or "
                "close the streams you no longer read, then retry, or ask an administrator "
                "to raise the limit", limit="max_concurrent_queries_per_user")
        total = limits.max_queries
        if total is not None and self._total >= total:
            return ResourceExhausted(
                f"the server already runs {total} queries at once, the most it allows "
                f"(server.limits.max_concurrent_queries); {wait}. Retry in a moment, or ask "
                "an administrator to raise the limit", limit="max_concurrent_queries")
        return None

    def _leave(self, user: str) -> None:
        with self._changed:
            self._running[user] -= 1
            if self._running[user] <= 0:
                del self._running[user]
            self._total -= 1
            self._changed.notify_all()


def holding(reader: pa.RecordBatchReader, slot: Slot) -> pa.RecordBatchReader:
    """`reader`, releasing `slot` when it ends, fails or is closed, or, never started, is
    collected."""
    batches = _releasing(reader, slot)
    on_collect(batches, slot.release)  # on the clean-up thread: `collected` says why
    return pa.RecordBatchReader.from_batches(reader.schema, batches)


def _releasing(reader: pa.RecordBatchReader, slot: Slot) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    finally:
        reader.close()
        slot.release()
