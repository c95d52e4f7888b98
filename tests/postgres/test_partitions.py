"""Parallel ctid-range scans (`partitions` option) against a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from meshgate_postgres import PostgresConnector
from meshgate_postgres.partitions import default_partitions, page_ranges
from sqlglot import exp

from meshgate.errors import QueryCancelled
from meshgate.spi import ConnectorContext, PushedQuery, QueryContext, SourceTable
from tests.postgres.proposals import offer

pytestmark = pytest.mark.postgres

ROWS = 1_300_000  # ~12,000 pages: enough for two ranges


def run_sql(dsn: str, *statements: str) -> None:
    with pg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@pytest.fixture(scope="module")
def big_table(pg_server_dsn: str) -> Iterator[str]:
    from tests.conftest import fresh_pg_database

    with fresh_pg_database(pg_server_dsn) as dsn:
        run_sql(
            dsn,
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS pad, (g % 7)::numeric(6,2) AS x "
            f"FROM generate_series(1, {ROWS}) AS g",
            "ANALYZE big",
        )
        yield dsn


@pytest.fixture(params=["adbc", "duckdb"])
def reader(request: pytest.FixtureRequest) -> str:
    """Both readers split a scan: the driver's ranges and DuckDB's postgres extension's."""
    return str(request.param)


def connector(dsn: str, reader: str, **options: Any) -> PostgresConnector:
    settings = {"dsn": dsn, "reader": reader, **options}
    return PostgresConnector(ConnectorContext("warehouse", settings, Path(".")))


def held(conn: PostgresConnector) -> int:
    """Connections the source's reads hold: the pool's and DuckDB's reader's."""
    return conn.pool_usage().in_use


def scan(conn: PostgresConnector) -> PushedQuery:
    table = SourceTable("public", "big")
    return conn.scan(table, "b", conn.table_columns(table))


def test_ranges_cover_every_page_once() -> None:
    assert page_ranges(10, 3) == [(0, 3), (3, 6), (6, None)]


def test_a_large_plain_scan_reads_in_ranges_and_returns_each_row_once(
    big_table: str, reader: str
) -> None:
    conn = connector(big_table, reader, partitions=2)
    table = conn.execute(scan(conn)).read_all()
    sent = list(conn.sent_sql)[-2:]
    assert all("ctid" in sql for sql in sent)
    assert table.num_rows == ROWS
    assert pc.count_distinct(table.column("id")).as_py() == ROWS
    assert pc.sum(table.column("x")).as_py() == sum(g % 7 for g in range(1, ROWS + 1))
    conn.close()


def test_rows_updated_during_the_scan_are_neither_duplicated_nor_lost(
    big_table: str, reader: str
) -> None:
    conn = connector(big_table, reader, partitions=2)
    rows = conn.execute(scan(conn))
    first = rows.read_next_batch()
    # New versions of these rows land on the last pages: the range reading those must not
    # see them, because every range reads the snapshot taken before the update.
    marker = f"moved-{reader}"
    run_sql(big_table, f"UPDATE big SET pad = '{marker}' WHERE id <= 5000")
    rest = rows.read_all()
    ids = pc.count_distinct(rest.column("id")).as_py() + first.num_rows
    assert first.num_rows + rest.num_rows == ROWS
    assert ids == ROWS
    assert marker not in set(rest.column("pad").to_pylist()) | set(first.column("pad").to_pylist())
    conn.close()


def test_closing_early_cancels_every_range_and_returns_the_connections(
    big_table: str, reader: str
) -> None:
    conn = connector(big_table, reader, partitions=2)
    rows = conn.execute(scan(conn))
    rows.read_next_batch()
    rows.close()
    assert held(conn) == 0
    assert conn.execute(scan(conn)).read_all().num_rows == ROWS
    conn.close()


def test_without_a_free_connection_the_scan_runs_on_one(big_table: str, reader: str) -> None:
    conn = connector(big_table, reader, partitions=2, pool_size=1)
    assert conn.execute(scan(conn)).read_all().num_rows == ROWS
    assert "ctid" not in conn.sent_sql[-1]
    conn.close()


def test_ordered_or_limited_scans_are_never_split(big_table: str, reader: str) -> None:
    conn = connector(big_table, reader, partitions=2)
    top = offer(conn, "SELECT b.id AS id FROM public.big AS b ORDER BY b.id LIMIT 3")
    assert top is not None
    assert conn.execute(top).read_all().column("id").to_pylist() == [1, 2, 3]
    assert "ctid" not in conn.sent_sql[-1]
    conn.close()


def test_by_default_a_large_scan_takes_all_connections_but_one(big_table: str, reader: str) -> None:
    conn = connector(big_table, reader, pool_size=3)
    assert conn.partitions == default_partitions(3) == 2
    table = conn.execute(scan(conn)).read_all()
    assert table.num_rows == ROWS
    assert sum("ctid" in sql for sql in list(conn.sent_sql)[-2:]) == 2
    conn.close()


