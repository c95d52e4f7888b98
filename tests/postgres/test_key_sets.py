"""Key sets: a filtered Parquet table's join keys pick a large PostgreSQL table's rows by key.

TPC-H Q12's shape on a real PostgreSQL: `orders` (200,000 rows, keyed) joined with the
`shipments` of a Parquet file filtered on their own columns. What is checked is what a user
and an operator see: the answer (against DuckDB over the same rows), the SQL PostgreSQL was
sent and how many rows it returned, and that nothing but a policy-free build side feeds a set.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshgate.execution.run import ExecutionReport
from meshgate.principal import hash_password
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database

pytestmark = pytest.mark.postgres

ORDERS = 200_000
SHIPMENTS = 60_000


MODES = pa.table({"mode": ["AIR", "SHIP"], "kind": ["air", "sea"]})


def shipments() -> pa.Table:
    """Shipment i belongs to order (i * 7919) % ORDERS + 1; its weight is i % 1000."""
    ids = list(range(SHIPMENTS))
    return pa.table({
        "shipment_id": pa.array(ids, pa.int64()),
        "order_key": pa.array([(i * 7919) % ORDERS + 1 for i in ids], pa.int64()),
        "weight": pa.array([i % 1000 for i in ids], pa.int64()),
        "mode": pa.array(["AIR" if i % 10 == 0 else "SHIP" for i in ids]),
    })


def write_mesh(config: Path, dsn: str) -> None:
    (config / "data").mkdir()
    pq.write_table(shipments(), config / "data" / "shipments.parquet")
    pq.write_table(MODES, config / "data" / "modes.parquet")
    (config / "mesh.yaml").write_text(textwrap.dedent(f"""\
        mesh: {{name: keysets, description: Key sets over PostgreSQL.}}
        sources:
          - {{name: pg, kind: postgres, options: {{dsn: '{dsn}'}}}}
          - {{name: lake, kind: files, options: {{path: data, format: parquet}}}}
        domains:
          - {{name: shop, owner: shop@example.com, description: Orders and shipments.}}
        """), encoding="utf-8")
    (config / "products.yaml").write_text(textwrap.dedent("""\
        products:
          - domain: shop
            name: orders
            description: Orders.
            table: {source: pg, schema: public, table: orders}
            columns:
              - {name: o_key, type: BIGINT, description: Order key.}
              - {name: o_priority, type: VARCHAR, description: Priority.}
            primary_key: [o_key]
          - domain: shop
            name: priorities
            description: Order priorities.
            table: {source: pg, schema: public, table: priorities}
            columns:
              - {name: p_name, type: VARCHAR, description: Priority.}
              - {name: p_rank, type: INTEGER, description: Rank.}
            primary_key: [p_name]
          - domain: shop
            name: shipments
            description: Shipments.
            table: {source: lake, table: shipments}
            columns:
              - {name: shipment_id, type: BIGINT, description: Shipment.}
              - {name: order_key, type: BIGINT, description: Its order.}
              - {name: weight, type: BIGINT, description: Weight.}
              - {name: mode, type: VARCHAR, description: Mode.}
            primary_key: [shipment_id]
          - domain: shop
            name: modes
            description: Shipping modes.
            table: {source: lake, table: modes}
            columns:
              - {name: mode, type: VARCHAR, description: Mode.}
              - {name: kind, type: VARCHAR, description: Air or sea.}
            primary_key: [mode]
        """), encoding="utf-8")
    users = "\n".join(
        f"  - {{name: {name}, password_hash: '{hash_password(name)}', roles: [{name}]}}"
        for name in ("admin", "clerk", "auditor")
    )
    (config / "access.yaml").write_text(textwrap.dedent("""\
        roles:
          - {name: admin, grants: ["*"]}
          - {name: clerk, grants: ["shop.*"]}
          - {name: auditor, grants: ["shop.*"]}
        policies:
          - product: shop.shipments
            role: clerk
            row_filter: mode = 'AIR'
          - product: shop.orders
            role: auditor
            row_filter: o_priority = 'P1'
        users:
        """) + users + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def service(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE orders (o_key BIGINT PRIMARY KEY, o_priority TEXT)")
            cursor.execute(f"INSERT INTO orders SELECT g, 'P' || (g % 5) "
                           f"FROM generate_series(1, {ORDERS}) AS g")  # fmt: skip
            cursor.execute("ANALYZE orders")
            cursor.execute("CREATE TABLE priorities (p_name TEXT PRIMARY KEY, p_rank INT)")
            cursor.execute("INSERT INTO priorities SELECT 'P' || g, 5 - g "
                           "FROM generate_series(0, 4) AS g")  # fmt: skip
        config = tmp_path_factory.mktemp("keysets")
        write_mesh(config, dsn)
        svc = QueryService.from_config(config)
        yield svc
        svc.close()


def expected(sql: str, shipment_filter: str = "TRUE",
             order_filter: str = "TRUE") -> list[tuple[Any, ...]]:  # fmt: skip
    """DuckDB's answer over the same rows (orders generated as PostgreSQL does)."""
    oracle = duckdb.connect()
    oracle.register("shipments_all", shipments())
    oracle.register("modes", MODES)
    oracle.execute(f"CREATE TABLE shipments AS SELECT * FROM shipments_all WHERE {shipment_filter}")
    oracle.execute(f"CREATE TABLE orders AS SELECT * FROM (SELECT g AS o_key, 'P' || (g % 5) "
                   f"AS o_priority FROM range(1, {ORDERS + 1}) AS t(g)) WHERE {order_filter}")
    oracle.execute("CREATE TABLE priorities AS SELECT 'P' || g AS p_name, 5 - g AS p_rank "
                   "FROM range(0, 5) AS t(g)")
    return oracle.execute(sql).fetchall()


