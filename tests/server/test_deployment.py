"""Settings a deployment makes in its `server:` section, seen by real Flight clients.

Each test serves its own copy of the demo configuration plus a server.yaml.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyarrow import flight

from meshgate.server import running_server
from meshgate.server.proto import flight_pb2 as pb
from meshgate.server.proto import flight_sql_pb2 as sql
from meshgate.service import QueryService
from tests.server.flightsql_clients import Session, pack, unpack

# The regexp filter cannot run in SQLite: in strict mode it is refused, else merged locally.
LOCAL_WORK = (
    "SELECT e.name FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id "
    "WHERE regexp_matches(e.name, '^A')"
)
HANDLE_GONE = "unknown or expired statement handle; prepare or run the query again"
STRICT_REFUSAL = "strict pushdown: a part of this query would run in meshgate's merge layer"


@contextlib.contextmanager
def served(demo_dir: Path, directory: Path, server_yaml: str) -> Iterator[str]:
    """A server over the demo's configuration with `server_yaml` added; yields its URI."""
    directory.mkdir()
    for source in demo_dir.glob("*.yaml"):
        text = source.read_text(encoding="utf-8").replace("path: data/", f"path: {demo_dir}/data/")
        (directory / source.name).write_text(text, encoding="utf-8")
    (directory / "server.yaml").write_text(server_yaml, encoding="utf-8")
    service = QueryService.from_config(directory)
    try:
        with running_server(service) as server:
            yield f"grpc://127.0.0.1:{server.port}"
    finally:
        service.close()


def _set_strict(session: Session, value: bool) -> None:
    request = pb.SetSessionOptionsRequest()
    request.session_options["strict_pushdown"].bool_value = value
    [body] = session.action("SetSessionOptions", request.SerializeToString())
    assert dict(pb.SetSessionOptionsResult.FromString(body).errors) == {}


def test_a_session_token_stops_authenticating_after_its_ttl(
    demo_dir: Path, tmp_path: Path
) -> None:
    count = sql.CommandStatementQuery(query="SELECT count(*) AS n FROM sales.orders")
    with served(demo_dir, tmp_path / "config", "server: {token_ttl_seconds: 1}\n") as uri:
        session = Session(uri, "analyst", "analyst")  # Basic once, then the issued bearer
        try:
            assert session.fetch(count)[1].column("n").to_pylist() == [20000]
            time.sleep(1.5)
            with pytest.raises(
                flight.FlightUnauthenticatedError,
                match="the bearer token is unknown or expired; authenticate again",
            ):
                session.fetch(count)
        finally:
            session.close()
        renewed = Session(uri, "analyst", "analyst")
        try:
            assert renewed.fetch(count)[1].column("n").to_pylist() == [20000]
        finally:
            renewed.close()


def test_the_deployments_strict_pushdown_applies_unless_the_session_sets_it(
    demo_dir: Path, tmp_path: Path
) -> None:
    query = sql.CommandStatementQuery(query=LOCAL_WORK)
    with served(demo_dir, tmp_path / "config", "server: {strict_pushdown: true}\n") as uri:
        session = Session(uri, "analyst", "analyst")
        try:
            with pytest.raises(pa.ArrowInvalid, match=STRICT_REFUSAL):
                session.fetch(query)
            _set_strict(session, False)
            assert session.fetch(query)[1].num_rows > 0
            _set_strict(session, True)
            with pytest.raises(pa.ArrowInvalid, match=STRICT_REFUSAL):
                session.fetch(query)
        finally:
            session.close()


def test_without_the_setting_the_same_query_runs(demo_dir: Path, tmp_path: Path) -> None:
    with served(demo_dir, tmp_path / "config", "server: {}\n") as uri:
        session = Session(uri, "analyst", "analyst")
        try:
            _, table = session.fetch(sql.CommandStatementQuery(query=LOCAL_WORK))
            assert table.num_rows > 0
        finally:
            session.close()


