"""The demo data is the same on every machine and run, and has the shape the README promises."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshgate.demo.generate import DATA_DIR, MARKER, ensure_demo_data, prepare_demo


def read_sources(config_dir: Path) -> dict[str, pa.Table]:
    """Every generated table, read back through each file format's own reader."""
    data = config_dir / DATA_DIR
    tables: dict[str, pa.Table] = {}
    with duckdb.connect(str(data / "sales.duckdb"), read_only=True) as sales:
        names = sales.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        for (name,) in names:
            tables[f"sales.{name}"] = sales.execute(f"SELECT * FROM {name}").to_arrow_table()
    hr = sqlite3.connect(data / "hr.sqlite")
    try:
        for (name,) in hr.execute(  # not SQLite's own tables (ANALYZE's sqlite_stat1)
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ):
            cursor = hr.execute(f"SELECT * FROM {name}")
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            tables[f"hr.{name}"] = pa.table(
                {c: [row[i] for row in rows] for i, c in enumerate(columns)}
            )
    finally:
        hr.close()
    for path in sorted((data / "finance").glob("*.parquet")):
        tables[f"finance.{path.stem}"] = pq.read_table(path)
    return tables


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    """A private copy: DuckDB refuses a second in-process connection to a file that the shared
    `demo_dir` fixture's connectors already hold open with other settings."""
    return read_sources(prepare_demo(tmp_path_factory.mktemp("demo-data")))


def test_two_runs_generate_identical_data(demo: dict[str, pa.Table], tmp_path: Path) -> None:
    again = read_sources(prepare_demo(tmp_path / "again"))
    assert sorted(again) == sorted(demo)
    for name, table in demo.items():
        assert again[name].equals(table), name


def test_data_does_not_depend_on_the_machine_time_zone(
    demo: dict[str, pa.Table], tmp_path: Path
) -> None:
    target = tmp_path / "auckland"
    target.mkdir()
    subprocess.run([sys.executable, "-m", "meshgate.demo", str(target)], check=True,
                   env={**os.environ, "TZ": "Pacific/Auckland"}, capture_output=True)
    again = read_sources(target)
    for name, table in demo.items():
        assert again[name].equals(table), name


def test_row_counts(demo: dict[str, pa.Table]) -> None:
    counts = {name: table.num_rows for name, table in demo.items()}
    assert counts == {
        "sales.orders": 20_000,
        "sales.order_items": counts["sales.order_items"],
        "sales.customer_master": 2_000,
        "hr.employees": 1_200,
        "hr.departments": 15,
        "finance.exchange_rates": 731 * 6,
        "finance.budgets": 15 * 24,
    }
    assert 20_000 < counts["sales.order_items"] <= 100_000


def test_employees_cover_every_region_and_have_nulls(demo: dict[str, pa.Table]) -> None:
    employees = demo["hr.employees"].to_pylist()
    assert {e["region"] for e in employees} == {"EU", "US", "APAC"}
    for column in ("email", "ssn", "salary", "manager_id"):
        assert any(e[column] is None for e in employees), column
        assert any(e[column] is not None for e in employees), column
    ids = {e["id"] for e in employees}
    assert all(e["manager_id"] in ids for e in employees if e["manager_id"] is not None)


def test_realistic_types(demo: dict[str, pa.Table]) -> None:
    orders = demo["sales.orders"].schema
    assert orders.field("amount").type == pa.decimal128(12, 2)
    ts = orders.field("ts").type
    assert pa.types.is_timestamp(ts)
    assert ts.tz is not None
    budgets = demo["finance.budgets"]
    assert budgets.schema.field("approved").type == pa.bool_()
    assert budgets.schema.field("month").type == pa.date32()
    assert budgets.column("approved_at").null_count > 0
    assert demo["sales.orders"].column("customer_id").null_count > 0


def test_orders_are_consistent_across_sources(demo: dict[str, pa.Table]) -> None:
    """Joins in the demo give meaningful answers: amounts add up, sellers are sales staff."""
    totals: dict[int, Decimal] = {}
    for item in demo["sales.order_items"].to_pylist():
        totals[item["order_id"]] = (totals.get(item["order_id"], Decimal(0))
                                    + item["unit_price"] * item["quantity"])
    orders = demo["sales.orders"].to_pylist()
    assert all(totals[o["order_id"]] == o["amount"] for o in orders)
    sales_departments = {d["id"] for d in demo["hr.departments"].to_pylist()
                         if d["name"] == "Sales"}
    sellers = {e["id"] for e in demo["hr.employees"].to_pylist()
               if e["department_id"] in sales_departments}
    assert {o["employee_id"] for o in orders} <= sellers
    timestamps = [o["ts"] for o in orders]
    assert timestamps == sorted(timestamps)
    assert timestamps[0].year == 2024
    assert timestamps[-1].year == 2025


def test_existing_data_is_kept_and_stale_data_regenerated(tmp_path: Path) -> None:
    config_dir = prepare_demo(tmp_path / "mesh")
    sales = config_dir / DATA_DIR / "sales.duckdb"
    written = sales.stat().st_mtime_ns
    ensure_demo_data(config_dir)
    assert sales.stat().st_mtime_ns == written
    (config_dir / DATA_DIR / MARKER).write_text("0\n", encoding="utf-8")
    ensure_demo_data(config_dir)
    assert (config_dir / DATA_DIR / MARKER).read_text(encoding="utf-8") != "0\n"
    assert read_sources(config_dir)["sales.orders"].num_rows == 20_000
