"""The cost gate on real PostgreSQL: a join goes down whole only where its planner's estimate
says that is cheaper than pulling the tables; EXPLAIN says which and why; answers never change.

Tables are ANALYZEd, so the decisions follow from PostgreSQL's own statistics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshgate.execution.run import ExecutionReport
from meshgate.principal import hash_password
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database

pytestmark = pytest.mark.postgres

CONFIG = """
mesh: {name: gate, description: cost gate}
sources:
  - {name: shop_db, kind: postgres, options: {dsn: '@DSN@'}}
  # The lake is read through fragments (`merge_scan: false`), so its dynamic filters show.
  - {name: lake, kind: files, options: {path: data, format: parquet, merge_scan: false}}
domains:
  - {name: shop, owner: t@example.com, description: shop}
products:
  - domain: shop
    name: customers
    primary_key: [id]
    table: {source: shop_db, schema: public, table: customers}
    columns:
      - {name: id, type: BIGINT}
      - {name: segment, type: VARCHAR}
  - domain: shop
    name: orders
    primary_key: [id]
    table: {source: shop_db, schema: public, table: orders}
    columns:
      - {name: id, type: BIGINT}
      - {name: customer_id, type: BIGINT}
      - {name: note, type: VARCHAR}
  - domain: shop
    name: lines
    table: {source: lake, table: lines}
    columns:
      - {name: order_id, type: BIGINT}
      - {name: qty, type: BIGINT}
roles:
  - {name: admin, grants: ["*"]}
users:
  - {name: admin, password_hash: "@HASH@", roles: [admin]}
"""

# TPC-H Q13's shape: every customer with its count of orders, then a histogram of the counts.
HISTOGRAM = (
    "SELECT n, count(*) AS customers FROM (SELECT c.id, count(o.id) AS n FROM shop.customers c "
    "LEFT JOIN shop.orders o ON o.customer_id = c.id AND o.note NOT LIKE '%urgent%' "
    "GROUP BY c.id) AS per_customer GROUP BY n ORDER BY customers DESC, n DESC"
)
# One order and its customer: PostgreSQL finds the row by key, pulling would move both tables.
ONE_ORDER = (
    "SELECT o.id, c.segment FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id "
    "WHERE o.id = 4242"
)


@pytest.fixture(scope="module")
def dsn(pg_server_dsn: str) -> Iterator[str]:
    with fresh_pg_database(pg_server_dsn) as database:
        with pg.connect(database, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE customers (id BIGINT PRIMARY KEY, segment TEXT)")
            cursor.execute(
                "INSERT INTO customers SELECT i, (ARRAY['a','b','c'])[1 + i % 3] "
                "FROM generate_series(1, 150000) AS i"
            )
            cursor.execute(
                "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id BIGINT, note TEXT)"
            )
            cursor.execute(
                "INSERT INTO orders SELECT i, 1 + (i::bigint * 7919) % 150000, "
                "CASE WHEN i % 97 = 0 THEN 'urgent call' ELSE 'order note ' || i END "
                "FROM generate_series(1, 450000) AS i"
            )
            cursor.execute("ANALYZE customers")
            cursor.execute("ANALYZE orders")
        yield database


@pytest.fixture(scope="module")
def service(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    directory: Path = tmp_path_factory.mktemp("gate")
    (directory / "data").mkdir()
    ids = list(range(1, 450_001, 15))
    lines = pa.table({"order_id": ids, "qty": [i % 7 for i in ids]})
    pq.write_table(lines, directory / "data" / "lines.parquet")
    text = CONFIG.replace("@DSN@", dsn).replace(
        "@HASH@", hash_password("admin", salt=b"gate-salt-000001")
    )
    (directory / "mesh.yaml").write_text(text, encoding="utf-8")
    svc = QueryService.from_config(directory)
    yield svc
    svc.close()


def explain(service: QueryService, sql: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = service.explain(sql, service.principal("admin")).to_pylist()
    return rows


def run(service: QueryService, sql: str) -> tuple[list[tuple[object, ...]], int]:
    report = ExecutionReport()
    prepared = service.prepare(sql, service.principal("admin"))
    table = service.execute(prepared, report=report).read_all()
    return [tuple(r.values()) for r in table.to_pylist()], len(report.fragments)


def direct(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with pg.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(sql.replace("shop.", "public."))
        return [tuple(row) for row in cursor.fetchall()]


def test_a_histogram_over_a_left_join_is_pulled_by_the_statistics(
    service: QueryService, dsn: str
) -> None:
    plan = explain(service, HISTOGRAM)
    fragments = [r for r in plan if str(r["step"]).startswith("fragment")]
    assert len(fragments) == 2, plan  # both tables read, the join and grouping in DuckDB
    (merge,) = [r for r in plan if r["step"] == "merge"]
    assert "pulled and joined in the merge: source cost" in str(merge["detail"])
    rows, sent = run(service, HISTOGRAM)
    assert sent == 2
    assert rows == direct(dsn, HISTOGRAM)


def test_a_selective_join_goes_down_whole_and_says_why(service: QueryService, dsn: str) -> None:
    plan = explain(service, ONE_ORDER)
    (fragment,) = plan
    assert "whole query" in str(fragment["detail"])
    assert "pushed whole: source cost" in str(fragment["detail"])
    rows, sent = run(service, ONE_ORDER)
    assert sent == 1
    assert rows == direct(dsn, ONE_ORDER)


def test_strict_pushdown_keeps_the_join_at_the_source(service: QueryService) -> None:
    rows = service.explain(HISTOGRAM, service.principal("admin"), strict=True).to_pylist()
    assert [r["step"] for r in rows] == ["fragment __fragment_1"]


def probe_detail(service: QueryService, sql: str) -> str:
    (probe,) = [r for r in explain(service, sql) if r["source"] == "lake"]
    return str(probe["detail"])


def test_a_dynamic_filter_whose_range_covers_the_probe_is_skipped(
    service: QueryService, dsn: str
) -> None:
    # orders filtered on its note, not its key: 445k keys spread over the whole key range
    sql = ("SELECT count(*), sum(l.qty) FROM shop.orders o JOIN shop.lines l "
           "ON l.order_id = o.id WHERE o.note NOT LIKE '%urgent%'")  # fmt: skip
    detail = probe_detail(service, sql)
    assert "no dynamic filter: the build side is estimated at" in detail
    assert "covers 100% of the probe column's" in detail
    assert "IN (keys of" not in detail
    rows, _ = run(service, sql)
    expected = direct(dsn, "SELECT count(*), sum(id % 7) FROM shop.orders "
                      "WHERE note NOT LIKE '%urgent%' AND id % 15 = 1")  # fmt: skip
    assert [tuple(int(str(v)) for v in r) for r in rows] == [
        tuple(int(str(v)) for v in r) for r in expected
    ]


def test_a_dynamic_filter_on_a_restricted_key_is_kept(service: QueryService) -> None:
    sql = ("SELECT count(*) FROM shop.orders o JOIN shop.lines l ON l.order_id = o.id "
           "WHERE o.id < 5000 AND o.note LIKE 'order%'")  # fmt: skip
    assert 'dynamic filter: "l"."order_id" IN (keys of' in probe_detail(service, sql)


# orders x customers inside a query that also reads the lake: a join group at PostgreSQL.
PER_SEGMENT = (
    "SELECT c.segment, sum(l.qty) AS qty FROM shop.orders o JOIN shop.customers c "
    "ON c.id = o.customer_id JOIN shop.lines l ON l.order_id = o.id GROUP BY c.segment "
    "ORDER BY c.segment"
)


def lines_per_segment(urgent_only: bool) -> list[tuple[object, ...]]:
    """The expected answer, from the generators of the fixtures' rows."""
    totals: dict[str, int] = {}
    for order in range(1, 450_001, 15):
        if urgent_only and order % 97:
            continue
        segment = "abc"[(1 + (order * 7919) % 150_000) % 3]
        totals[segment] = totals.get(segment, 0) + order % 7
    return sorted(totals.items())


