"""Planner goldens: input SQL -> the exact EXPLAIN (what each source receives, what merges).

Each file in golden/ holds a query and its expected plan. The plan is checked without any
database server: PostgreSQL's part is planned by tests/planner/stub.py. With PostgreSQL, every
query is also planned by the real connector (same golden) and executed through meshgate and
compared with DuckDB running the same SQL over all the data in one place (the differential
check), so a golden can never bless a wrong answer.

Regenerate after an intended planner change with MESHGATE_UPDATE_GOLDENS=1 (from the stub
test), then read the diff.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from meshgate.service import QueryService

GOLDEN = Path(__file__).parent / "golden"
FILES = sorted(GOLDEN.glob("*.sql"))
UPDATE = os.environ.get("MESHGATE_UPDATE_GOLDENS") == "1"


def split(text: str) -> tuple[str, str, str]:
    """(shape, query, plan) of a golden file."""
    header, _, rest = text.partition("\n")
    query, _, plan = rest.partition("-- plan\n")
    return header.removeprefix("-- shape:").strip(), query.strip(), plan.strip()


def plan_text(service: QueryService, sql: str, mesh_dir: Path) -> str:
    explain = service.explain(sql, service.principal("admin"))
    lines = []
    for row in explain.to_pylist():
        lines.append(f"{row['step']} @ {row['source']}: {row['detail']}")
        if row["sql"]:
            lines.append(f"  {row['sql']}")
    return "\n".join(lines).replace(str(mesh_dir), "<mesh>")


def rows(table: pa.Table | Any) -> list[tuple[Any, ...]]:
    return [tuple(_normal(v) for v in r.values()) for r in table.to_pylist()]


def _normal(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, str(type(v)), v if v is not None else 0) for v in row)


def test_there_are_enough_shapes() -> None:
    assert len(FILES) >= 25


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_plan_matches_golden(path: Path, stub_service: QueryService, stub_mesh_dir: Path) -> None:
    shape, query, expected = split(path.read_text())
    actual = plan_text(stub_service, query, stub_mesh_dir)
    if UPDATE:
        path.write_text(f"-- shape: {shape}\n{query}\n-- plan\n{actual}\n")
    else:
        assert actual == expected, f"plan of {path.name} changed:\n{actual}"


@pytest.mark.postgres
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_real_sources_plan_the_golden_and_answer_like_the_oracle(
    path: Path, service: QueryService, oracle: duckdb.DuckDBPyConnection, mesh_dir: Path
) -> None:
    _, query, expected = split(path.read_text())
    actual = plan_text(service, query, mesh_dir)
    assert actual == expected, f"plan of {path.name} with the real PostgreSQL:\n{actual}"
    got = rows(service.query(query, service.principal("admin")))
    want = rows(oracle.execute(query).to_arrow_table())
    if "order by" in query.lower().rsplit(")", 1)[-1]:
        assert got == want
    else:
        assert sorted(got, key=_key) == sorted(want, key=_key)


PRODUCTS = ["sales.orders", "sales.customers", "sales.items", "sales.order_totals",
            "hr.employees", "crm.contacts", "crm.tickets"]  # fmt: skip


@pytest.mark.postgres
@pytest.mark.parametrize("product", PRODUCTS)
def test_every_product_reads_like_its_source(
    product: str, service: QueryService, oracle: duckdb.DuckDBPyConnection
) -> None:
    """Names, types and values of each product exactly as the source's own reader gives them."""
    sql = f"SELECT * FROM {product}"
    got = service.query(sql, service.principal("admin"))
    want = oracle.execute(sql).to_arrow_table()
    assert got.schema.names == want.schema.names
    assert got.schema.types == want.schema.types
    assert sorted(got.to_pylist(), key=repr) == sorted(want.to_pylist(), key=repr)
