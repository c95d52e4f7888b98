"""A result split into several Flight endpoints, fetched in parallel by ADBC: the parts
together are exactly the one-stream result, under the caller's policies, and only queries
whose split is exact are split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pytest
from pyarrow import flight

from meshgate.principal import hash_password
from meshgate.server import running_server
from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as sql
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database
from tests.server.flightsql_clients import Session, descriptor
from tests.server.served import copy_demo

T = TypeVar("T")
HEADER = "adbc.flight.sql.rpc.call_header.x-meshgate-result-endpoints"
EMPLOYEES = "SELECT id, name, email, salary, region FROM hr.employees"
BIG_ROWS = 6_000_000
BIG = """
sources:
  - name: warehouse
    kind: postgres
    options: {dsn: "DSN", pool_size: 8}
domains:
  - {name: ops, owner: ops-team, description: Operations data in PostgreSQL.}
products:
  - domain: ops
    name: readings
    table: {source: warehouse, schema: public, table: readings}
    columns: [{name: id, type: BIGINT}, {name: sensor, type: INTEGER},
              {name: value, type: DOUBLE}]
  - domain: ops
    name: events
    table: {source: warehouse, schema: public, table: events}
    columns: [{name: id, type: BIGINT}, {name: amount, type: "DECIMAL(12,2)"}]
policies:
  - product: ops.readings
    role: analyst
    row_filter: sensor < 10
    masks: {value: "null"}
