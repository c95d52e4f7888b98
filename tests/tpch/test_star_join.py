"""Star joins written as comma joins never pull their fact tables whole.

The issue behind this file: a star join over many products written `FROM a, b, c WHERE a.k =
b.k AND ...` pulled its fragments whole and grew the server past 20 GB. Over the split layout
(orders, customer, nation, region, supplier in PostgreSQL; lineitem, part, partsupp in
Parquet, read by the merge itself) each query here must answer as the single-engine
reference does and move out of PostgreSQL no more rows than the minimal per-table pushdown
(each table with only its own filters, benchmarks/minimal_pushdown.py), and a small share of
the PostgreSQL tables' rows: the conjuncts go into the fragments, the PostgreSQL tables
joined on keys go down as one join, and the selective side filters the rest.
"""

from __future__ import annotations

from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pytest

from benchmarks.minimal_pushdown import minimal_rows
from benchmarks.run import postgres_rows
from benchmarks.star_join import PRODUCT_HEAVY, STAR
from benchmarks.suite_tpch import difference
from benchmarks.tpch import TABLES
from meshgate.service import QueryService

pytestmark = pytest.mark.postgres

POSTGRES_TABLES = {t.name for t in TABLES if t.in_postgres}


def _postgres_table_rows(dsn: str) -> int:
    with pg.connect(dsn) as connection, connection.cursor() as cursor:
        total = 0
        for name in sorted(POSTGRES_TABLES):
            cursor.execute(f"SELECT count(*) FROM tpch.{name}")
            row = cursor.fetchone()
            assert row is not None
            total += int(row[0])
        return total


# The share of the PostgreSQL tables' rows each may move: the star's selective PostgreSQL
# side is one nation of 25 (and its suppliers); the product-heavy one filters only region in
# PostgreSQL (one of 5: a fifth of orders, found through customer and nation). Joined in one
# fragment, orders of a nation times that nation's suppliers would be more than all the rows.
CASES = {"star": (STAR, 20), "product_heavy": (PRODUCT_HEAVY, 4)}


@pytest.mark.parametrize("case", list(CASES))
def test_comma_star_join_moves_a_bounded_number_of_rows(
    case: str,
    service: QueryService,
    tpch_mesh: tuple[Path, str],
    reference: duckdb.DuckDBPyConnection,
) -> None:
    sql, share = CASES[case]
    dsn = tpch_mesh[1]
    got = service.query(sql, service.principal("admin"))
    want = reference.execute(sql).to_arrow_table()
    assert want.num_rows > 0, "the query selects rows at this scale"
    assert difference(sql, got, want) == ""

    moved = postgres_rows(service, sql)
    counted = minimal_rows(sql, POSTGRES_TABLES, dsn, "tpch")
    assert counted is not None
    minimal, _ = counted
    total = _postgres_table_rows(dsn)
    plan = service.explain(sql, service.principal("admin")).to_pylist()
    shown = "\n".join(" | ".join(str(v) for v in row.values()) for row in plan)
    print(f"rows out of PostgreSQL: {moved} (minimal per-table {minimal}, tables {total})\n{shown}")
    assert moved <= minimal, shown
    assert moved <= total // share, shown
