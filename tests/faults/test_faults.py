"""A PostgreSQL source that refuses, stops answering, crawls or dies mid-stream.

Each fault is made by the `FaultProxy` between meshgate and the real PostgreSQL. What a user
must notice: the queries that need the source fail with UNAVAILABLE or DEADLINE_EXCEEDED
(the source named to admins only), a stream cut in the middle ends in an error and never as
a short result, queries of other sources keep answering, and once the source is back the
next query answers in full, without a restart of meshgate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import adbc_driver_flightsql.dbapi as adbc
import pyarrow as pa
import pytest
from pyarrow import flight

from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.faults.conftest import CONNECT_TIMEOUT_SECONDS, ROWS, active_backends
from tests.faults.proxy import FaultProxy
from tests.server.flightsql_clients import Session
from tests.waiting import within

pytestmark = pytest.mark.postgres

COUNT_EVENTS = "SELECT count(*) AS n FROM ops.events"
ALL_EVENTS = "SELECT id, payload FROM ops.events"
LOCAL = "SELECT count(*) AS n FROM ops.things"
CUT_AFTER_BYTES = 24_000_000  # of about 50 MB of COPY data: past the driver's first batch


def query(session: Session, sql: str) -> pa.Table:
    return session.fetch(pb.CommandStatementQuery(query=sql))[1]


def count(session: Session, sql: str) -> int:
    return int(query(session, sql).column(0)[0].as_py())


def unavailable_message(session: Session, sql: str) -> str:
    with pytest.raises(flight.FlightUnavailableError) as raised:
        query(session, sql)
    return str(raised.value)


def warm_pool(service: QueryService, proxy: FaultProxy, connections: int) -> None:
    """Leave `connections` idle pooled connections (run that many queries at once)."""
    prepared = service.prepare(COUNT_EVENTS, service.principal("admin"))
    readers = [service.execute(prepared) for _ in range(connections)]
    # A one-fragment plan starts at its first read: each first batch holds a connection.
    firsts = [r.read_next_batch() for r in readers]
    assert [b.column(0)[0].as_py() for b in firsts] == [ROWS] * connections
    for reader in readers:
        reader.read_all()
    assert proxy.connections() >= connections


def read_chunks(stream: flight.FlightStreamReader, seen: list[int]) -> None:
    """Read to the end (StopIteration would be a short success), noting each batch's rows."""
    while True:
        seen.append(stream.read_chunk().data.num_rows)


def read_batches(reader: pa.RecordBatchReader, seen: list[int]) -> None:
    for batch in reader:
        seen.append(batch.num_rows)


@pytest.fixture
def adbc_analyst(uri: str) -> Iterator[adbc.Connection]:
    with adbc.connect(uri, db_kwargs={"username": "analyst", "password": "analyst"}) as conn:
        yield conn


def test_a_refused_source_is_unavailable_named_to_admins_only_then_recovers(
    admin: Session, analyst: Session, service: QueryService, proxy: FaultProxy
) -> None:
    warm_pool(service, proxy, 3)
    proxy.refuse()  # the server is down: its port refuses, open connections are dropped
    for _ in range(2):  # and the server keeps answering it the same way
        told = unavailable_message(analyst, COUNT_EVENTS)
        assert "a source this query reads is unavailable right now" in told
        assert "error id" in told
        for physical in ("warehouse", "PostgreSQL", "postgres", str(proxy.port), "127.0.0.1",
                         "meshgate_test_", "Traceback"):
            assert physical not in told
        told_admin = unavailable_message(admin, COUNT_EVENTS)
        assert "source 'warehouse', which this query reads, is unavailable" in told_admin
        for secret in (str(proxy.port), "127.0.0.1", "meshgate_test_", "Traceback"):
            assert secret not in told_admin
        assert count(analyst, LOCAL) == 1000  # other sources are unaffected
    proxy.resume()  # back on the same port; the pool's old connections are all dead
    assert count(analyst, COUNT_EVENTS) == ROWS  # the first query after it answers in full
    assert query(analyst, ALL_EVENTS).num_rows == ROWS


