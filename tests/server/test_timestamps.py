"""Naive timestamps of every precision reach a Flight SQL client as microseconds, as declared.

A product may declare DuckDB's `TIMESTAMP` (sqlglot reads it as TIMESTAMPNTZ), `TIMESTAMP_S`,
`TIMESTAMP_MS` and `TIMESTAMP_NS`; PostgreSQL's `timestamp(0)`/`(3)`/`(6)` are declared as
TIMESTAMP. The wire carries one unit (flightsql-clients.md P16): seconds and milliseconds
widen exactly, nanoseconds are cut to microseconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc
import adbc_driver_postgresql.dbapi as pg
import duckdb
import pyarrow as pa
import pytest

from meshgate.principal import hash_password
from meshgate.server import running_server
from meshgate.service import QueryService

CONFIG = """
mesh: {name: clocks}
sources:
  - {name: local, kind: duckdb, options: {path: local.duckdb}}
  - {name: warehouse, kind: postgres, options: {dsn: "DSN"}}
domains:
  - {name: ops, owner: ops-team}
products:
  - domain: ops
    name: local_events
    table: {source: local, table: events}
    columns:
      - {name: id, type: BIGINT}
      - {name: ts, type: TIMESTAMP}
      - {name: at_s, type: TIMESTAMP_S}
      - {name: at_ms, type: TIMESTAMP_MS}
      - {name: at_ns, type: TIMESTAMP_NS}
  - domain: ops
    name: remote_events
    table: {source: warehouse, schema: public, table: events}
    columns:
      - {name: id, type: BIGINT}
      - {name: ts, type: TIMESTAMP}
      - {name: at_s, type: TIMESTAMP}
      - {name: at_ms, type: TIMESTAMP}
roles: [{name: admin, grants: ["*"]}]
users: [{name: admin, password_hash: "HASH", roles: [admin]}]
"""
WRITTEN = "2025-03-04 05:06:07.123456789"
MICROS = dt.datetime(2025, 3, 4, 5, 6, 7, 123456)


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory, pg_server_dsn: str) -> Iterator[str]:
    from tests.conftest import fresh_pg_database

    directory: Path = tmp_path_factory.mktemp("clocks")
    with duckdb.connect(str(directory / "local.duckdb")) as connection:
        connection.execute(
            "CREATE TABLE events AS SELECT 1::BIGINT AS id, "
            f"TIMESTAMP_NS '{WRITTEN}'::TIMESTAMP AS ts, "
            f"TIMESTAMP_NS '{WRITTEN}'::TIMESTAMP::TIMESTAMP_S AS at_s, "
            f"TIMESTAMP_NS '{WRITTEN}'::TIMESTAMP::TIMESTAMP_MS AS at_ms, "
            f"TIMESTAMP_NS '{WRITTEN}' AS at_ns"
        )
    with fresh_pg_database(pg_server_dsn) as dsn:
        with pg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE events (id bigint, ts timestamp, at_s timestamp(0), "
                "at_ms timestamp(3))"
            )
            cursor.execute(f"INSERT INTO events VALUES (1, '{WRITTEN[:26]}', "
                           f"'{WRITTEN[:19]}', '{WRITTEN[:23]}')")  # fmt: skip
        (directory / "mesh.yaml").write_text(
            CONFIG.replace("HASH", hash_password("admin", salt=b"timestamps-salt"))
            .replace("DSN", dsn)
        )
        service = QueryService.from_config(directory)
        with running_server(service) as server:
            yield f"grpc://127.0.0.1:{server.port}"
        service.close()


def fetch(uri: str, sql: str) -> pa.Table:
    with adbc.connect(uri, db_kwargs={"username": "admin", "password": "admin"}) as conn, \
            conn.cursor() as cursor:  # fmt: skip
        cursor.execute(sql)
        table: pa.Table = cursor.fetch_arrow_table()
        return table


@pytest.mark.parametrize("product", ["local_events", "remote_events"])
def test_naive_timestamps_arrive_as_naive_microseconds(uri: str, product: str) -> None:
    table = fetch(uri, f"SELECT * EXCLUDE (id) FROM ops.{product}")
    assert {f.type for f in table.schema} == {pa.timestamp("us")}
    (row,) = table.to_pylist()
    assert row["ts"] == MICROS
    assert row["at_s"] == MICROS.replace(microsecond=0)
    assert row["at_ms"] == MICROS.replace(microsecond=123000)
    if product == "local_events":
        assert row["at_ns"] == MICROS  # nanoseconds cut to microseconds


def test_a_naive_timestamp_compares_with_a_literal_at_the_source(uri: str) -> None:
    table = fetch(uri, "SELECT count(*) AS n FROM ops.remote_events "
                       "WHERE ts > TIMESTAMP '2025-03-04 05:06:07'")  # fmt: skip
    assert table.to_pylist() == [{"n": 1}]
