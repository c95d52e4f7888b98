"""A small mesh over four source kinds for planner goldens and differential checks.

sales (DuckDB file): orders, customers; lake (Parquet): items; hr (SQLite): employees;
crm (PostgreSQL): contacts, tickets. Data is tiny, deterministic and has NULLs everywhere a
NULL can change an answer (outer joins, NOT IN, aggregates). `build` fills all four; the
goldens' plan check uses `write_files` alone, with crm served by tests/planner/stub.py.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from decimal import Decimal
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from meshgate.principal import hash_password

REGIONS = ["EU", "US", "APAC", None]
SEGMENTS = ["retail", "Retail", "enterprise", "smb", None]


def build(directory: Path, pg_dsn: str) -> Path:
    """Write data into the four sources and a config directory; return the config dir."""
    rng = write_files(directory, pg_dsn)
    write_postgres(pg_dsn, rng)
    return directory


def write_files(directory: Path, pg_dsn: str) -> random.Random:
    """The file sources (DuckDB, Parquet, SQLite) and the config naming `pg_dsn` for crm;
    returns the data generator, positioned where the crm rows start."""
    rng = random.Random(7)
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    customers = pa.table(
        {
            "customer_id": list(range(1, 41)),
            "name": [f"Customer {i:02d}" if i % 9 else f"customer {i:02d}" for i in range(1, 41)],
            "country": [rng.choice(["DE", "US", "JP", "FR", None]) for _ in range(40)],
            "segment": [rng.choice(SEGMENTS) for _ in range(40)],
        }
    )
    orders = pa.table(
        {
            "order_id": list(range(1, 201)),
            "customer_id": [rng.choice([*range(1, 45), None]) for _ in range(200)],
            "employee_id": [rng.choice([*range(1, 31), None]) for _ in range(200)],
            "amount": pa.array(
                [Decimal(rng.randint(100, 99999)) / 100 for _ in range(200)], pa.decimal128(12, 2)
            ),
            "status": [rng.choice(["open", "shipped", "cancelled"]) for _ in range(200)],
            "ts": pa.array(
                [
                    dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=7 * i)
                    for i in range(200)
                ],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    with duckdb.connect(str(data / "sales.duckdb")) as con:
        con.register("c", customers)
        con.register("o", orders)
        con.execute("CREATE TABLE customers AS SELECT * FROM c")
        con.execute("CREATE TABLE orders AS SELECT * FROM o")
    items = pa.table(
        {
            "item_id": list(range(1, 601)),
            "order_id": [rng.randint(1, 210) for _ in range(600)],
            "sku": [rng.choice(["A-1", "B-2", "C-3", "d-4", None]) for _ in range(600)],
            "qty": [rng.randint(1, 9) for _ in range(600)],
            "price": pa.array(
                [Decimal(rng.randint(50, 5000)) / 100 for _ in range(600)], pa.decimal128(10, 2)
            ),
        }
    )
    (data / "lake").mkdir(exist_ok=True)
    pq.write_table(items, data / "lake" / "items.parquet")
    with sqlite3.connect(data / "hr.sqlite") as lite:
        lite.execute(
            "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, region TEXT, "
            "manager_id INTEGER, salary TEXT)"
        )
        lite.executemany(
            "INSERT INTO employees VALUES (?, ?, ?, ?, ?)",
            [
                (
                    i,
                    f"Employee {i}",
                    REGIONS[i % 4],
                    None if i <= 3 else rng.randint(1, 3),
                    str(Decimal(rng.randint(300000, 900000)) / 10),
                )
                for i in range(1, 31)
            ],
        )
    (directory / "mesh.yaml").write_text(
        CONFIG.replace("@PG_DSN@", pg_dsn).replace(
            "@HASH@", hash_password("admin", salt=b"golden-salt-0001")
        )
    )
    return rng


def write_postgres(pg_dsn: str, rng: random.Random) -> None:
    """The crm tables, with rows drawn from `rng` after the file sources' rows."""
    with pg.connect(pg_dsn, autocommit=True) as con, con.cursor() as cur:
        cur.execute(
            "CREATE TABLE contacts (contact_id BIGINT PRIMARY KEY, customer_id BIGINT, "
            "email TEXT, name TEXT COLLATE \"en-US-x-icu\", created DATE)"
        )
        cur.execute(
            "CREATE TABLE tickets (ticket_id BIGINT PRIMARY KEY, contact_id BIGINT, "
            "priority INTEGER, subject TEXT, opened_at TIMESTAMPTZ)"
        )
        for i in range(1, 61):
            cur.execute(
                "INSERT INTO contacts VALUES ($1, $2, $3, $4, $5)",
                (
                    i,
                    rng.choice([*range(1, 45), None]),
                    f"c{i}@example.com" if i % 7 else None,
                    f"Contact {i}" if i % 5 else f"contact {i}",
                    dt.date(2023, 1, 1) + dt.timedelta(days=5 * i),
                ),
            )
        for i in range(1, 151):
            cur.execute(
                "INSERT INTO tickets VALUES ($1, $2, $3, $4, $5)",
                (
                    i,
                    rng.choice([*range(1, 65), None]),
                    rng.choice([1, 2, 3, None]),
                    rng.choice(["refund", "Refund", "delivery", "invoice"]),
                    dt.datetime(2024, 2, 1, tzinfo=dt.UTC) + dt.timedelta(hours=11 * i),
                ),
            )