"""
EVENTS = "SELECT id, amount FROM ops.events"


def _serving(directory: Path) -> Iterator[tuple[str, QueryService]]:
    service = QueryService.from_config(directory)
    try:
        with running_server(service) as server:
            yield f"grpc://127.0.0.1:{server.port}", service
    finally:
        service.close()


def _served(directory: Path) -> Iterator[str]:
    for uri, _ in _serving(directory):
        yield uri


@pytest.fixture(scope="module")
def demo_uri(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("endpoints") / "config"
    copy_demo(demo_dir, directory, "server: {result_endpoints: {max: 4}}\n")
    yield from _served(directory)


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(table.schema.names[0], "ascending")])


def _partitions(uri: str, user: str, query: str, count: int) -> tuple[int, pa.Table]:
    """How many partitions ADBC got for `query`, and their rows read one by one."""
    kwargs = {"username": user, "password": user, HEADER: str(count)}
    with flightsql.connect(uri, db_kwargs=kwargs) as connection, connection.cursor() as cursor:
        partitions, _ = cursor.adbc_execute_partitions(query)
        tables = []
        for partition in partitions:
            cursor.adbc_read_partition(partition)
            tables.append(cursor.fetch_arrow_table())
    return len(partitions), pa.concat_tables(tables)


def _one_stream(uri: str, user: str, query: str) -> pa.Table:
    with flightsql.connect(uri, db_kwargs={"username": user, "password": user}) as connection, \
            connection.cursor() as cursor:  # fmt: skip
        cursor.execute(query)
        return cursor.fetch_arrow_table()


@pytest.mark.parametrize("user", ["admin", "analyst"])
def test_the_parts_together_are_the_result_under_the_callers_policies(
    demo_uri: str, user: str
) -> None:
    count, parts = _partitions(demo_uri, user, EMPLOYEES, 4)
    whole = _one_stream(demo_uri, user, EMPLOYEES)
    assert count == 4
    assert whole.num_rows > 0
    assert _sorted(parts).equals(_sorted(whole))
    if user == "analyst":  # the row filter and masks hold in every part
        assert set(parts.column("region").to_pylist()) == {"EU"}
        assert parts.column("salary").null_count == parts.num_rows


@pytest.mark.parametrize("query", [
    f"{EMPLOYEES} ORDER BY id",
    f"{EMPLOYEES} LIMIT 5",
    "SELECT region, count(*) AS n FROM hr.employees GROUP BY region",
    "SELECT DISTINCT region FROM hr.employees",
    "SELECT name, region FROM hr.employees",  # no integer column to split on
    "SELECT id + 0 AS id, name FROM hr.employees",  # a computed key
    "SELECT id, name FROM hr.employees WHERE random() < 2",  # differs between evaluations
    "SELECT id FROM hr.employees UNION ALL SELECT id FROM hr.employees",
])
def test_a_query_whose_split_would_not_be_exact_stays_one_endpoint(
    demo_uri: str, query: str
) -> None:
    count, parts = _partitions(demo_uri, "admin", query, 4)
    assert count == 1
    assert parts.num_rows == _one_stream(demo_uri, "admin", query).num_rows


def test_the_session_option_asks_and_the_configured_max_caps(demo_uri: str) -> None:
    session = Session(demo_uri, "admin", "admin")
    request = flight_pb2.SetSessionOptionsRequest()
    request.session_options["result_endpoints"].int64_value = 3
    [body] = session.action("SetSessionOptions", request.SerializeToString())
    assert dict(flight_pb2.SetSessionOptionsResult.FromString(body).errors) == {}
    info = session.info(sql.CommandStatementQuery(query=EMPLOYEES))
    assert len(info.endpoints) == 3
    assert all(not e.locations for e in info.endpoints)  # fetched from this server

    too_many = flight_pb2.SetSessionOptionsRequest()
    too_many.session_options["result_endpoints"].int64_value = 5
    [body] = session.action("SetSessionOptions", too_many.SerializeToString())
    refused = flight_pb2.SetSessionOptionsResult.FromString(body).errors
    assert refused["result_endpoints"].value == flight_pb2.SetSessionOptionsResult.INVALID_VALUE
    header = flight.FlightCallOptions(headers=[
        *((n.encode(), v.encode()) for n, v in session.headers),
        (b"x-meshgate-result-endpoints", b"40")])
    info = session.client.get_flight_info(descriptor(sql.CommandStatementQuery(query=EMPLOYEES)),
                                          header)
    assert len(info.endpoints) == 4  # server.result_endpoints.max


def test_a_row_limit_keeps_one_endpoint(demo_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "config"
    copy_demo(demo_dir, directory,
              "server: {result_endpoints: {max: 4}, limits: {max_result_rows: 100000}}\n")
    for uri in _served(directory):
        count, _ = _partitions(uri, "admin", EMPLOYEES, 4)
        assert count == 1  # four parts could each return the limit


@dataclass(frozen=True)
class Big:
    uri: str
    service: QueryService
    dsn: str  # the database's, for changing rows between the parts' reads


@pytest.fixture(scope="module")
def big(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Big]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE readings AS SELECT g::bigint AS id, (g % 97)::int "
                           f"AS sensor, g / 7.0::float8 AS value "
                           f"FROM generate_series(1, {BIG_ROWS}) AS g")  # fmt: skip
            cursor.execute("ANALYZE readings")
            cursor.execute("CREATE TABLE events AS SELECT g::bigint AS id, (g / 100.0)::numeric"
                           "(12,2) AS amount FROM generate_series(1, 300000) AS g")
        directory = tmp_path_factory.mktemp("big") / "config"
        directory.mkdir()
        (directory / "mesh.yaml").write_text(
            "mesh: {name: big, description: Six million readings.}\n"
            "server: {result_endpoints: {max: 4}}\n"
            "users: [{name: admin, password_hash: \"" + _ADMIN_HASH + "\", roles: [admin]},\n"
            "        {name: analyst, password_hash: \"" + hash_password("analyst") +
            "\", roles: [analyst]}]\n"
            "roles: [{name: admin, grants: ['*']}, {name: analyst, grants: ['ops.readings']}]\n"
            + BIG.replace("DSN", dsn), encoding="utf-8")
        for uri, service in _serving(directory):
            yield Big(uri, service, dsn)


@pytest.fixture(scope="module")
def big_uri(big: Big) -> str:
    return big.uri


def _ranged_reads(service: QueryService, run: Callable[[], T]) -> tuple[T, list[str]]:
    """What `run` returns, and the ctid-range statements the PostgreSQL source was sent
    meanwhile (its log of sent SQL, emptied first, is bounded)."""
    sent = service.connectors["warehouse"].sent_sql  # type: ignore[attr-defined]
    sent.clear()
    result = run()
    return result, [sql for sql in list(sent) if '"ctid" >=' in sql]


_ADMIN_HASH = ("scrypt$16384$8$1$Je+ohIA/zNoZH2HZEyMatA==$jq0690OOem3uho1WxYqD3OA3kFXlVwHM0dBvy+"
               "ZPoZCMt6KAzqbSdkwG2raCzV+2lCngz5gBGChw6rAeWXerUQ==")  # the demo's admin/admin


def test_adbc_fetches_six_million_rows_from_four_endpoints_in_parallel(big_uri: str) -> None:
    query = "SELECT id, sensor, value FROM ops.readings"
    kwargs = {"username": "admin", "password": "admin", HEADER: "4"}
    with flightsql.connect(big_uri, db_kwargs=kwargs) as connection, \
            connection.cursor() as cursor:  # fmt: skip
        partitions, _ = cursor.adbc_execute_partitions(query)
        assert len(partitions) == 4
        cursor.execute(query)  # ADBC reads the four endpoints at once
        parallel = cursor.fetch_arrow_table()
    whole = _one_stream(big_uri, "admin", query)
    assert whole.num_rows == parallel.num_rows == BIG_ROWS
    assert _sorted(parallel).equals(_sorted(whole))


def test_the_parts_of_a_postgresql_scan_are_page_ranges_under_the_callers_policies(
    big: Big,
) -> None:
    query = "SELECT id, sensor, value FROM ops.readings"
    (count, parts), ranged = _ranged_reads(
        big.service, lambda: _partitions(big.uri, "analyst", query, 4))
    whole = _one_stream(big.uri, "analyst", query)
    assert count == 4
    assert len(ranged) == 4  # one page range per part: the table is read once in all
    assert all('"sensor" < 10' in sql for sql in ranged)  # the row filter in every part
    cycles, rest = divmod(BIG_ROWS, 97)  # sensor is id % 97, ids from 1
    assert whole.num_rows == parts.num_rows == cycles * 10 + min(rest, 9)
    assert _sorted(parts).equals(_sorted(whole))
    assert set(parts.column("sensor").to_pylist()) == set(range(10))
    assert parts.column("value").null_count == parts.num_rows  # masked in every part


def test_rows_changed_between_the_parts_reads_are_neither_lost_nor_repeated(big: Big) -> None:
    before = _one_stream(big.uri, "admin", EVENTS)
    session = Session(big.uri, "admin", "admin")
    options = flight.FlightCallOptions(headers=[
        *((n.encode(), v.encode()) for n, v in session.headers),
        (b"x-meshgate-result-endpoints", b"4")])
    info = session.client.get_flight_info(descriptor(sql.CommandStatementQuery(query=EVENTS)),
                                          options)
    assert len(info.endpoints) == 4
    first = session.client.do_get(info.endpoints[0].ticket, options).read_all()
    with pg.connect(big.dsn, autocommit=True) as connection, connection.cursor() as cursor:
        # Every row version moves to a new page (past the first parts' ranges), a tenth of
        # the rows go and new ones come: a split read at each part's own time would repeat
        # the moved rows and miss the deleted ones.
        cursor.execute("UPDATE events SET amount = amount + 1")
        cursor.execute("DELETE FROM events WHERE id % 10 = 0")
        cursor.execute("INSERT INTO events SELECT g, 0 FROM generate_series(300001, 310000) g")
    rest = [session.client.do_get(e.ticket, options).read_all() for e in info.endpoints[1:]]
    session.close()
    parts = pa.concat_tables([first, *rest])
    assert first.num_rows > 0
    assert _sorted(parts).equals(_sorted(before))  # the table as of the split
    assert _one_stream(big.uri, "admin", EVENTS).num_rows == 280_000  # the changes happened


def test_one_call_reads_both_meshgate_headers(demo_uri: str) -> None:
    """The call's `x-meshgate-*` headers are read by one middleware: the endpoint count and
    the residual engine of the same call both take effect."""
    session = Session(demo_uri, "admin", "admin")
    try:
        headers = [(n.encode(), v.encode()) for n, v in session.headers]
        command = descriptor(sql.CommandStatementQuery(query=EMPLOYEES))
        split = flight.FlightCallOptions(headers=[
            *headers, (b"x-meshgate-result-endpoints", b"3"),
            (b"x-meshgate-residual-engine", b"duckdb")])
        assert len(session.client.get_flight_info(command, split).endpoints) == 3
        wrong = flight.FlightCallOptions(headers=[
            *headers, (b"x-meshgate-result-endpoints", b"3"),
            (b"x-meshgate-residual-engine", b"ray")])
        with pytest.raises(pa.ArrowInvalid, match="residual_engine must be one of auto"):
            session.client.get_flight_info(command, wrong)
        assert len(session.client.get_flight_info(command, session.options).endpoints) == 1
    finally:
        session.close()
