"""A strict-pushdown refusal names what the caller wrote, never the sources' physical names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshgate.errors import PushdownRequired
from meshgate.service import QueryService


@pytest.fixture(scope="module")
def service(demo_dir: Path) -> Iterator[QueryService]:
    svc = QueryService.from_config(demo_dir)
    yield svc
    svc.close()


def test_strict_refusal_hides_physical_columns(service: QueryService) -> None:
    # sales.customers.name is the source column cust_name; the DuckDB source does not take
    # regexp_matches, and the cross-source join keeps the query from going down whole.
    sql = ("SELECT c.name FROM sales.customers c JOIN hr.employees e ON e.id = c.customer_id "
           "WHERE regexp_matches(c.name, '^A')")  # fmt: skip
    with pytest.raises(PushdownRequired) as caught:
        service.prepare(sql, service.principal("admin"), strict=True)
    message = caught.value.message
    assert "regexp_matches" in message
    for physical in ("cust_name", "customer_master", "cust_no", "sales_db", "hr_db"):
        assert physical not in message
    explain = service.explain(sql, service.principal("admin"))
    assert "cust_name" in " ".join(explain.column("sql").to_pylist())  # admins still see it


@pytest.mark.parametrize(("sql", "part"), [
    ("SELECT region, count(*) FROM hr.employees WHERE regexp_matches(name, 'a') "
     "GROUP BY region ORDER BY 2",
     "the source cannot run the query's aggregation, WHERE and ORDER BY "
     "(using count, regexp_matches)"),
    ("SELECT name, row_number() OVER (ORDER BY hire_date) FROM hr.employees",
     "the source cannot run the query's window functions (using row_number)"),
    ("SELECT c.name FROM sales.customers c JOIN hr.employees e ON e.id = c.customer_id "
     "WHERE regexp_matches(c.name, '^A')",
     "a filter the source cannot evaluate (using regexp_matches)"),
])  # fmt: skip
def test_strict_refusal_says_what_would_run_in_the_merge(
    service: QueryService, sql: str, part: str
) -> None:
    # SQLite (hr) runs neither regexp_matches nor window functions
    with pytest.raises(PushdownRequired) as caught:
        service.prepare(sql, service.principal("admin"), strict=True)
    assert caught.value.message == (
        "strict pushdown: a part of this query would run in meshgate's merge layer instead of "
        f"at its source: {part}; an admin's EXPLAIN shows which part; rewrite the query, or "
        "turn strict pushdown off (session option strict_pushdown=false)"
    )
    for physical in ("employees\"", "hr_db", "$source", "__fragment"):
        assert physical not in caught.value.message