CONFIG = """
mesh: {name: golden}
sources:
  - {name: sales_db, kind: duckdb, options: {path: data/sales.duckdb}}
  - {name: lake, kind: files, options: {path: data/lake, format: parquet}}
  - {name: hr_db, kind: sqlite, options: {path: data/hr.sqlite}}
  - {name: crm_db, kind: postgres, options: {dsn: "@PG_DSN@"}}
domains:
  - {name: sales, owner: sales-team}
  - {name: hr, owner: people-team}
  - {name: crm, owner: crm-team}
products:
  - domain: sales
    name: orders
    primary_key: [order_id]
    table: {source: sales_db, table: orders}
    columns:
      - {name: order_id, type: BIGINT}
      - {name: customer_id, type: BIGINT}
      - {name: employee_id, type: BIGINT}
      - {name: amount, type: "DECIMAL(12,2)"}
      - {name: status, type: VARCHAR}
      - {name: ts, type: TIMESTAMPTZ}
  - domain: sales
    name: customers
    primary_key: [customer_id]
    table: {source: sales_db, table: customers}
    columns:
      - {name: customer_id, type: BIGINT}
      - {name: name, type: VARCHAR}
      - {name: country, type: VARCHAR}
      - {name: segment, type: VARCHAR}
  - domain: sales
    name: items
    primary_key: [item_id]
    table: {source: lake, table: items}
    columns:
      - {name: item_id, type: BIGINT}
      - {name: order_id, type: BIGINT}
      - {name: sku, type: VARCHAR}
      - {name: qty, type: BIGINT}
      - {name: price, type: "DECIMAL(10,2)"}
  - domain: sales
    name: order_totals
    query: >
      SELECT o.order_id, o.customer_id, SUM(i.qty * i.price) AS total
      FROM sales.orders o JOIN sales.items i ON i.order_id = o.order_id
      GROUP BY o.order_id, o.customer_id
    columns:
      - {name: order_id, type: BIGINT}
      - {name: customer_id, type: BIGINT}
      - {name: total, type: "DECIMAL(38,2)"}
  - domain: hr
    name: employees
    primary_key: [id]
    table: {source: hr_db, table: employees, columns: {salary: salary}}
    columns:
      - {name: id, type: BIGINT}
      - {name: name, type: VARCHAR}
      - {name: region, type: VARCHAR}
      - {name: manager_id, type: BIGINT}
      - {name: salary, type: "DECIMAL(10,1)"}
  - domain: crm
    name: contacts
    primary_key: [contact_id]
    table: {source: crm_db, schema: public, table: contacts}
    columns:
      - {name: contact_id, type: BIGINT}
      - {name: customer_id, type: BIGINT}
      - {name: email, type: VARCHAR}
      - {name: name, type: VARCHAR}
      - {name: created, type: DATE}
  - domain: crm
    name: tickets
    primary_key: [ticket_id]
    table: {source: crm_db, schema: public, table: tickets}
    columns:
      - {name: ticket_id, type: BIGINT}
      - {name: contact_id, type: BIGINT}
      - {name: priority, type: INTEGER}
      - {name: subject, type: VARCHAR}
      - {name: opened_at, type: TIMESTAMPTZ}
roles:
  - {name: admin, grants: ["*"]}
users:
  - {name: admin, password_hash: "@HASH@", roles: [admin]}
"""
