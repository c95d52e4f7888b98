"""Strict pushdown: a query fails instead of moving work the user expected at a source."""

from __future__ import annotations

import duckdb
import pytest

from meshgate.errors import PushdownRequired
from meshgate.service import QueryService

pytestmark = pytest.mark.postgres


def test_fully_pushed_query_runs_in_strict_mode(
    service: QueryService, oracle: duckdb.DuckDBPyConnection
) -> None:
    sql = "SELECT COUNT(*) AS n FROM crm.tickets WHERE priority = 1"
    table = service.query(sql, service.principal("admin"), strict=True)
    [(count,)] = oracle.execute(sql).fetchall()
    assert count > 0
    assert table.column("n").to_pylist() == [count]


def test_filter_the_source_cannot_run_fails_in_strict_mode(
    service: QueryService, oracle: duckdb.DuckDBPyConnection
) -> None:
    sql = (
        "SELECT e.name FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id "
        "WHERE regexp_matches(e.name, '1[0-9]')"
    )
    with pytest.raises(PushdownRequired, match=r"(?i)regexp_matches"):
        service.prepare(sql, service.principal("admin"), strict=True)
    # the same query runs when strict mode is off: the filter is evaluated in the merge
    got = service.query(sql, service.principal("admin")).column("name").to_pylist()
    want = [name for (name,) in oracle.execute(sql).fetchall()]
    assert want
    assert sorted(got) == sorted(want)


def test_filter_above_outer_join_fails_in_strict_mode(service: QueryService) -> None:
    sql = (
        "SELECT o.order_id FROM sales.orders o LEFT JOIN hr.employees e "
        "ON e.id = o.employee_id WHERE e.region IS NULL"
    )
    with pytest.raises(PushdownRequired, match="strict pushdown"):
        service.prepare(sql, service.principal("admin"), strict=True)
