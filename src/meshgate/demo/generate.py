"""Generate the demo mesh's data: a DuckDB file (sales), a SQLite file (hr), Parquet (finance).

Everything comes from one seeded `random.Random` and fixed calendar dates, never the wall clock,
so every machine and every run sees the same rows; tests and documentation can quote them.
Data is written to a temporary directory and renamed into place, so a half-written mesh is
never served and concurrent first runs do not trip over each other.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from meshgate.errors import ConfigError

SEED = 20240601
# Bump when the generated data changes: stale data directories are regenerated.
DATA_VERSION = "2"
DATA_DIR = "data"
MARKER = ".meshgate-demo-data"

REGIONS = ("EU", "US", "APAC")
COUNTRIES = {
    "EU": ("DE", "FR", "NL", "ES", "IT", "SE"),
    "US": ("US",),
    "APAC": ("JP", "SG", "AU", "IN"),
}
DEPARTMENTS = ("Sales", "Engineering", "Finance", "People", "Marketing")
CURRENCIES = {"EUR": 1.08, "GBP": 1.27, "JPY": 0.0068, "SGD": 0.74, "AUD": 0.66, "INR": 0.012}
FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Arjun", "Astrid", "Ben", "Bianca", "Carlos", "Chen", "Chloe",
    "Dmitri", "Elena", "Emma", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal",
    "Jonas", "Julia", "Kenji", "Lars", "Leila", "Lucas", "Maya", "Mei", "Mohammed", "Nadia",
    "Noah", "Olga", "Omar", "Priya", "Rafael", "Rosa", "Sofia", "Tariq", "Thomas", "Yuki", "Zoe",
)
LAST_NAMES = (
    "Andersen", "Bauer", "Costa", "Dubois", "Eriksson", "Fischer", "Garcia", "Hansen", "Ito",
    "Jansen", "Kowalski", "Kumar", "Lee", "Martin", "Moreau", "Nakamura", "Nguyen", "Novak",
    "Okafor", "Patel", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith", "Tanaka",
    "Varga", "Wagner", "Wang", "Williams", "Yilmaz",
)
COMPANY_WORDS = (
    "Alpine", "Atlas", "Beacon", "Cedar", "Cobalt", "Delta", "Ember", "Falcon", "Granite",
    "Harbor", "Helix", "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orbit", "Pioneer",
    "Quartz", "Summit", "Tidal", "Vertex", "Willow", "Zenith",
)
COMPANY_KINDS = ("Labs", "Systems", "Foods", "Logistics", "Retail", "Energy", "Health", "Media")
SKU_COUNT = 60

EMPLOYEES = 1_200
CUSTOMERS = 2_000
ORDERS = 20_000
FIRST_DAY = dt.date(2024, 1, 1)
LAST_DAY = dt.date(2025, 12, 31)
UTC = dt.UTC
CENT = Decimal("0.01")


@dataclass(frozen=True)
class DemoTables:
    """The generated tables, keyed by the physical name they get in their source."""

    sales: dict[str, pa.Table]
    hr: dict[str, pa.Table]
    finance: dict[str, pa.Table]


def demo_config_dir() -> Path:
    """The `config/demo` directory of the source tree meshgate runs from (editable install)."""
    root = Path(__file__).resolve().parents[3]
    candidate = root / "config" / "demo"
    if not (candidate / "mesh.yaml").is_file():
        raise ConfigError(
            f"the demo mesh config was not found at {candidate}; run meshgate from a clone of "
            "its repository (`pip install -e .`) or pass --config DIR"
        )
    return candidate


def prepare_demo(target: Path) -> Path:
    """Copy the demo's YAML into `target` and generate its data there; returns `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(demo_config_dir().glob("*.yaml")):
        shutil.copyfile(path, target / path.name)
    ensure_demo_data(target)
    return target