def test_unclaimed_tickets_expire_and_each_principal_holds_a_bounded_number(
    demo_dir: Path, tmp_path: Path
) -> None:
    count = sql.CommandStatementQuery(query="SELECT count(*) AS n FROM sales.orders")
    limits = "server: {ticket_ttl_seconds: 1, max_open_handles: 2}\n"
    with served(demo_dir, tmp_path / "config", limits) as uri:
        session = Session(uri, "analyst", "analyst")
        admin = Session(uri, "admin", "admin")
        try:
            oldest, older, newest = (session.info(count).endpoints[0].ticket for _ in range(3))
            others = admin.info(count).endpoints[0].ticket  # another principal's own room
            with pytest.raises(pa.ArrowKeyError, match=HANDLE_GONE):
                session.client.do_get(oldest, session.options).read_all()
            for ticket in (older, newest):
                assert session.client.do_get(ticket, session.options).read_all().num_rows == 1
            assert admin.client.do_get(others, admin.options).read_all().num_rows == 1
            waiting = session.info(count).endpoints[0].ticket
            time.sleep(1.5)
            with pytest.raises(pa.ArrowKeyError, match=HANDLE_GONE):
                session.client.do_get(waiting, session.options).read_all()
        finally:
            session.close()
            admin.close()


def _renew(session: Session, endpoint: flight.FlightEndpoint) -> flight.FlightEndpoint:
    request = pb.RenewFlightEndpointRequest(
        endpoint=pb.FlightEndpoint.FromString(endpoint.serialize()))
    [body] = session.action("RenewFlightEndpoint", request.SerializeToString())
    return flight.FlightEndpoint.deserialize(body)


def test_renew_flight_endpoint_keeps_an_unfetched_ticket_for_another_ttl(
    demo_dir: Path, tmp_path: Path
) -> None:
    count = sql.CommandStatementQuery(query="SELECT count(*) AS n FROM sales.orders")
    with served(demo_dir, tmp_path / "config", "server: {ticket_ttl_seconds: 2}\n") as uri:
        session = Session(uri, "analyst", "analyst")
        admin = Session(uri, "admin", "admin")
        try:
            endpoint = session.info(count).endpoints[0]
            for _ in range(3):  # 3 s in all, past the first 2 s, renewed each second
                time.sleep(1)
                renewed = _renew(session, endpoint)
                assert renewed.ticket == endpoint.ticket
                left = renewed.expiration_time.value / 1e9 - time.time()
                assert 1.0 < left <= 2.0
            with pytest.raises(pa.ArrowKeyError, match=HANDLE_GONE):
                _renew(admin, endpoint)  # another principal's ticket: as if never issued
            assert session.client.do_get(endpoint.ticket, session.options).read_all()[0][0] \
                .as_py() == 20_000
            with pytest.raises(pa.ArrowKeyError, match=HANDLE_GONE):
                _renew(session, endpoint)  # fetched: a ticket serves one DoGet
            stale = session.info(count).endpoints[0]
            time.sleep(2.5)
            with pytest.raises(pa.ArrowKeyError, match=HANDLE_GONE):
                _renew(session, stale)
            with pytest.raises(pa.ArrowInvalid, match="must be a serialized arrow"):
                session.action("RenewFlightEndpoint", b"\xff\xff")
        finally:
            session.close()
            admin.close()


def _prepare(session: Session, query: str) -> bytes:
    request = sql.ActionCreatePreparedStatementRequest(query=query)
    [body] = session.action("CreatePreparedStatement", pack(request))
    result = unpack(body, sql.ActionCreatePreparedStatementResult())
    handle: bytes = result.prepared_statement_handle
    return handle


def test_prepared_statements_idle_out_and_the_least_recently_used_makes_room(
    demo_dir: Path, tmp_path: Path
) -> None:
    limits = "server: {prepared_statement_ttl_seconds: 2, max_open_handles: 2}\n"
    with served(demo_dir, tmp_path / "config", limits) as uri:
        session = Session(uri, "analyst", "analyst")
        try:
            first, second = _prepare(session, "SELECT 1 AS n"), _prepare(session, "SELECT 2 AS n")
            run = sql.CommandPreparedStatementQuery
            session.info(run(prepared_statement_handle=first))  # used: second is now the oldest
            third = _prepare(session, "SELECT 3 AS n")
            with pytest.raises(pa.ArrowKeyError, match=HANDLE_GONE):
                session.info(run(prepared_statement_handle=second))
            for handle, n in ((first, 1), (third, 3)):
                _, table = session.fetch(run(prepared_statement_handle=handle))
                assert table.column("n").to_pylist() == [n]
            time.sleep(2.5)
            with pytest.raises(pa.ArrowKeyError, match=HANDLE_GONE):
                session.info(run(prepared_statement_handle=third))
        finally:
            session.close()
