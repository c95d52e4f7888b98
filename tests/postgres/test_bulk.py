"""Rows read through DuckDB's postgres extension (bulk.py) equal the driver's and fail alike."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from meshgate_postgres import PostgresConnector

from meshgate.errors import ConfigError, QueryValueError
from meshgate.spi import ConnectorContext, SourceTable
from tests.postgres.test_connector import _raw, query_rows, run_sql

pytestmark = pytest.mark.postgres


def connector(dsn: str, **options: Any) -> PostgresConnector:
    """`reader: duckdb` unless the test says otherwise."""
    return PostgresConnector(ConnectorContext("warehouse", {"dsn": dsn, "reader": "duckdb",
                                                            **options}, Path(".")))  # fmt: skip


@pytest.fixture
def plain(pg_database: str) -> str:
    run_sql(
        pg_database,
        """CREATE TABLE plain (
            id int, small smallint, big bigint, price numeric(15,2), wide numeric(30,6),
            ratio float8, share float4, flag boolean, code varchar(6), label varchar(40),
            note text, day date, at timestamp, stamped timestamptz)""",
        """INSERT INTO plain VALUES
            (1, 32767, 9223372036854775807, 9999999999999.99, 123456789012345678901234.123456,
             'NaN', 'Infinity', true, 'ab', 'héllo ✓', '', '0001-01-01',
             '1999-12-31 23:59:59.999999', '2024-03-10 23:30:00-05'),
            (2, -32768, -9223372036854775808, -0.01, -0.000001, '-Infinity', -1.5, false,
             '', '', 'a''quote"and,comma', '9999-12-31', '1970-01-01 00:00:00',
             '1970-01-01 00:00:00+00'),
            (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
        "INSERT INTO plain SELECT g, g % 100, g * 1000, g / 7.0, g / 3.0, g / 9.0, g, g % 2 = 0, "
        "'c' || (g % 10), 'label ' || g, repeat('x', g % 50), DATE '2000-01-01' + g % 9000, "
        "TIMESTAMP '2000-01-01' + g * INTERVAL '1 minute', "
        "TIMESTAMPTZ '2000-01-01 00:00:00+00' + g * INTERVAL '1 second' "
        "FROM generate_series(4, 200000) AS g",
        "ANALYZE plain",
    )
    return pg_database


def read_all(conn: PostgresConnector, table: str) -> pa.Table:
    source_table = SourceTable("public", table)
    handle = conn.scan(source_table, "t", conn.table_columns(source_table))
    return conn.execute(handle).read_all().sort_by("id")


def comparable(table: pa.Table) -> pa.Table:
    """Floats as their text, so that NaN equals NaN."""
    return pa.table({
        name: pc.cast(column, pa.string()) if pa.types.is_floating(column.type) else column
        for name, column in zip(table.column_names, table.columns, strict=True)
    })


def test_both_readers_return_identical_rows_and_types(plain: str) -> None:
    through_duckdb = connector(plain)
    through_adbc = connector(plain, reader="adbc")
    try:
        fast = read_all(through_duckdb, "plain")
        driver = read_all(through_adbc, "plain")
    finally:
        through_duckdb.close()
        through_adbc.close()
    assert fast.num_rows == 200_000
    assert fast.schema == driver.schema
    for name in fast.column_names:
        assert comparable(fast)[name].equals(comparable(driver)[name]), name
    first = fast.slice(0, 3).to_pylist()
    assert (first[0]["code"], first[0]["label"]) == ("ab", "héllo ✓")
    assert (first[1]["note"], first[1]["code"]) == ("a'quote\"and,comma", "")
    assert all(value is None for key, value in first[2].items() if key != "id")


def test_char_columns_keep_the_padding_postgres_sends(pg_database: str) -> None:
    """DuckDB's reader trims CHAR(n); a table with such a column is read through the driver,
    so its values stay as they were."""
    run_sql(pg_database, "CREATE TABLE coded (id int, code char(6), name text)",
            "INSERT INTO coded VALUES (1, 'ab', 'x'), (2, '', 'y')")  # fmt: skip
    conn = connector(pg_database)
    try:
        assert read_all(conn, "coded").column("code").to_pylist() == ["ab    ", "      "]
    finally:
        conn.close()


def _backend_queries(dsn: str, marker: str) -> list[str]:
    rows = query_rows(
        dsn,
        "SELECT query FROM pg_stat_activity WHERE query ILIKE '%" + marker + "%' "
        "AND pid <> pg_backend_pid() AND datname = current_database() AND state = 'active'",
    )
    return [str(query) for (query,) in rows]