def ensure_demo_data(config_dir: Path) -> Path:
    """Generate `config_dir/data` unless an up-to-date copy is already there."""
    data_dir = config_dir / DATA_DIR
    if _is_current(data_dir):
        return config_dir
    staging = Path(tempfile.mkdtemp(prefix=".data-", dir=config_dir))
    staging.chmod(0o755)
    try:
        write_demo_data(staging)
        if data_dir.exists() and not _is_current(data_dir):
            shutil.rmtree(data_dir)
        try:
            staging.rename(data_dir)
        except OSError:
            # Another process finished first; its data is identical to ours.
            if not _is_current(data_dir):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return config_dir


def _is_current(data_dir: Path) -> bool:
    marker = data_dir / MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == DATA_VERSION


def write_demo_data(data_dir: Path) -> None:
    """Write every source file of the demo into `data_dir` (which must exist)."""
    tables = build_tables()
    _write_duckdb(data_dir / "sales.duckdb", tables.sales)
    _write_sqlite(data_dir / "hr.sqlite", tables.hr)
    finance_dir = data_dir / "finance"
    finance_dir.mkdir()
    for name, table in tables.finance.items():
        pq.write_table(table, finance_dir / f"{name}.parquet")
    (data_dir / MARKER).write_text(DATA_VERSION + "\n", encoding="utf-8")


def build_tables(seed: int = SEED) -> DemoTables:
    """All demo tables in memory; the same seed gives the same rows."""
    rng = random.Random(seed)
    departments = _departments()
    employees = _employees(rng, departments)
    sales_staff = [
        row["id"] for row in employees
        if departments[int(row["department_id"]) - 1]["name"] == "Sales"
    ]
    customers = _customers(rng)
    orders, items = _orders(rng, sales_staff, [int(c["cust_no"]) for c in customers])
    return DemoTables(
        sales={
            "orders": pa.Table.from_pylist(orders, schema=ORDERS_SCHEMA),
            "order_items": pa.Table.from_pylist(items, schema=ORDER_ITEMS_SCHEMA),
            "customer_master": pa.Table.from_pylist(customers, schema=CUSTOMERS_SCHEMA),
        },
        hr={
            "departments": pa.Table.from_pylist(departments, schema=DEPARTMENTS_SCHEMA),
            "employees": pa.Table.from_pylist(employees, schema=EMPLOYEES_SCHEMA),
        },
        finance={
            "exchange_rates": pa.Table.from_pylist(_rates(rng), schema=RATES_SCHEMA),
            "budgets": pa.Table.from_pylist(_budgets(rng, departments), schema=BUDGETS_SCHEMA),
        },
    )


TIMESTAMPTZ = pa.timestamp("us", tz="UTC")
DEPARTMENTS_SCHEMA = pa.schema([
    ("id", pa.int64()), ("name", pa.string()), ("region", pa.string()),
    ("cost_center", pa.string()),
])
EMPLOYEES_SCHEMA = pa.schema([
    ("id", pa.int64()), ("name", pa.string()), ("email", pa.string()), ("ssn", pa.string()),
    ("salary", pa.decimal128(10, 2)), ("region", pa.string()), ("manager_id", pa.int64()),
    ("department_id", pa.int64()), ("hire_date", pa.date32()), ("is_active", pa.bool_()),
])
CUSTOMERS_SCHEMA = pa.schema([
    ("cust_no", pa.int64()), ("cust_name", pa.string()), ("contact_email", pa.string()),
    ("country", pa.string()), ("signup_date", pa.date32()), ("is_vip", pa.bool_()),
])
ORDERS_SCHEMA = pa.schema([
    ("order_id", pa.int64()), ("employee_id", pa.int64()), ("customer_id", pa.int64()),
    ("amount", pa.decimal128(12, 2)), ("ts", TIMESTAMPTZ),
])
ORDER_ITEMS_SCHEMA = pa.schema([
    ("order_id", pa.int64()), ("line_no", pa.int32()), ("sku", pa.string()),
    ("quantity", pa.int32()), ("unit_price", pa.decimal128(10, 2)),
])
RATES_SCHEMA = pa.schema([
    ("rate_date", pa.date32()), ("ccy", pa.string()), ("usd_rate", pa.decimal128(18, 6)),
    ("published_at", TIMESTAMPTZ),
])
BUDGETS_SCHEMA = pa.schema([
    ("budget_id", pa.int64()), ("department_id", pa.int64()), ("month", pa.date32()),
    ("amount", pa.decimal128(14, 2)), ("currency", pa.string()), ("approved", pa.bool_()),
    ("approved_at", TIMESTAMPTZ), ("note", pa.string()),
])

