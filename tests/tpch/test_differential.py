"""All 22 TPC-H queries through meshgate over Flight SQL equal DuckDB over the same data.

The mesh splits TPC-H (SF 0.01) between PostgreSQL (orders, customer, nation, region,
supplier) and Parquet (lineitem, part, partsupp); the reference is one DuckDB holding all
eight tables. Column names and Arrow types must be DuckDB's exactly, decimals compare exactly;
order is compared wherever the query orders.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from benchmarks.tpch import TABLES, tpch_queries

pytestmark = pytest.mark.postgres

SCALE = 0.01
QUERIES = tpch_queries()


def _normal(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(_normal(v) for v in row.values()) for row in table.to_pylist()]


def _orders(sql: str) -> bool:
    return sqlglot.parse_one(sql, read="duckdb").args.get("order") is not None


def _answers(
    number: int, client: Any, reference: duckdb.DuckDBPyConnection
) -> tuple[pa.Table, pa.Table]:
    """(meshgate's answer over Flight SQL, the reference's) to TPC-H query `number`."""
    sql = QUERIES[number - 1]
    with client.cursor() as cursor:
        cursor.execute(sql)
        got = cursor.fetch_arrow_table()
    return got, reference.execute(sql).to_arrow_table()


NUMBERS = range(1, 23)
IDS = [f"q{n:02d}" for n in NUMBERS]


@pytest.mark.parametrize("number", NUMBERS, ids=IDS)
def test_tpch_query_matches_single_engine(
    number: int, client: Any, reference: duckdb.DuckDBPyConnection
) -> None:
    """Every column's Arrow type (by position) and every value, exactly."""
    got, want = _answers(number, client, reference)
    assert got.schema.types == want.schema.types
    assert got.num_rows == want.num_rows
    got_rows, want_rows = _rows(got), _rows(want)
    if _orders(QUERIES[number - 1]):
        assert got_rows == want_rows
    else:
        assert sorted(got_rows, key=repr) == sorted(want_rows, key=repr)


@pytest.mark.parametrize("number", NUMBERS, ids=IDS)
def test_tpch_columns_are_named_like_the_single_engine(
    number: int, client: Any, reference: duckdb.DuckDBPyConnection
) -> None:
    got, want = _answers(number, client, reference)
    assert got.column_names == want.column_names


def test_queries_are_the_22_tpch_queries() -> None:
    assert len(QUERIES) == 22
    for sql in QUERIES:
        tables = {t.name for t in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Table)}
        assert tables & {t.name for t in TABLES}
