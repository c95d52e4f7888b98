"""Two `meshgate serve` processes over one configuration, as replicas behind a load balancer:
what one issues (a bearer token, a prepared statement, a ticket) works on the other, for the
same user only, under that user's policies as the other replica applies them.

The calls are raw pyarrow.flight, the way a client's calls land on whichever replica a load
balancer picks.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pytest
from pyarrow import flight

from meshgate.catalog.loader import load_mesh
from meshgate.errors import ConfigError
from meshgate.server.proto import flight_sql_pb2 as sql
from tests.server.flightsql_clients import Session, descriptor, pack, unpack
from tests.server.served import Served, copy_demo, free_port, serve

KEY = "a-shared-replica-secret-of-48-characters-0123456"
REPLICAS_YAML = "server:\n  replicas: {signing_key: \"${MESHGATE_TEST_SIGNING_KEY}\"}\n" \
                "  ticket_ttl_seconds: 3\n"
EU_BY_REGION = "SELECT id, region, salary FROM hr.employees WHERE region = ? ORDER BY id"


@dataclass
class Replicas:
    a: Served
    b: Served


@pytest.fixture(scope="module")
def replicas(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    directory = tmp_path_factory.mktemp("replicas") / "config"
    copy_demo(demo_dir, directory, REPLICAS_YAML)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MESHGATE_TEST_SIGNING_KEY", KEY)
        with serve(directory, name="replica-a") as a, serve(directory, name="replica-b") as b:
            yield Replicas(a, b)


def _with_token(uri: str, token_header: tuple[str, str]) -> tuple[flight.FlightClient,
                                                                    flight.FlightCallOptions]:
    client = flight.connect(uri)
    return client, flight.FlightCallOptions(headers=[(token_header[0].encode(),
                                                      token_header[1].encode())])


def _prepare(session: Session, query: str) -> sql.ActionCreatePreparedStatementResult:
    request = sql.ActionCreatePreparedStatementRequest(query=query)
    [body] = session.action("CreatePreparedStatement", pack(request))
    result: sql.ActionCreatePreparedStatementResult = unpack(
        body, sql.ActionCreatePreparedStatementResult())
    return result


def _bind(client: flight.FlightClient, options: flight.FlightCallOptions, handle: bytes,
          parameters: pa.Table) -> bytes:
    """DoPut the parameter rows; the handle the server answers with (it carries them)."""
    command = sql.CommandPreparedStatementQuery(prepared_statement_handle=handle)
    writer, reader = client.do_put(descriptor(command), parameters.schema, options)
    writer.write_table(parameters)
    writer.done_writing()
    answer = reader.read()
    writer.close()
    assert answer is not None
    result = sql.DoPutPreparedStatementResult.FromString(answer.to_pybytes())
    return bytes(result.prepared_statement_handle)


def _execute(client: flight.FlightClient, options: flight.FlightCallOptions,
             handle: bytes) -> flight.FlightInfo:
    command = sql.CommandPreparedStatementQuery(prepared_statement_handle=handle)
    return client.get_flight_info(descriptor(command), options)


def _read(client: flight.FlightClient, options: flight.FlightCallOptions,
          info: flight.FlightInfo) -> pa.Table:
    return pa.concat_tables(client.do_get(e.ticket, options).read_all() for e in info.endpoints)


def test_a_token_from_one_replica_authenticates_on_the_other(replicas: Replicas) -> None:
    on_a = Session(replicas.a.uri, "analyst", "analyst")
    client, options = _with_token(replicas.b.uri, on_a.headers[0])
    count = sql.CommandStatementQuery(query="SELECT count(*) AS n FROM hr.employees")
    info = client.get_flight_info(descriptor(count), options)
    [n] = _read(client, options, info).column("n").to_pylist()
    # Replica B applies the analyst's row filter (their own region only), not A's say-so.
    admin = Session(replicas.b.uri, "admin", "admin")
    _, everyone = admin.fetch(count)
    _, eu = admin.fetch(sql.CommandStatementQuery(
        query="SELECT count(*) AS n FROM hr.employees WHERE region = 'EU'"))
    assert n == eu.column("n")[0].as_py() < everyone.column("n")[0].as_py()


def test_a_statement_prepared_and_bound_on_one_replica_executes_on_the_other(
    replicas: Replicas,
) -> None:
    on_a = Session(replicas.a.uri, "analyst", "analyst")
    prepared = _prepare(on_a, EU_BY_REGION)
    bound = _bind(on_a.client, on_a.options, prepared.prepared_statement_handle,
                  pa.table({"region": ["EU"]}))
    expected = _read(on_a.client, on_a.options, _execute(on_a.client, on_a.options, bound))
    assert expected.num_rows > 0
    assert set(expected.column("region").to_pylist()) == {"EU"}
    assert expected.column("salary").null_count == expected.num_rows  # masked for analysts

    b_client, b_options = _with_token(replicas.b.uri, on_a.headers[0])
    info = _execute(b_client, b_options, bound)
    assert _read(b_client, b_options, info).equals(expected)
    # ... and B's ticket is fetched from A.
    assert _read(on_a.client, on_a.options, info).equals(expected)
    # Bound on B with other values: B's answer carries them back to A.
    rebound = _bind(b_client, b_options, prepared.prepared_statement_handle,
                    pa.table({"region": ["US"]}))
    us = _read(on_a.client, on_a.options, _execute(on_a.client, on_a.options, rebound))
    assert us.num_rows == 0  # the analyst's filter admits EU rows only, on every replica


def test_a_ticket_from_one_replica_is_fetched_from_the_other(replicas: Replicas) -> None:
    on_a = Session(replicas.a.uri, "analyst", "analyst")
    query = sql.CommandStatementQuery(
        query="SELECT customer_id, name FROM sales.customers ORDER BY customer_id")
    info = on_a.info(query)
    b_client, b_options = _with_token(replicas.b.uri, on_a.headers[0])
    from_b = _read(b_client, b_options, info)
    _, direct = on_a.fetch(query)
    assert from_b.num_rows > 0
    assert from_b.equals(direct)


def test_handles_serve_their_own_user_only_and_cannot_be_forged(replicas: Replicas) -> None:
    on_a = Session(replicas.a.uri, "analyst", "analyst")
    prepared = _prepare(on_a, "SELECT id FROM hr.employees WHERE id = ?")
    info = on_a.info(sql.CommandStatementQuery(query="SELECT id FROM hr.employees"))
    partner = Session(replicas.b.uri, "partner", "partner")
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        _execute(partner.client, partner.options, prepared.prepared_statement_handle)
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        _read(partner.client, partner.options, info)

    b_client, b_options = _with_token(replicas.b.uri, on_a.headers[0])
    handle = bytearray(prepared.prepared_statement_handle)
    handle[10] ^= 0x01  # one bit of the sealed SQL changed: the tag no longer matches
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        _execute(b_client, b_options, bytes(handle))
    name, value = on_a.headers[0]
    forged = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    client, options = _with_token(replicas.b.uri, (name, forged))
    with pytest.raises(flight.FlightUnauthenticatedError, match="unknown or expired"):
        client.get_flight_info(descriptor(sql.CommandStatementQuery(query="SELECT 1")), options)


def test_a_closed_statement_is_refused_and_tickets_expire_on_every_replica(
    replicas: Replicas,
) -> None:
    on_a = Session(replicas.a.uri, "analyst", "analyst")
    prepared = _prepare(on_a, "SELECT count(*) AS n FROM sales.customers")
    b_client, b_options = _with_token(replicas.b.uri, on_a.headers[0])
    close = sql.ActionClosePreparedStatementRequest(
        prepared_statement_handle=prepared.prepared_statement_handle)
    b_action = flight.Action("ClosePreparedStatement", pack(close))
    list(b_client.do_action(b_action, b_options))
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        _execute(b_client, b_options, prepared.prepared_statement_handle)

    info = on_a.info(sql.CommandStatementQuery(query="SELECT count(*) AS n FROM sales.customers"))
    time.sleep(3.5)  # past ticket_ttl_seconds
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        _read(b_client, b_options, info)


def test_the_signing_key_comes_only_from_the_environment(demo_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "config"
    copy_demo(demo_dir, directory, f"server:\n  replicas: {{signing_key: \"{KEY}\"}}\n")
    with pytest.raises(ConfigError, match=r"server\.replicas\.signing_key.*environment reference"):
        load_mesh(directory)


NGINX = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format upstream '$upstream_addr';
    access_log {tmp}/access.log upstream;
    client_body_temp_path {tmp}/body;
    upstream meshgate {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; }}
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{ grpc_pass grpc://meshgate; }}
    }}
}}
"""
INSTALL_NGINX = "install Debian's nginx (`apt-get install nginx-light`), a gRPC load balancer"


