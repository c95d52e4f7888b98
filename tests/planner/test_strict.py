"""Strict pushdown: a query fails instead of moving work the user expected at a source."""

from __future__ import annotations

import pytest

from meshgate.errors import PushdownRequired
from meshgate.service import QueryService

pytestmark = pytest.mark.postgres


def test_fully_pushed_query_runs_in_strict_mode(service: QueryService) -> None:
    table = service.query(
        "SELECT COUNT(*) AS n FROM crm.tickets WHERE priority = 1",
        service.principal("admin"),
        strict=True,
    )
    assert table.num_rows == 1


def test_filter_the_source_cannot_run_fails_in_strict_mode(service: QueryService) -> None:
    sql = (
        "SELECT e.name FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id "
        "WHERE regexp_matches(e.name, '1[0-9]')"
    )
    with pytest.raises(PushdownRequired, match=r"(?i)regexp_matches"):
        service.prepare(sql, service.principal("admin"), strict=True)
    # the same query runs when strict mode is off: the filter is evaluated in the merge
    assert service.query(sql, service.principal("admin")).num_rows > 0


def test_filter_above_outer_join_fails_in_strict_mode(service: QueryService) -> None:
    sql = (
        "SELECT o.order_id FROM sales.orders o LEFT JOIN hr.employees e "
        "ON e.id = o.employee_id WHERE e.region IS NULL"
    )
    with pytest.raises(PushdownRequired, match="strict pushdown"):
        service.prepare(sql, service.principal("admin"), strict=True)
