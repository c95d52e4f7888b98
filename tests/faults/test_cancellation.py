"""Cancelling from every side stops the PostgreSQL backend within 2 s, and frees what it held.

`spin` makes PostgreSQL count for hours before its only row, so a query of it is active at
PostgreSQL until something stops it; a cross join of `events` with itself streams rows for
hours. The proof is `pg_stat_activity` of the test database: no active backend within 2 s of
the cancel (client cancel over ADBC, Flight SQL's older CancelQuery action, or the client
process killed), and the server's fragment threads and pooled connections released.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc
import grpc  # type: ignore[import-untyped]
import pyarrow as pa
import pytest

from meshgate.server import MeshgateFlightServer
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.faults.conftest import active_backends
from tests.server.flightsql_clients import Session, pack, unpack
from tests.waiting import within

pytestmark = pytest.mark.postgres

SPIN = "SELECT n FROM ops.spin"
ENDLESS = "SELECT a.id, b.payload FROM ops.events AS a CROSS JOIN ops.events AS b"
# events or spin (PostgreSQL) crossed with things (DuckDB): the PostgreSQL fragment feeds the merge.
MERGED = "SELECT e.id, e.payload, t.id AS thing FROM ops.events AS e CROSS JOIN ops.things AS t"
SPIN_MERGED = "SELECT s.n, t.id AS thing FROM ops.spin AS s CROSS JOIN ops.things AS t"
NO_ROW_YET = (SPIN, SPIN_MERGED)
STOPPED_WITHIN_SECONDS = 2.0


def released(service: QueryService) -> bool:
    """No fragment thread runs and no connection is held by a read (the pool's or one of
    the DuckDB reader's)."""
    threads = [t for t in threading.enumerate() if t.name.startswith("fragment-")]
    usage = service.connectors["warehouse"].pool_usage()
    return not threads and usage is not None and usage.in_use == 0


@pytest.fixture
def adbc_analyst(uri: str) -> Iterator[adbc.Connection]:
    with adbc.connect(uri, db_kwargs={"username": "analyst", "password": "analyst"}) as conn:
        yield conn


@pytest.mark.parametrize("sql", [SPIN, ENDLESS], ids=["before-the-first-row", "mid-stream"])
def test_adbc_cancel_stops_the_postgres_backend(
    adbc_analyst: adbc.Connection, pg_dsn: str, service: QueryService, sql: str
) -> None:
    cursor = adbc_analyst.cursor()
    cursor.execute(sql)
    failures: list[BaseException] = []

    def fetch() -> None:
        try:
            for _ in cursor.fetch_record_batch():
                pass
        except BaseException as exc:
            failures.append(exc)

    fetcher = threading.Thread(target=fetch, daemon=True)
    fetcher.start()
    assert within(10, lambda: active_backends(pg_dsn) == 1)
    cursor.adbc_cancel()
    assert within(STOPPED_WITHIN_SECONDS, lambda: active_backends(pg_dsn) == 0)
    fetcher.join(10)
    assert len(failures) == 1  # the fetch ended in an error, not as a result
    assert "context canceled" in str(failures[0])  # ADBC's word for its own cancel
    assert within(5, lambda: released(service))
    cursor.close()


def test_the_cancel_query_action_stops_the_postgres_backend(
    analyst: Session, server: MeshgateFlightServer, pg_dsn: str, service: QueryService
) -> None:
    info = analyst.info(pb.CommandStatementQuery(query=SPIN))
    errors: list[grpc.RpcError] = []
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        # A raw gRPC DoGet: pyarrow's client turns a CANCELLED status into a SIGINT.
        do_get = channel.unary_stream("/arrow.flight.protocol.FlightService/DoGet",
                                      request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)  # fmt: skip
        call = do_get(info.endpoints[0].ticket.serialize(),
                      metadata=[("authorization", dict(analyst.headers)["authorization"])])

        def drain() -> None:
            try:
                for _ in call:
                    pass
            except grpc.RpcError as error:
                errors.append(error)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        assert within(10, lambda: active_backends(pg_dsn) == 1)
        request = pb.ActionCancelQueryRequest(info=info.serialize())
        [body] = analyst.action("CancelQuery", pack(request))
        result = unpack(body, pb.ActionCancelQueryResult())
        assert result.result == pb.ActionCancelQueryResult.CANCEL_RESULT_CANCELLED
        assert within(STOPPED_WITHIN_SECONDS, lambda: active_backends(pg_dsn) == 0)
        reader.join(5)
    assert [e.code() for e in errors] == [grpc.StatusCode.CANCELLED]
    assert within(5, lambda: released(service))
    # A ticket that is gone (or never was) is not cancellable; a bad body is the caller's error.
    [body] = analyst.action("CancelQuery", pack(request))
    assert unpack(body, pb.ActionCancelQueryResult()).result == \
        pb.ActionCancelQueryResult.CANCEL_RESULT_NOT_CANCELLABLE
    with pytest.raises(pa.ArrowInvalid, match="the CancelQuery action body must be"):
        analyst.action("CancelQuery", b"\x00garbage")


@pytest.mark.parametrize("sql", [MERGED, SPIN_MERGED])
def test_the_cross_source_queries_feed_a_merge(service: QueryService, sql: str) -> None:
    steps = service.explain(sql, service.principal("admin")).column("step").to_pylist()
    assert steps[-1] == "merge"
    assert sum(step.startswith("fragment") for step in steps) == 2


@pytest.mark.parametrize("sql", [SPIN, ENDLESS, MERGED, SPIN_MERGED],
                         ids=["before-the-first-row", "mid-stream", "mid-stream-into-a-merge",
                              "before-the-first-row-into-a-merge"])
def test_a_killed_client_process_stops_the_postgres_backend(
    uri: str, pg_dsn: str, service: QueryService, sql: str
) -> None:
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), *sys.path]))
    client = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.client_process", uri, "analyst", "analyst", sql],
        stdout=subprocess.PIPE, text=True, cwd=root, env=env,
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "reading"
        if sql not in NO_ROW_YET:  # rows flow: the client has read one batch and stopped reading
            assert client.stdout.readline().strip() == "stalled"
        # Running at PostgreSQL: one backend, or one per ctid range of a large scan.
        assert within(10, lambda: active_backends(pg_dsn) >= 1)
    finally:
        os.kill(client.pid, signal.SIGKILL)
        client.wait(10)
    assert within(STOPPED_WITHIN_SECONDS, lambda: active_backends(pg_dsn) == 0)
    assert within(5, lambda: released(service))
