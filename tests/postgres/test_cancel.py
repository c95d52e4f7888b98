"""Stopping a long PostgreSQL query through the run's cancel token, seen from PostgreSQL.

The product reads a view that counts 10^11 rows: PostgreSQL works for hours before the first
row, so the Flight call's thread is blocked waiting for it and only the token (a client's
cancel, the call ending, a deadline) can stop the backend. `pg_stat_activity` is the proof.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc
import adbc_driver_postgresql.dbapi as pg
import grpc  # type: ignore[import-untyped]
import pytest
from pyarrow import flight

from meshgate.errors import QueryTimeout
from meshgate.server import MeshgateFlightServer, running_server
from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database
from tests.policy import mesh
from tests.server.flightsql_clients import Session
from tests.waiting import within

pytestmark = pytest.mark.postgres

VIEW = "cancel_probe_view"
PRODUCT = f"""
  - domain: hr
    name: probe
    table: {{source: lab_db, schema: public, table: {VIEW}}}
    columns:
      - {{name: n, type: BIGINT}}
"""
QUERY = "SELECT n FROM hr.probe"


@pytest.fixture(scope="module")
def dsn(pg_server_dsn: str) -> Iterator[str]:
    with fresh_pg_database(pg_server_dsn) as database:
        with pg.connect(database, autocommit=True) as connection, connection.cursor() as cursor:
            # In the select list the series streams; in FROM it would spill to temp files.
            cursor.execute(f"CREATE VIEW {VIEW} AS SELECT count(*)::bigint AS n "
                           "FROM (SELECT generate_series(1, 100000000000)) AS g")  # fmt: skip
        yield database


@pytest.fixture(scope="module")
def service(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    config = mesh.build(tmp_path_factory.mktemp("pgcancel"))
    text = (config / "mesh.yaml").read_text(encoding="utf-8")
    text = text.replace("sources:\n", "sources:\n  - {name: lab_db, kind: postgres, "
                        f"options: {{dsn: '{dsn}'}}}}\n", 1) + PRODUCT  # fmt: skip
    (config / "mesh.yaml").write_text(text, encoding="utf-8")
    svc = QueryService.from_config(config)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def server(service: QueryService) -> Iterator[MeshgateFlightServer]:
    with running_server(service) as running:
        yield running


@pytest.fixture
def analyst(server: MeshgateFlightServer) -> Iterator[Session]:
    session = Session(f"grpc://127.0.0.1:{server.port}", "analyst", "analyst")
    yield session
    session.close()


def running_probes(dsn: str) -> int:
    with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            f"AND query ILIKE '%{VIEW}%' AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0




def raw_do_get(server: MeshgateFlightServer, session: Session,
               ticket: bytes, channel: grpc.Channel) -> grpc.Future:  # fmt: skip
    """A DoGet over plain gRPC (pyarrow's client turns a CANCELLED status into a SIGINT)."""
    do_get = channel.unary_stream("/arrow.flight.protocol.FlightService/DoGet",
                                  request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)  # fmt: skip
    bearer = dict(session.headers)["authorization"]
    call: grpc.Future = do_get(flight.Ticket(ticket).serialize(),
                               metadata=[("authorization", bearer)])  # fmt: skip
    return call


def drain(call: grpc.Future, errors: list[grpc.RpcError]) -> threading.Thread:
    def read() -> None:
        try:
            for _ in call:
                pass
        except grpc.RpcError as error:
            errors.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


def test_cancel_flight_info_stops_the_postgres_backend(
    analyst: Session, server: MeshgateFlightServer, dsn: str
) -> None:
    info = analyst.info(pb.CommandStatementQuery(query=QUERY))
    errors: list[grpc.RpcError] = []
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = raw_do_get(server, analyst, info.endpoints[0].ticket.ticket, channel)
        reader = drain(call, errors)
        assert within(10, lambda: running_probes(dsn) == 1)
        request = flight_pb2.CancelFlightInfoRequest(
            info=flight_pb2.FlightInfo.FromString(info.serialize()))
        [body] = analyst.action("CancelFlightInfo", request.SerializeToString())
        assert flight_pb2.CancelFlightInfoResult.FromString(body).status == \
            flight_pb2.CANCEL_STATUS_CANCELLED
        started = time.monotonic()
        assert within(10, lambda: running_probes(dsn) == 0)  # the query would run for hours
        reader.join(5)
    assert time.monotonic() - started < 2.5
    assert [e.code() for e in errors] == [grpc.StatusCode.CANCELLED]
    assert "the query was cancelled" in (errors[0].details() or "")


def test_a_client_closing_the_stream_stops_the_postgres_backend(
    analyst: Session, server: MeshgateFlightServer, dsn: str
) -> None:
    info = analyst.info(pb.CommandStatementQuery(query=QUERY))
    errors: list[grpc.RpcError] = []
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = raw_do_get(server, analyst, info.endpoints[0].ticket.ticket, channel)
        reader = drain(call, errors)
        assert within(10, lambda: running_probes(dsn) == 1)
        call.cancel()  # what a client does when it closes a stream it no longer reads
        assert within(10, lambda: running_probes(dsn) == 0)  # the query would run for hours
        reader.join(5)
    assert [e.code() for e in errors] == [grpc.StatusCode.CANCELLED]


def test_a_flight_call_deadline_stops_the_postgres_backend(
    analyst: Session, dsn: str
) -> None:
    info = analyst.info(pb.CommandStatementQuery(query=QUERY))
    headers = [(name.encode(), value.encode()) for name, value in analyst.headers]
    options = flight.FlightCallOptions(headers=headers, timeout=1.5)
    started = time.monotonic()
    with pytest.raises(flight.FlightTimedOutError):
        analyst.client.do_get(info.endpoints[0].ticket, options).read_all()
    assert time.monotonic() - started < 8  # a 1.5 s deadline, on a loaded machine
    assert within(10, lambda: running_probes(dsn) == 0)  # the query would run for hours


def test_a_deadline_given_to_the_service_times_out_and_stops_the_backend(
    service: QueryService, dsn: str
) -> None:
    prepared = service.prepare(QUERY, service.principal("analyst"))
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as caught:
        service.execute(prepared, deadline=time.monotonic() + 1.5).read_all()
    assert time.monotonic() - started < 8  # a 1.5 s deadline, on a loaded machine
    assert "ran past its deadline" in caught.value.message
    assert caught.value.status.value == "DEADLINE_EXCEEDED"
    assert within(10, lambda: running_probes(dsn) == 0)  # the query would run for hours


def read_all(cursor: adbc.Cursor) -> None:
    cursor.execute(QUERY)
    cursor.fetchall()


def test_the_configured_query_timeout_ends_the_query_and_stops_the_backend(
    dsn: str, tmp_path: Path
) -> None:
    """`server.query_timeout_seconds` with no client deadline: ADBC sees DEADLINE_EXCEEDED
    with the advice, and PostgreSQL's backend stops; a short query still answers."""
    config = mesh.build(tmp_path / "timed")
    text = (config / "mesh.yaml").read_text(encoding="utf-8")
    text = text.replace("sources:\n", "sources:\n  - {name: lab_db, kind: postgres, "
                        f"options: {{dsn: '{dsn}'}}}}\n", 1) + PRODUCT  # fmt: skip
    text += "\nserver: {query_timeout_seconds: 1.5}\n"
    (config / "mesh.yaml").write_text(text, encoding="utf-8")
    service = QueryService.from_config(config)
    try:
        with running_server(service) as running:
            uri = f"grpc://127.0.0.1:{running.port}"
            with adbc.connect(uri, db_kwargs={"username": "analyst", "password": "analyst"}) \
                    as conn, conn.cursor() as cursor:  # fmt: skip
                started = time.monotonic()
                with pytest.raises(adbc.Error) as raised:
                    read_all(cursor)
                assert time.monotonic() - started < 8  # 1.5 s, on a loaded machine
                assert "ran past its deadline" in str(raised.value)
                assert "(DeadlineExceeded; DoGet" in str(raised.value)  # the gRPC code
                assert within(10, lambda: running_probes(dsn) == 0)  # it would run for hours
                cursor.execute("SELECT count(*) AS n FROM meshgate.products")
                assert cursor.fetchone() is not None
    finally:
        service.close()
