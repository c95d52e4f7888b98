"""What `analyst` may see, computed without meshgate: EU rows, masks applied in Python.

The reference relation follows the demo policies as written in config/demo/access.yaml and
issue 12: row filter `region = 'EU'` (analyst's attribute) on raw values, then `ssn` shown as
'***-**-' plus its last four characters, `email` as HMAC-SHA256 hex under the mesh hash key,
`salary` NULL. Analyst holds `pii_reader`, so the mesh-wide redaction does not apply.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

import duckdb
import pyarrow as pa

from meshgate.demo.generate import build_tables

HASH_KEY = os.environ.get("MESHGATE_HASH_KEY", "meshgate-demo-hash-key").encode()
ANALYST_REGION = "EU"

EMPLOYEES_DDL = (
    "id BIGINT, name VARCHAR, email VARCHAR, ssn VARCHAR, salary DECIMAL(10,2), region VARCHAR, "
    "manager_id BIGINT, department_id BIGINT, hire_date DATE, is_active BOOLEAN"
)
DEPARTMENTS_DDL = "id BIGINT, name VARCHAR, region VARCHAR, cost_center VARCHAR"
ORDERS_DDL = (
    "order_id BIGINT, employee_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), "
    "ts TIMESTAMPTZ"
)
ORDER_ITEMS_DDL = (
    "order_id BIGINT, line_no INTEGER, sku VARCHAR, quantity INTEGER, unit_price DECIMAL(10,2)"
)


def masked_employee(row: dict[str, Any]) -> dict[str, Any]:
    ssn, email = row["ssn"], row["email"]
    return {
        **row,
        "ssn": None if ssn is None else "***-**-" + ssn[-4:],
        "email": None if email is None
        else hmac.new(HASH_KEY, email.encode(), hashlib.sha256).hexdigest(),
        "salary": None,
    }


def analyst_view() -> duckdb.DuckDBPyConnection:
    """A DuckDB holding the products analyst reads, as plain tables under their product names."""
    tables = build_tables()
    employees = [masked_employee(r) for r in tables.hr["employees"].to_pylist()
                 if r["region"] == ANALYST_REGION]
    connection = duckdb.connect(":memory:")
    connection.execute("CREATE SCHEMA hr; CREATE SCHEMA sales")
    for name, ddl, data in (
        ("hr.employees", EMPLOYEES_DDL, pa.Table.from_pylist(employees)),
        ("hr.departments", DEPARTMENTS_DDL, tables.hr["departments"]),
        ("sales.orders", ORDERS_DDL, tables.sales["orders"]),
        ("sales.order_items", ORDER_ITEMS_DDL, tables.sales["order_items"]),
    ):
        connection.execute(f"CREATE TABLE {name} ({ddl})")
        connection.register("incoming", data)
        connection.execute(f"INSERT INTO {name} SELECT * FROM incoming")
        connection.unregister("incoming")
    return connection