Row = dict[str, Any]


def _departments() -> list[Row]:
    rows: list[Row] = []
    for region in REGIONS:
        for name in DEPARTMENTS:
            number = len(rows) + 1
            rows.append({"id": number, "name": name, "region": region,
                         "cost_center": f"CC-{1000 + number * 10}"})
    return rows


def _day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


def _employees(rng: random.Random, departments: Sequence[Row]) -> list[Row]:
    """Three regional heads, one head per department, everyone else reports to a head."""
    rows: list[Row] = []
    head_of_region: dict[str, int] = {}
    head_of_department: dict[int, int] = {}
    for number in range(1, EMPLOYEES + 1):
        if number <= len(REGIONS):
            region = REGIONS[number - 1]
            department = next(d for d in departments
                              if d["region"] == region and d["name"] == "People")
            manager: int | None = None
            head_of_region[region] = number
            base = 180_000
        elif number <= len(REGIONS) + len(departments):
            department = departments[number - len(REGIONS) - 1]
            region = str(department["region"])
            manager = head_of_region[region]
            head_of_department[int(department["id"])] = number
            base = 130_000
        else:
            department = rng.choice(departments)
            region = str(department["region"])
            manager = head_of_department[int(department["id"])]
            base = 55_000
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        salary = Decimal(base + rng.randrange(0, 60_000, 100))
        rows.append({
            "id": number,
            "name": f"{first} {last}",
            "email": None if rng.random() < 0.02
            else f"{first.lower()}.{last.lower()}{number}@example.com",
            "ssn": None if rng.random() < 0.02
            else f"9{rng.randint(0, 99):02d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}",
            "salary": None if rng.random() < 0.015 else salary.quantize(CENT),
            "region": region,
            "manager_id": manager,
            "department_id": department["id"],
            "hire_date": _day(rng, dt.date(2010, 1, 1), dt.date(2025, 6, 30)),
            "is_active": rng.random() < 0.92,
        })
    return rows


