"""A small mesh with policies: staff in a DuckDB file, sales in Parquet, people in SQLite."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import duckdb

from meshgate.principal import hash_password

HASH_KEY = "policy-test-key"
STAFF = [
    # id, name, email, ssn, salary, region, dept_id, hired
    (1, "Ann Lee", "ann@eu.example", "111-22-3331", 100.50, "EU", 1, "2020-03-15"),
    (2, "Bo Chen", "bo@us.example", "111-22-3332", 200.00, "US", 2, "2021-06-30"),
    (3, "Cy Diaz", None, None, None, "EU", 2, "2022-01-01"),
    (4, "Di Egan", "di@eu.example", "111-22-3334", 400.00, "EU", 1, "2019-12-31"),
    (7, "Ed Fox", "ed@us.example", "111-22-3337", 700.00, "US", 1, "2018-07-04"),
]
DEPTS = [(1, "Sales", "EU"), (2, "Ops", "US")]
SALES = [(1, 10.0), (1, 5.0), (2, 7.0), (4, 1.0), (7, 3.0), (7, 2.0)]


def build(directory: Path) -> Path:
    """Write the data files and the config; return the config directory."""
    data = directory / "data"
    data.mkdir(parents=True)
    with duckdb.connect(str(data / "hr.duckdb")) as connection:
        connection.execute(
            "CREATE TABLE staff (id BIGINT, name VARCHAR, email VARCHAR, ssn VARCHAR, "
            "salary DECIMAL(10,2), region VARCHAR, dept_id BIGINT, hired DATE)"
        )
        connection.executemany("INSERT INTO staff VALUES (?, ?, ?, ?, ?, ?, ?, ?)", STAFF)
        connection.execute("CREATE TABLE depts (id BIGINT, name VARCHAR, region VARCHAR)")
        connection.executemany("INSERT INTO depts VALUES (?, ?, ?)", DEPTS)
        (data / "lake").mkdir()
        connection.execute("CREATE TABLE sales (staff_id BIGINT, amount DOUBLE)")
        connection.executemany("INSERT INTO sales VALUES (?, ?)", SALES)
        connection.execute(f"COPY sales TO '{data / 'lake' / 'sales.parquet'}' (FORMAT parquet)")
    with sqlite3.connect(data / "people.sqlite") as connection:
        connection.execute(
            "CREATE TABLE staff (id INTEGER, name TEXT, email TEXT, ssn TEXT, salary REAL, "
            "region TEXT, dept_id INTEGER, hired TEXT)"
        )
        connection.executemany("INSERT INTO staff VALUES (?, ?, ?, ?, ?, ?, ?, ?)", STAFF)
    config = directory / "config"
    config.mkdir()
    (config / "mesh.yaml").write_text(MESH.replace("DATA", str(data)), encoding="utf-8")
    (config / "access.yaml").write_text(_access(), encoding="utf-8")
    return config


STAFF_COLUMNS = """
      - {name: id, type: BIGINT}
      - {name: name, type: VARCHAR, classification: pii}
      - {name: email, type: VARCHAR, classification: pii}
      - {name: ssn, type: VARCHAR, classification: pii}
      - {name: salary, type: "DECIMAL(10,2)"}
      - {name: region, type: VARCHAR}
      - {name: dept_id, type: BIGINT}
      - {name: hired, type: DATE}
"""

MESH = f"""
mesh: {{name: test, hash_key: {HASH_KEY}}}
sources:
  - {{name: hr_db, kind: duckdb, options: {{path: DATA/hr.duckdb}}}}
  - {{name: people_db, kind: sqlite, options: {{path: DATA/people.sqlite}}}}
  # Read through fragments, as the dynamic-filter checks need; test_merge_scan.py covers
  # Parquet read by the merge itself.
  - {{name: lake, kind: files, options: {{path: DATA/lake, format: parquet, merge_scan: false}}}}
domains:
  - {{name: hr, owner: hr@example.com}}
  - {{name: sales, owner: sales@example.com}}
products:
  - domain: hr
    name: staff
    primary_key: [id]
    table: {{source: hr_db, table: staff}}
    columns:{STAFF_COLUMNS}
  - domain: hr
    name: people
    table: {{source: people_db, table: staff}}
    columns:{STAFF_COLUMNS}
  - domain: hr
    name: depts
    primary_key: [id]
    table: {{source: hr_db, table: depts}}
    columns:
      - {{name: id, type: BIGINT}}
      - {{name: name, type: VARCHAR}}
      - {{name: region, type: VARCHAR}}
  - domain: sales
    name: sales
    table: {{source: lake, table: sales}}
    columns:
      - {{name: staff_id, type: BIGINT}}
      - {{name: amount, type: DOUBLE}}
"""

POLICIES = """
policies:
  - product: hr.staff
    role: analyst
    row_filter: region = user_attribute('region')
    masks:
      ssn: {expression: "'***-**-' || right(ssn, 4)"}
      email: hash
      salary: "null"
  - product: hr.people
    role: analyst
    row_filter: region = user_attribute('region')
    masks:
      ssn: {expression: "'***-**-' || right(ssn, 4)"}
      email: hash
      salary: "null"
  - product: hr.staff
    role: auditor
    priority: 1
    masks:
      hired: truncate_date(year)
      email: email_domain
      ssn: last4
mesh_policies:
  - {name: pii-redacted, classification: pii, mask: redact, exempt_roles: [pii_reader]}
"""


def _access() -> str:
    users = []
    for name, roles, attributes in (
        ("admin", "[admin, pii_reader]", "{}"),
        ("analyst", "[analyst, pii_reader]", "{region: EU}"),
        ("viewer", "[viewer]", "{}"),
        ("auditor", "[auditor, pii_reader]", "{}"),
        ("both", "[analyst, viewer, pii_reader]", "{region: EU}"),
    ):
        users.append(
            f"  - {{name: {name}, password_hash: '{hash_password(name)}', roles: {roles}, "
            f"attributes: {attributes}}}"
        )
    return textwrap.dedent("""
        roles:
          - {name: admin, grants: ["*"]}
          - {name: analyst, grants: ["hr.*", "sales.*"]}
          - {name: viewer, grants: ["hr.*", "sales.*"]}
          - {name: auditor, grants: ["hr.staff"]}
          - {name: pii_reader}
        users:
        """) + "\n".join(users) + "\n" + POLICIES
