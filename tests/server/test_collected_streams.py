"""Streams the server lets go of release their tickets without deadlocking the registry.

Under a PostgreSQL outage clients abandon many streams at once. A stream's clean-up ran
wherever the stream was reclaimed: inside the ticket registry's lock (a collection, or a
purged ticket dropping the last reference to its run), in the thread holding it, and every
later query of the server, those reading no PostgreSQL too, waited for that lock forever
(tests/faults/test_load.py; py-spy showed `_Handles.add -> _purge -> finalize -> release ->
_Handles.discard`). Here each abandoned stream is reachable only from its own ticket, so
purging the expired ticket reclaims it inside the lock, every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pyarrow as pa
import pytest

from meshgate.execution.collected import on_collect
from meshgate.server.statements import OpenStatement, _batches, _Handles
from meshgate.service import PreparedQuery, QueryService

ROUNDS = 20
TTL_SECONDS = 0.01
SCHEMA = pa.schema([pa.field("n", pa.int64())])


def abandon(tickets: _Handles, prepared: PreparedQuery, started: bool,
            release: Callable[[bytes], None]) -> None:  # fmt: skip
    """File a ticket and a stream of it, registered as StatementRegistry.stream does, that
    only the ticket keeps alive (its cancel token reaches the run, as a running query's
    does); the stream never started, or half read."""
    statement = OpenStatement(prepared.principal, prepared)
    handle = tickets.add(statement)
    batch = pa.record_batch([pa.array([1])], schema=SCHEMA)
    reader = pa.RecordBatchReader.from_batches(SCHEMA, [batch, batch])
    stream = _batches(reader, iter(()), lambda: release(handle), lambda: False)
    on_collect(stream, lambda: release(handle))
    if started:
        next(stream)
    run = [stream]
    statement.cancel.on_cancel(run.clear)


@pytest.mark.parametrize("started", [False, True], ids=["never started", "half read"])
def test_a_stream_reclaimed_inside_the_registry_releases_its_ticket(
    service: QueryService, started: bool
) -> None:
    analyst = service.principal("analyst")
    prepared = service.prepare("SELECT order_id FROM sales.orders LIMIT 1", analyst)
    tickets = _Handles(ttl_seconds=TTL_SECONDS, limit=ROUNDS * 2)
    released: list[bytes] = []

    def release(handle: bytes) -> None:
        tickets.discard(handle)
        released.append(handle)

    failed: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(ROUNDS):
                abandon(tickets, prepared, started, release)
                time.sleep(TTL_SECONDS * 2)  # expired: the next call purges it, in the lock
        except BaseException as exc:
            failed.append(exc)

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the ticket registry deadlocked on a reclaimed stream"
    assert failed == []
    tickets.add(OpenStatement(analyst, prepared))  # purges the last one
    deadline = time.monotonic() + 10
    while len(set(released)) < ROUNDS and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(set(released)) == ROUNDS  # every abandoned stream let its ticket go