def _customers(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for number in range(CUSTOMERS):
        region = rng.choices(REGIONS, weights=(4, 4, 3))[0]
        name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
        cust_no = 100_001 + number
        rows.append({
            "cust_no": cust_no,
            "cust_name": name,
            "contact_email": None if rng.random() < 0.05
            else f"buyer{cust_no}@{name.split(maxsplit=1)[0].lower()}.example",
            "country": rng.choice(COUNTRIES[region]),
            "signup_date": _day(rng, dt.date(2018, 1, 1), dt.date(2025, 12, 31)),
            "is_vip": rng.random() < 0.1,
        })
    return rows


def _orders(
    rng: random.Random, sales_staff: Sequence[int], customers: Sequence[int]
) -> tuple[list[Row], list[Row]]:
    """Orders spread over 2024-2025 in time order; `amount` is the sum of the order's lines."""
    prices = [Decimal(rng.randrange(199, 250_000)) / 100 for _ in range(SKU_COUNT)]
    start = dt.datetime.combine(FIRST_DAY, dt.time(), UTC)
    end = dt.datetime.combine(LAST_DAY + dt.timedelta(days=1), dt.time(), UTC)
    span_us = (end - start) // dt.timedelta(microseconds=1)
    offsets = sorted(rng.randrange(span_us) for _ in range(ORDERS))
    orders: list[Row] = []
    items: list[Row] = []
    for number, offset in enumerate(offsets, start=1):
        total = Decimal(0)
        for line in range(1, rng.randint(1, 5) + 1):
            sku = rng.randrange(SKU_COUNT)
            quantity = rng.randint(1, 10)
            items.append({"order_id": number, "line_no": line, "sku": f"SKU-{sku + 1:04d}",
                          "quantity": quantity, "unit_price": prices[sku]})
            total += prices[sku] * quantity
        orders.append({
            "order_id": number,
            "employee_id": rng.choice(sales_staff),
            "customer_id": None if rng.random() < 0.04 else rng.choice(customers),
            "amount": total.quantize(CENT),
            "ts": start + dt.timedelta(microseconds=offset),
        })
    return orders, items


def _rates(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    level = dict(CURRENCIES)
    day = FIRST_DAY
    while day <= LAST_DAY:
        for ccy in CURRENCIES:
            level[ccy] *= 1 + rng.gauss(0, 0.004)
            rows.append({
                "rate_date": day,
                "ccy": ccy,
                "usd_rate": Decimal(level[ccy]).quantize(Decimal("0.000001")),
                "published_at": dt.datetime.combine(day, dt.time(16, 0), UTC),
            })
        day += dt.timedelta(days=1)
    return rows


def _budgets(rng: random.Random, departments: Sequence[Row]) -> list[Row]:
    currency = {"EU": "EUR", "US": "USD", "APAC": "SGD"}
    rows: list[Row] = []
    for department in departments:
        base = rng.randrange(200_000, 2_000_000, 1_000)
        for month_index in range(24):
            month = dt.date(2024 + month_index // 12, month_index % 12 + 1, 1)
            approved = month < dt.date(2025, 10, 1) or rng.random() < 0.3
            rows.append({
                "budget_id": len(rows) + 1,
                "department_id": department["id"],
                "month": month,
                "amount": (Decimal(base) * Decimal(rng.uniform(0.85, 1.2))).quantize(CENT),
                "currency": currency[str(department["region"])],
                "approved": approved,
                "approved_at": dt.datetime.combine(month, dt.time(9, 30), UTC)
                - dt.timedelta(days=rng.randint(5, 40)) if approved else None,
                "note": rng.choice(("hiring plan", "event season", "tooling renewal"))
                if rng.random() < 0.15 else None,
            })
    return rows


SALES_DDL = {
    "orders": "order_id BIGINT, employee_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), "
              "ts TIMESTAMPTZ",
    "order_items": "order_id BIGINT, line_no INTEGER, sku VARCHAR, quantity INTEGER, "
                   "unit_price DECIMAL(10,2)",
    "customer_master": "cust_no BIGINT, cust_name VARCHAR, contact_email VARCHAR, "
                       "country VARCHAR, signup_date DATE, is_vip BOOLEAN",
}
HR_DDL = {
    "departments": "id INTEGER, name TEXT, region TEXT, cost_center TEXT",
    "employees": "id INTEGER, name TEXT, email TEXT, ssn TEXT, salary DECIMAL(10,2), "
                 "region TEXT, manager_id INTEGER, department_id INTEGER, hire_date DATE, "
                 "is_active BOOLEAN",
}


def _write_duckdb(path: Path, tables: dict[str, pa.Table]) -> None:
    with duckdb.connect(str(path)) as connection:
        for name, table in tables.items():
            connection.execute(f"CREATE TABLE {name} ({SALES_DDL[name]})")
            connection.register("incoming", table)
            connection.execute(f"INSERT INTO {name} SELECT * FROM incoming")
            connection.unregister("incoming")
        connection.execute("CHECKPOINT")


def _sqlite_value(value: object) -> object:
    """SQLite has no date, decimal or boolean storage: ISO text, integers and 0/1 it is."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _write_sqlite(path: Path, tables: dict[str, pa.Table]) -> None:
    connection = sqlite3.connect(path)
    try:
        for name, table in tables.items():
            connection.execute(f"CREATE TABLE {name} ({HR_DDL[name]})")
            marks = ", ".join("?" for _ in table.column_names)
            connection.executemany(
                f"INSERT INTO {name} VALUES ({marks})",
                ([_sqlite_value(v) for v in row.values()] for row in table.to_pylist()),
            )
        connection.commit()
        # As an operator would: SQLite keeps row counts (EXPLAIN's estimates) only after it.
        connection.execute("ANALYZE")
    finally:
        connection.close()
