"""Dynamic filtering: a selective fragment's keys restrict the scan it joins with.

The keys the probe's source receives and the joined rows are both checked against the planner
oracle (DuckDB over the sources' files and drivers, tests/planner/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from meshgate.catalog.loader import load_mesh
from meshgate.registry import create_connector, installed_kinds
from meshgate.service import QueryService
from meshgate.spi import Connector, ConnectorContext
from meshgate.sqlconnector import SqlConnector

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def service(mesh_dir: Path) -> Iterator[QueryService]:
    """The planner mesh with the lake read through fragments (`merge_scan: false`): the
    probe side whose SQL these tests read; by default the merge reads the Parquet itself."""
    definition = load_mesh(mesh_dir, known_source_kinds=installed_kinds())
    connectors: dict[str, Connector] = {}
    for name, source in definition.sources.items():
        options = {**source.options, "merge_scan": False} if name == "lake" else source.options
        context = ConnectorContext(name, options, definition.directory)
        connectors[name] = create_connector(source.kind, context)
    svc = QueryService(definition, connectors)
    yield svc
    svc.close()


def join(amount: int, orders: str = "") -> str:
    """Orders over `amount` (and `orders`, a further condition on o) joined with items."""
    return (
        "SELECT o.order_id, i.item_id, i.qty FROM sales.orders o "
        "JOIN sales.items i ON i.order_id = o.order_id "
        f"WHERE o.amount > {amount} AND i.qty > 5{f' AND {orders}' if orders else ''}"
    )


def lake(service: QueryService) -> SqlConnector:
    connector = service.connectors["lake"]
    assert isinstance(connector, SqlConnector)
    connector.sent_sql.clear()
    return connector


def build_keys(oracle: duckdb.DuckDBPyConnection, amount: int, orders: str = "") -> list[int]:
    condition = f" AND {orders.replace('o.', '')}" if orders else ""
    found = oracle.execute(
        f"SELECT order_id FROM sales.orders WHERE amount > {amount}{condition} ORDER BY order_id"
    ).fetchall()
    return [key for (key,) in found]


def probe_filter(connector: SqlConnector) -> exp.Expr:
    """The condition on items.order_id in the one query the lake received for items."""
    [sent] = [sql for sql in connector.sent_sql if "items.parquet" in sql]
    where = sqlglot.parse_one(sent, read=connector.capabilities.dialect).args.get("where")
    assert isinstance(where, exp.Where)
    conjuncts = where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
    conditions = [c for c in conjuncts if isinstance(c, exp.In | exp.Between | exp.Boolean)]
    assert len(conditions) == 1, where.sql()
    return conditions[0]


def literals(nodes: list[Any]) -> list[int]:
    return [int(node.this) for node in nodes]


def same_rows(got: Any, want: Any) -> None:
    assert got.schema.names == want.schema.names
    assert got.schema.types == want.schema.types
    assert sorted(got.to_pylist(), key=repr) == sorted(want.to_pylist(), key=repr)


def test_few_build_keys_are_sent_as_an_in_list(
    service: QueryService, oracle: duckdb.DuckDBPyConnection
) -> None:
    keys = build_keys(oracle, 900)
    assert 0 < len(keys) < 50
    connector = lake(service)
    result = service.query(join(900), service.principal("admin"))
    condition = probe_filter(connector)
    assert isinstance(condition, exp.In)
    assert isinstance(condition.this, exp.Column)
    assert condition.this.name == "order_id"
    assert sorted(literals(condition.expressions)) == keys
    same_rows(result, oracle.execute(join(900)).to_arrow_table())


def test_many_build_keys_are_sent_as_their_range(
    service: QueryService, oracle: duckdb.DuckDBPyConnection
) -> None:
    """The build side's filter restricts its key (order_id <= 160 of 1..200, items reach
    210): its keys' range passes only part of the probe, so it is worth sending."""
    keys = build_keys(oracle, 100, "o.order_id <= 160")
    assert len(keys) > 100, "more keys than an IN-list carries"
    connector = lake(service)
    result = service.query(join(100, "o.order_id <= 160"), service.principal("admin"))
    condition = probe_filter(connector)
    assert isinstance(condition, exp.Between)
    assert isinstance(condition.this, exp.Column)
    assert condition.this.name == "order_id"
    assert literals([condition.args["low"], condition.args["high"]]) == [keys[0], keys[-1]]
    want = oracle.execute(join(100, "o.order_id <= 160")).to_arrow_table()
    assert want.num_rows > 0
    same_rows(result, want)


def test_a_build_side_too_wide_for_a_list_releases_the_probe_unfiltered(
    service: QueryService, oracle: duckdb.DuckDBPyConnection
) -> None:
    """The build side's size is unknown (sales keeps no statistics) and its key spans
    1..200 of the items' 1..210: only a list of keys would help, and once more than 100 keys
    have arrived the probe runs without waiting for the rest, unfiltered."""
    assert len(build_keys(oracle, 100)) > 100
    plan = service.explain(join(100), service.principal("admin")).to_pylist()
    [probe] = [row for row in plan if "items" in str(row.get("sql"))]
    assert "listed keys only" in str(probe), probe
    connector = lake(service)
    result = service.query(join(100), service.principal("admin"))
    [sent] = [sql for sql in connector.sent_sql if "items.parquet" in sql]
    assert "order_id" not in sent.split("WHERE", 1)[-1], sent
    same_rows(result, oracle.execute(join(100)).to_arrow_table())


def test_too_selective_build_side_sends_a_false_filter_and_no_rows(
    service: QueryService, oracle: duckdb.DuckDBPyConnection
) -> None:
    assert build_keys(oracle, 1_000_000) == []
    connector = lake(service)
    result = service.query(join(1_000_000), service.principal("admin"))
    condition = probe_filter(connector)
    assert isinstance(condition, exp.Boolean)
    assert condition.this is False
    same_rows(result, oracle.execute(join(1_000_000)).to_arrow_table())


def test_a_having_subquery_restricts_the_scan_it_joins_with(
    service: QueryService, oracle: duckdb.DuckDBPyConnection
) -> None:
    """TPC-H Q18's shape: `IN (SELECT k ... GROUP BY k HAVING ...)` is decorrelated into a
    LEFT JOIN whose right side the WHERE requires non-null, an inner join: the subquery's
    few keys restrict the items the lake sends."""
    sql = (
        "SELECT i.item_id, i.qty FROM sales.items i WHERE i.order_id IN "
        "(SELECT o.order_id FROM sales.orders o GROUP BY o.order_id HAVING MAX(o.amount) > 900)"
    )
    keys = build_keys(oracle, 900)
    assert 0 < len(keys) < 50
    plan = service.explain(sql, service.principal("admin")).to_pylist()
    [probe] = [row for row in plan if "items" in str(row.get("sql"))]
    assert "dynamic filter" in str(probe), probe
    assert "listed keys only" in str(probe), probe
    connector = lake(service)
    result = service.query(sql, service.principal("admin"))
    condition = probe_filter(connector)
    assert isinstance(condition, exp.In)
    assert sorted(literals(condition.expressions)) == keys
    want = oracle.execute(sql).to_arrow_table()
    assert want.num_rows > 0
    same_rows(result, want)
