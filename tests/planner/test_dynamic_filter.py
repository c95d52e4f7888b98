"""Dynamic filtering: a selective fragment's keys restrict the scan it joins with."""

from __future__ import annotations

import pytest

from meshgate.service import QueryService
from meshgate.sqlconnector import SqlConnector

pytestmark = pytest.mark.postgres

QUERY = (
    "SELECT o.order_id, i.qty FROM sales.orders o JOIN sales.items i ON i.order_id = o.order_id "
    "WHERE o.amount > 900 AND i.qty > 5"
)


def test_probe_scan_receives_the_build_side_keys(service: QueryService) -> None:
    lake = service.connectors["lake"]
    assert isinstance(lake, SqlConnector)
    admin = service.principal("admin")
    expected_keys = (
        service.query(
            "SELECT order_id FROM sales.orders WHERE amount > 900 ORDER BY order_id", admin
        )
        .column("order_id")
        .to_pylist()
    )
    assert 0 < len(expected_keys) < 50
    lake.sent_sql.clear()
    result = service.query(QUERY, admin)
    sent = [sql for sql in lake.sent_sql if "items.parquet" in sql]
    assert len(sent) == 1
    assert " IN (" in sent[0]
    for key in expected_keys:
        assert str(key) in sent[0]
    assert set(result.column("order_id").to_pylist()) <= set(expected_keys)


def test_too_selective_build_side_sends_a_false_filter_and_no_rows(service: QueryService) -> None:
    lake = service.connectors["lake"]
    assert isinstance(lake, SqlConnector)
    lake.sent_sql.clear()
    result = service.query(
        "SELECT o.order_id, i.qty FROM sales.orders o JOIN sales.items i "
        "ON i.order_id = o.order_id WHERE o.amount > 1000000",
        service.principal("admin"),
    )
    assert result.num_rows == 0
    assert any("FALSE" in sql.upper() for sql in lake.sent_sql)
