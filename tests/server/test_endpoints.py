"""A result split into several Flight endpoints, fetched in parallel by ADBC: the parts
together are exactly the one-stream result, under the caller's policies, and only queries
whose split is exact are split.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pytest
from pyarrow import flight

from meshgate.server import running_server
from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as sql
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database
from tests.server.flightsql_clients import Session, descriptor
from tests.server.served import copy_demo

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
"""


def _served(directory: Path) -> Iterator[str]:
    service = QueryService.from_config(directory)
    try:
        with running_server(service) as server:
            yield f"grpc://127.0.0.1:{server.port}"
    finally:
        service.close()


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


@pytest.fixture(scope="module")
def big_uri(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE readings AS SELECT g::bigint AS id, (g % 97)::int "
                           f"AS sensor, g / 7.0::float8 AS value "
                           f"FROM generate_series(1, {BIG_ROWS}) AS g")  # fmt: skip
            cursor.execute("ANALYZE readings")
        directory = tmp_path_factory.mktemp("big") / "config"
        directory.mkdir()
        (directory / "mesh.yaml").write_text(
            "mesh: {name: big, description: Six million readings.}\n"
            "server: {result_endpoints: {max: 4}}\n"
            "users: [{name: admin, password_hash: \"" + _ADMIN_HASH + "\", roles: [admin]}]\n"
            "roles: [{name: admin, grants: ['*']}]\n" + BIG.replace("DSN", dsn),
            encoding="utf-8")
        yield from _served(directory)


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