def test_a_source_that_accepts_and_never_answers_is_unavailable_after_the_connect_timeout(
    analyst: Session, service: QueryService, proxy: FaultProxy
) -> None:
    warm_pool(service, proxy, 1)
    proxy.refuse()
    proxy.resume()
    proxy.blackhole()  # the port accepts; nothing ever comes back
    started = time.monotonic()
    told = unavailable_message(analyst, COUNT_EVENTS)
    waited = time.monotonic() - started
    assert "a source this query reads is unavailable right now" in told
    # The dead pooled connection is dropped, then one new connection times out (a retry at
    # most): a bound, not a speed goal.
    assert waited < 4 * CONNECT_TIMEOUT_SECONDS + 5
    assert count(analyst, LOCAL) == 1000
    proxy.resume()
    assert count(analyst, COUNT_EVENTS) == ROWS


def test_a_slow_source_meets_the_deadline_while_other_queries_answer(
    analyst: Session, proxy: FaultProxy, pg_dsn: str
) -> None:
    info = analyst.info(pb.CommandStatementQuery(query=ALL_EVENTS))
    proxy.delay = 0.05  # per 64 KiB chunk: the whole table would take minutes
    headers = [(n.encode(), v.encode()) for n, v in analyst.headers]
    outcome: list[BaseException] = []

    def slow_read() -> None:
        options = flight.FlightCallOptions(headers=headers, timeout=3.0)
        try:
            analyst.client.do_get(info.endpoints[0].ticket, options).read_all()
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=slow_read)
    reader.start()
    assert within(10, lambda: active_backends(pg_dsn) == 1)
    assert count(analyst, LOCAL) == 1000  # answered while the slow query still runs
    assert not outcome
    reader.join(30)
    assert len(outcome) == 1
    assert isinstance(outcome[0], flight.FlightTimedOutError)
    assert within(5, lambda: active_backends(pg_dsn) == 0)  # and PostgreSQL stopped it
    proxy.resume()
    assert count(analyst, COUNT_EVENTS) == ROWS


def test_a_source_dying_mid_stream_fails_the_pyarrow_stream(
    analyst: Session, proxy: FaultProxy, service: QueryService
) -> None:
    info = analyst.info(pb.CommandStatementQuery(query=ALL_EVENTS))
    proxy.cut_after(CUT_AFTER_BYTES)
    stream = analyst.client.do_get(info.endpoints[0].ticket, analyst.options)
    seen: list[int] = []  # rows per batch received before the error
    with pytest.raises(flight.FlightUnavailableError) as raised:
        read_chunks(stream, seen)
    assert len(seen) > 1  # it did stream, and then it failed
    assert 0 < sum(seen) < ROWS
    assert "a source this query reads is unavailable right now" in str(raised.value)
    assert "warehouse" not in str(raised.value)
    proxy.resume()
    assert query(analyst, ALL_EVENTS).num_rows == ROWS
    assert within(5, lambda: service.connectors["warehouse"].pool_usage().in_use == 0)  # type: ignore[union-attr]


def test_a_source_dying_mid_stream_fails_the_adbc_fetch(
    adbc_analyst: adbc.Connection, proxy: FaultProxy
) -> None:
    with adbc_analyst.cursor() as cursor:
        cursor.execute(ALL_EVENTS)
        proxy.cut_after(CUT_AFTER_BYTES)
        reader = cursor.fetch_record_batch()
        seen: list[int] = []
        with pytest.raises(OSError, match="unavailable right now") as raised:
            read_batches(reader, seen)
        assert 0 < sum(seen) < ROWS
    message = str(raised.value)
    assert "Unavailable" in message  # the gRPC code
    assert "a source this query reads is unavailable right now" in message
    proxy.resume()
    with adbc_analyst.cursor() as cursor:
        cursor.execute(ALL_EVENTS)
        assert cursor.fetch_arrow_table().num_rows == ROWS


def test_a_source_restarted_between_two_queries_answers_the_next_in_full(
    analyst: Session, service: QueryService, proxy: FaultProxy
) -> None:
    warm_pool(service, proxy, 3)  # three idle pooled connections ...
    proxy.refuse()  # ... all dropped by the restart, which nobody noticed
    proxy.resume()
    assert count(analyst, COUNT_EVENTS) == ROWS
    assert query(analyst, ALL_EVENTS).num_rows == ROWS
