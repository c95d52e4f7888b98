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