@pytest.fixture(scope="module")
def balanced(replicas: Replicas,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:  # fmt: skip
    """nginx in front of both replicas, sending each call to the next one in turn; its URI
    and its access log (one line per call: the replica that served it)."""
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        pytest.fail(f"the load-balancer test needs nginx: {INSTALL_NGINX}")
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    (tmp / "nginx.conf").write_text(NGINX.format(
        tmp=tmp, port=port, a=urlsplit(replicas.a.uri).port, b=urlsplit(replicas.b.uri).port))
    process = subprocess.Popen([binary, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "nginx did not listen within 10 s"
            time.sleep(0.05)
        yield f"grpc://127.0.0.1:{port}", tmp / "access.log"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_adbc_through_a_load_balancer_that_alternates_replicas_per_call(
    balanced: tuple[str, Path], replicas: Replicas
) -> None:
    uri, access_log = balanced
    analyst = {"username": "analyst", "password": "analyst"}
    with flightsql.connect(uri, db_kwargs=analyst) as connection, \
            connection.cursor() as cursor:  # fmt: skip
        for _ in range(3):  # every call may land on the other replica
            cursor.execute(EU_BY_REGION, ("EU",))
            eu = cursor.fetch_arrow_table()
            assert eu.num_rows > 0
            assert set(eu.column("region").to_pylist()) == {"EU"}
            cursor.execute(EU_BY_REGION, ("US",))
            assert cursor.fetch_arrow_table().num_rows == 0  # the analyst's filter, everywhere
        # Two parameter rows bound at once: the query runs once per row, one stream.
        cursor.execute("SELECT count(*) AS n FROM hr.employees WHERE region = ?",
                       pa.record_batch([pa.array(["EU", "US"])], names=["region"]))
        counts = cursor.fetch_arrow_table().column("n").to_pylist()
        assert counts == [eu.num_rows, 0]
        objects = connection.adbc_get_objects(depth="tables").read_all().to_pylist()
        assert objects
    # One client connection, its calls served by both replicas in turn.
    served_by = access_log.read_text().split()
    assert len(served_by) > 10
    assert set(served_by) == {f"127.0.0.1:{urlsplit(r.uri).port}" for r in (replicas.a,
                                                                            replicas.b)}