def test_a_join_group_keeping_most_rows_is_pulled_and_says_why(service: QueryService) -> None:
    """PostgreSQL would join 450,000 orders with 150,000 customers on one core and send
    450,000 rows; the merge reads both (600,000) and joins them on every core."""
    plan = explain(service, PER_SEGMENT)
    pg = [r for r in plan if r["source"] == "shop_db"]
    assert len(pg) == 2, plan
    assert not any("join of" in str(r["detail"]) for r in pg), plan
    (merge,) = [r for r in plan if r["step"] == "merge"]
    assert "join of c, o pulled and joined in the merge: the join keeps an estimated" in str(
        merge["detail"])
    rows, _ = run(service, PER_SEGMENT)
    assert [(str(s), int(str(q))) for s, q in rows] == lines_per_segment(False)


def test_a_join_group_dropping_most_rows_stays_at_postgres(service: QueryService) -> None:
    sql = PER_SEGMENT.replace("GROUP BY", "WHERE o.note LIKE 'urgent%' GROUP BY")
    plan = explain(service, sql)
    (joined,) = [r for r in plan if r["source"] == "shop_db"]
    assert "join of c, o pushed: the join keeps an estimated" in str(joined["detail"])
    rows, _ = run(service, sql)
    assert [(str(s), int(str(q))) for s, q in rows] == lines_per_segment(True)


def test_strict_pushdown_keeps_a_join_group_joined(service: QueryService) -> None:
    rows = service.explain(PER_SEGMENT, service.principal("admin"), strict=True).to_pylist()
    assert any("join of c, o" in str(r["detail"]) for r in rows if r["source"] == "shop_db")