@pytest.mark.parametrize("reader", ["duckdb", "adbc"])
def test_the_reader_option_chooses_who_decodes_the_copy_stream(pg_database: str,
                                                               reader: str) -> None:  # fmt: skip
    """What an operator sees in pg_stat_activity: DuckDB's COPY of the statement with
    `reader: duckdb`, the driver's own with `reader: adbc`."""
    conn = connector(pg_database, reader=reader)
    marker = f"reader_marker_{reader}"
    handle = _raw(conn, f"SELECT pg_sleep(1.5)::text AS {marker}",
                  pa.schema([(marker, pa.string())]))  # fmt: skip
    seen: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + 1.2
        while not seen and time.monotonic() < deadline:
            seen.extend(_backend_queries(pg_database, marker))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert conn.execute(handle).read_all().num_rows == 1
    finally:
        watcher.join()
        conn.close()
    assert seen, "the statement never showed as active"
    assert ("__unnamed_subquery" in seen[0]) is (reader == "duckdb")


def test_an_error_before_the_first_row_is_the_drivers_error(plain: str) -> None:
    """A statement failing at the start runs again on ADBC, whose error the caller gets."""
    conn = connector(plain)
    handle = _raw(conn, "SELECT CAST(CAST(note AS numeric) AS numeric(15,2)) AS n FROM plain "
                  "WHERE id = 2", pa.schema([("n", pa.decimal128(15, 2))]))  # fmt: skip
    try:
        with pytest.raises(QueryValueError) as duckdb_error:
            conn.execute(handle).read_all()
    finally:
        conn.close()
    conn = connector(plain, reader="adbc")
    try:
        with pytest.raises(QueryValueError) as adbc_error:
            conn.execute(handle).read_all()
    finally:
        conn.close()
    assert duckdb_error.value.message == adbc_error.value.message
    assert "a value in this query cannot be computed" in str(duckdb_error.value)


def test_a_mid_stream_value_error_fails_the_query(plain: str) -> None:
    """Rows already read, then PostgreSQL fails on a later row: the query fails, never a
    short result (DuckDB reads ahead of its consumer, so the failing row is far down)."""
    conn = connector(plain)
    handle = _raw(conn, "SELECT g AS id, 100 / (g - 1950000) AS q "
                  "FROM generate_series(1, 2000000) AS g",
                  pa.schema([("id", pa.int32()), ("q", pa.int32())]))  # fmt: skip
    rows = 0

    def read() -> None:
        nonlocal rows
        for batch in conn.execute(handle):
            rows += batch.num_rows

    try:
        with pytest.raises(pa.ArrowInvalid, match="a value in this query cannot be computed "
                           r"\(a division by zero\)"):  # fmt: skip
            read()
    finally:
        conn.close()
    assert 0 < rows < 1_950_000


def test_an_unknown_reader_is_a_config_error(pg_database: str) -> None:
    with pytest.raises(ConfigError, match="option `reader` is 'fast'; use `duckdb`"):
        connector(pg_database, reader="fast")


def test_a_pooled_reader_connection_killed_while_idle_is_replaced(plain: str) -> None:
    conn = connector(plain, pool_size=1)
    try:
        assert read_all(conn, "plain").num_rows == 200_000
        run_sql(plain, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")  # fmt: skip
        time.sleep(0.2)
        assert read_all(conn, "plain").num_rows == 200_000
    finally:
        conn.close()



def _pool_backend(conn: PostgresConnector) -> int:
    """The pid of the connector's one ADBC connection (pool_size 1)."""
    driver = conn.pool.acquire()
    try:
        with driver.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            row = cursor.fetchone()
    finally:
        conn.pool.release(driver)
    assert row is not None
    return int(row[0])


def _last_statement(dsn: str, pid: int) -> str:
    rows = query_rows(dsn, f"SELECT query FROM pg_stat_activity WHERE pid = {pid}")
    return str(rows[0][0])


@pytest.mark.parametrize(("rows", "through_driver"), [(300, True), (20_000, False)])
def test_a_statement_that_returned_few_rows_is_read_through_the_driver_next_time(
    plain: str, rows: int, through_driver: bool
) -> None:
    # read_sizes.py: DuckDB's set-up is five round trips, the driver's two.
    conn = connector(plain, pool_size=1)
    try:
        pid = _pool_backend(conn)
        handle = _raw(conn, f"SELECT id, label FROM plain WHERE id <= {rows}",
                      pa.schema([("id", pa.int32()), ("label", pa.string())]))  # fmt: skip
        first = conn.execute(handle).read_all()
        assert "plain" not in _last_statement(plain, pid)  # DuckDB's connection read it
        second = conn.execute(handle).read_all()
        assert ("plain" in _last_statement(plain, pid)) is through_driver
    finally:
        conn.close()
    assert first.num_rows == second.num_rows == rows
    assert first.equals(second)
