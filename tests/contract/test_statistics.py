"""`statistics(handle)` on every contract source: what each kind knows, read cheaply.

The contract tables hold 8 items: `id` 1..8 (never NULL), `qty` from -7 to 10 with 2 NULLs,
`day` from 2023-12-31 to 2024-03-31 with 1 NULL. Databases report statistics after their
ANALYZE; Parquet footers always carry them; CSV files carry none. Only PostgreSQL's planner
estimates filtered reads from statistics; elsewhere such an estimate is unknown (None).
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import adbc_driver_postgresql.dbapi as pg
import pytest
import sqlglot
from meshgate_files import FilesConnector
from meshgate_sqlite import SQLiteConnector

from meshgate.spi import CANONICAL_DIALECT, PushedQuery

from .sources import TABLES, ContractSource

ROWS = len(TABLES["items"])


def kind(source: ContractSource) -> str:
    connector = source.connector
    return f"files_{connector.format}" if isinstance(connector, FilesConnector) else connector.kind


def analyze(source: ContractSource) -> None:
    """Have the database gather its statistics, as its operators would."""
    connector = source.connector
    if isinstance(connector, SQLiteConnector):
        with sqlite3.connect(connector.path) as connection:
            connection.execute("ANALYZE")
    elif connector.kind == "postgres":
        from meshgate_postgres import PostgresConnector

        assert isinstance(connector, PostgresConnector)
        with pg.connect(connector.pool.dsn, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute("ANALYZE public.items")


def scan(source: ContractSource) -> PushedQuery:
    return source.connector.scan(source.table("items"), "t", source.columns("items"))


def test_a_table_read_unchanged_reports_its_rows(source: ContractSource) -> None:
    if kind(source) == "sqlite":
        assert source.connector.statistics(scan(source)) is None, "no ANALYZE yet: no figures"
    analyze(source)
    statistics = source.connector.statistics(scan(source))
    if kind(source) == "files_csv":
        assert statistics is None, "a CSV file records no statistics: unknown, not guessed"
        return
    assert statistics is not None
    assert statistics.row_count == ROWS
    assert source.connector.estimate_rows(scan(source)) == ROWS


@pytest.mark.parametrize("column", ["id", "qty"])
def test_column_statistics_match_the_data(source: ContractSource, column: str) -> None:
    analyze(source)
    statistics = source.connector.statistics(scan(source))
    if kind(source) == "files_csv":
        assert statistics is None
        return
    assert statistics is not None
    values = [v for v in TABLES["items"].column(column).to_pylist() if v is not None]
    nulls = (ROWS - len(values)) / ROWS
    found = statistics.columns.get(column)
    if kind(source) in ("files_csv", "sqlite"):
        assert found is None, "the source keeps no per-column figures here"
        return
    assert found is not None
    if found.null_fraction is not None:
        assert found.null_fraction == pytest.approx(nulls)
    if found.distinct_count is not None:
        assert found.distinct_count == pytest.approx(len(set(values)), abs=1)
    assert (found.min, found.max) == (min(values), max(values))
    if kind(source) == "files_parquet":
        assert found.null_fraction == pytest.approx(nulls)
    if kind(source) == "postgres":
        assert found.null_fraction == pytest.approx(nulls)
        assert found.distinct_count == len(set(values))


def test_dates_have_bounds_where_the_source_records_them(source: ContractSource) -> None:
    analyze(source)
    statistics = source.connector.statistics(scan(source))
    if kind(source) == "files_csv":
        assert statistics is None
        return
    assert statistics is not None
    found = statistics.columns.get("day")
    if kind(source) in ("files_csv", "sqlite"):
        assert found is None
        return
    assert found is not None
    assert (found.min, found.max) == (dt.date(2023, 12, 31), dt.date(2024, 3, 31))


def test_columns_are_keyed_by_the_handle_output_names(source: ContractSource) -> None:
    analyze(source)
    projection = [sqlglot.parse_one(p, read=CANONICAL_DIALECT) for p in ("t.id AS ident",)]
    handle = source.connector.apply_projection(scan(source), projection)
    assert handle is not None
    statistics = source.connector.statistics(handle)
    if kind(source) == "files_csv":
        assert statistics is None
        return
    assert statistics is not None
    assert "id" not in statistics.columns
    if kind(source) not in ("files_csv", "sqlite"):
        assert statistics.columns["ident"].max == 8


def test_a_filtered_handle_gets_the_source_estimate_not_the_table_figures(
    source: ContractSource,
) -> None:
    analyze(source)
    condition = sqlglot.parse_one("t.qty > 5", read=CANONICAL_DIALECT)
    applied = source.connector.apply_filter(scan(source), [condition])
    assert applied is not None
    statistics = source.connector.statistics(applied.handle)
    if kind(source) != "postgres":
        # SQLite offers no planner estimate; DuckDB's (also for files) assumes a filter keeps
        # 20% of the rows whatever the data: no statistic supports it, so it is unknown.
        assert statistics is None
        assert source.connector.estimate_rows(applied.handle) is None
        return
    assert statistics is not None
    assert not statistics.columns
    assert statistics.row_count is not None
    assert 0 <= statistics.row_count < ROWS