def run(service: QueryService, sql: str, user: str = "admin"
        ) -> tuple[list[tuple[Any, ...]], ExecutionReport]:  # fmt: skip
    report = ExecutionReport()
    prepared = service.prepare(sql, service.principal(user))
    table = service.execute(prepared, report=report).read_all()
    return [tuple(row.values()) for row in table.to_pylist()], report


def plan_notes(service: QueryService, sql: str, user: str = "admin") -> str:
    return " ".join(str(row) for row in service.explain(sql, service.principal(user)).to_pylist())


def postgres_read(report: ExecutionReport) -> tuple[str, int]:
    """The SQL the orders fragment ran at PostgreSQL and the rows it sent."""
    [orders] = [f for f in report.fragments.values() if f.source == "pg"]
    return orders.sql, orders.rows


JOINED = ("SELECT s.mode, o.o_priority, count(*) AS n FROM shop.shipments s "
          "JOIN shop.orders o ON s.order_key = o.o_key WHERE s.weight < {limit} "
          "GROUP BY s.mode, o.o_priority ORDER BY s.mode, o.o_priority")
ORACLE = JOINED.replace("shop.", "")


def test_a_selective_files_side_reads_only_its_orders_from_postgres(
    service: QueryService,
) -> None:
    sql = JOINED.format(limit=50)  # 3,000 shipments of 60,000
    assert "key set" in plan_notes(service, sql)
    rows, report = run(service, sql)
    assert rows == expected(ORACLE.format(limit=50))
    text, sent = postgres_read(report)
    keys = expected("SELECT count(DISTINCT order_key) FROM shipments WHERE weight < 50")[0][0]
    # The audit keeps how many keys went, not the keys.
    assert text.endswith(f' -- and "o"."o_key" is one of {keys} keys of __fragment_1.order_key')
    assert sent == keys  # one row per order key the shipments name, of 200,000
    assert sent < ORDERS / 20


def test_a_join_at_postgres_is_restricted_to_the_keys_inside_the_join(
    service: QueryService,
) -> None:
    # TPC-H Q8's shape: a join of two Parquet files, filtered, against a join at PostgreSQL.
    sql = ("SELECT p.p_rank, count(*) AS n FROM shop.shipments s "
           "JOIN shop.modes m ON s.mode = m.mode "
           "JOIN shop.orders o ON s.order_key = o.o_key "
           "JOIN shop.priorities p ON o.o_priority = p.p_name "
           "WHERE m.kind = 'air' GROUP BY p.p_rank ORDER BY p.p_rank")
    notes = plan_notes(service, sql)
    assert "join of m, s" in notes
    assert "join of o, p" in notes
    assert "key set" in notes
    rows, report = run(service, sql)
    assert rows == expected(sql.replace("shop.", ""))
    _, sent = postgres_read(report)
    keys = expected("SELECT count(DISTINCT order_key) FROM shipments WHERE mode = 'AIR'")[0][0]
    assert sent == keys  # the join's rows for those 6,000 orders only, of 200,000


def test_too_many_keys_for_a_set_read_the_table_unfiltered_and_answer_alike(
    service: QueryService,
) -> None:
    sql = JOINED.format(limit=900)  # 54,000 shipments: over the 10,000-key set of 200k rows
    rows, report = run(service, sql)
    assert rows == expected(ORACLE.format(limit=900))
    text, sent = postgres_read(report)
    assert "ANY" not in text
    assert sent == ORDERS


def test_a_build_side_behind_a_row_filter_feeds_no_key_set(service: QueryService) -> None:
    sql = JOINED.format(limit=50)
    notes = plan_notes(service, sql, "clerk")
    assert "key set" not in notes
    rows, report = run(service, sql, "clerk")
    assert rows == expected(ORACLE.format(limit=50), "mode = 'AIR'")
    text, _ = postgres_read(report)
    assert "ANY" not in text


def test_a_large_table_behind_a_row_filter_is_not_probed_by_a_key_set(
    service: QueryService,
) -> None:
    sql = JOINED.format(limit=50)
    assert "key set" not in plan_notes(service, sql, "auditor")
    rows, report = run(service, sql, "auditor")
    assert rows == expected(ORACLE.format(limit=50), order_filter="o_priority = 'P1'")
    text, _ = postgres_read(report)
    assert "ANY" not in text
    assert "'P1'" in text  # the policy's filter went down with the orders read


def test_a_probe_filtered_on_its_own_gets_no_key_set(service: QueryService) -> None:
    sql = ("SELECT count(*) AS n FROM shop.shipments s JOIN shop.orders o ON s.order_key = o.o_key "
           "WHERE s.weight < 50 AND o.o_key <= 1000")
    notes = plan_notes(service, sql)
    assert "key set" not in notes
    rows, _ = run(service, sql)
    assert rows == expected(sql.replace("shop.", ""))