def test_by_default_a_pool_of_one_or_two_never_splits(big_table: str, reader: str) -> None:
    assert default_partitions(1) == default_partitions(2) == 1
    assert default_partitions(4) == 3
    assert default_partitions(20) == 4
    conn = connector(big_table, reader, pool_size=2)
    assert conn.execute(scan(conn)).read_all().num_rows == ROWS
    assert "ctid" not in conn.sent_sql[-1]
    conn.close()


def test_a_cancelled_default_scan_stops_every_range_at_postgres(
    big_table: str, reader: str
) -> None:
    conn = connector(big_table, reader)
    context = QueryContext.standalone()
    rows = conn.execute(scan(conn), context)
    rows.read_next_batch()
    assert sum("ctid" in sql for sql in list(conn.sent_sql)[-2:]) == 2
    assert _scanning(big_table) >= 1  # a range may already sit whole in the queue
    context.cancel.cancel()
    with pytest.raises((QueryCancelled, pa.ArrowInvalid), match="was cancelled"):
        rows.read_all()  # through the Arrow C stream the error arrives wrapped
    rows.close()
    assert held(conn) == 0
    assert _scanning(big_table) == 0
    conn.close()


def _scanning(dsn: str) -> int:
    with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%ctid%'")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def test_by_default_only_filtered_scans_postgres_expects_many_rows_of_are_split(
    big_table: str, reader: str
) -> None:
    """A filtered scan may be a point lookup: by default it stays one statement unless
    PostgreSQL's planner expects at least 100,000 rows of it; configured, every one splits."""
    broad = ("SELECT b.id AS id FROM public.big AS b WHERE b.id > 10", ROWS - 10)
    narrow = ("SELECT b.id AS id FROM public.big AS b WHERE b.id <= 5000", 5000)
    for options, query, split in (({}, broad, True), ({}, narrow, False),
                                  ({"partitions": 2}, narrow, True)):  # fmt: skip
        conn = connector(big_table, reader, **options)
        handle = offer(conn, query[0])
        assert handle is not None
        assert conn.execute(handle).read_all().num_rows == query[1]
        assert ("ctid" in conn.sent_sql[-1]) is split, (options, query[0])
        conn.close()


def test_a_filtered_scan_with_bound_parameters_is_never_split_by_default(
    big_table: str, reader: str
) -> None:
    """Its estimate would need its values; every parameterised point lookup is such a read."""
    conn = connector(big_table, reader)
    whole = scan(conn)
    select = whole.select.copy().where(
        exp.GT(this=exp.column("id", table="b"), expression=exp.Placeholder(this="1"))
    )
    handle = PushedQuery(select=select, schema=whole.schema, inputs=whole.inputs)
    context = QueryContext.standalone(parameters=(10,))
    assert conn.execute(handle, context).read_all().num_rows == ROWS - 10
    assert "ctid" not in conn.sent_sql[-1]
    conn.close()


def test_duckdbs_reader_reads_each_range_on_a_connection_of_its_own(big_table: str) -> None:
    conn = connector(big_table, "duckdb", partitions=2)
    rows = conn.execute(scan(conn))
    first = rows.read_next_batch()
    # Two reads open, none of them the driver's: each range is a DuckDB read (a range holds
    # far more rows than the batches its thread may queue ahead, so neither has ended).
    assert (held(conn), conn.pool.borrowed) == (2, 0)
    assert first.num_rows + rows.read_all().num_rows == ROWS
    assert held(conn) == 0
    conn.close()


def test_duckdbs_reader_runs_the_ranges_of_a_selective_scan_at_the_same_time(
    big_table: str,
) -> None:
    """Each range of a selective scan returns fewer rows than a batch, so it sends its first
    batch only at its end: the ranges must run side by side at PostgreSQL, not in turn."""
    conn = connector(big_table, "duckdb", partitions=2)
    handle = offer(conn, "SELECT b.id AS id FROM public.big AS b WHERE b.pad LIKE '%f%f%f%f%f%0'")
    assert handle is not None
    most = [0]
    done = threading.Event()

    def watch() -> None:
        with pg.connect(big_table, autocommit=True) as watching, watching.cursor() as cursor:
            while not done.is_set():
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                               "current_database() AND pid <> pg_backend_pid() AND "
                               "state = 'active' AND query LIKE '%ctid%'")  # fmt: skip
                row = cursor.fetchone()
                most[0] = max(most[0], int(row[0]) if row else 0)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        rows = conn.execute(handle).read_all()
    finally:
        done.set()
        watcher.join()
    assert sum("ctid" in sql and "LIKE" in sql for sql in list(conn.sent_sql)[-2:]) == 2
    assert 0 < rows.num_rows < ROWS // 100
    assert most[0] == 2
    conn.close()
