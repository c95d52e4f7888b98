"""The first hour of a user: `./dev demo`, then three different Flight SQL clients.

The demo server is started with the README's first command, in its own process. ADBC, raw
pyarrow.flight and flightsql-dbapi (in its own process: its protobuf classes clash with
meshgate's) run the same queries and get the same rows, which are the rows in the source files.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import duckdb
import pyarrow as pa
import pytest
from google.protobuf import any_pb2
from pyarrow import flight

from meshgate.server.proto import flight_sql_pb2

ROOT = Path(__file__).resolve().parent.parent
DBAPI_CLIENT = ROOT / "tests" / "server" / "flightsql_dbapi_client.py"

ALL_ORDERS = "SELECT * FROM sales.orders ORDER BY order_id"
SAME_SOURCE_JOIN = (
    "SELECT o.order_id, c.name, o.amount FROM sales.orders o "
    "JOIN sales.customers c ON c.customer_id = o.customer_id "
    "WHERE o.amount > 40000 ORDER BY o.order_id"
)
# The same questions asked of the source file directly, with its physical names.
DIRECT = {
    ALL_ORDERS: "SELECT order_id, employee_id, customer_id, amount, ts FROM orders ORDER BY 1",
    SAME_SOURCE_JOIN: (
        "SELECT o.order_id, c.cust_name, o.amount FROM orders o "
        "JOIN customer_master c ON c.cust_no = o.customer_id "
        "WHERE o.amount > 40000 ORDER BY o.order_id"
    ),
}


@pytest.fixture(scope="module")
def demo_server() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [str(ROOT / "dev"), "demo", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy(),
    )  # fmt: skip
    uri = f"grpc://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, "./dev demo exited early"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "./dev demo did not start serving"
            time.sleep(0.2)
        yield uri
    finally:
        process.terminate()
        process.wait(timeout=60)


def normal(table: pa.Table) -> list[list[Any]]:
    """Rows as flightsql-dbapi's client script prints them (ints and strings as they are)."""
    return [
        [v if isinstance(v, int | str) or v is None else str(v) for v in row.values()]
        for row in table.to_pylist()
    ]


ADMIN = {"username": "admin", "password": "admin"}


def through_adbc(uri: str, sql: str) -> pa.Table:
    with flightsql.connect(uri, db_kwargs=ADMIN) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        table: pa.Table = cursor.fetch_arrow_table()
        return table


def through_pyarrow_flight(uri: str, sql: str) -> tuple[pa.Schema, pa.Table]:
    client = flight.FlightClient(uri)
    token = client.authenticate_basic_token("admin", "admin")
    options = flight.FlightCallOptions(headers=[token])
    command = any_pb2.Any()
    command.Pack(flight_sql_pb2.CommandStatementQuery(query=sql))
    info = client.get_flight_info(
        flight.FlightDescriptor.for_command(command.SerializeToString()), options
    )
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    client.close()
    return info.schema, table


def through_flightsql_dbapi(uri: str, sql: str) -> dict[str, Any]:
    port = uri.rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, str(DBAPI_CLIENT), port, "admin", "admin", sql],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def direct(sql: str) -> pa.Table:
    with duckdb.connect(str(ROOT / "config" / "demo" / "data" / "sales.duckdb"),
                        read_only=True) as connection:  # fmt: skip
        return connection.execute(DIRECT[sql]).to_arrow_table()


@pytest.mark.parametrize("sql", [ALL_ORDERS, SAME_SOURCE_JOIN], ids=["orders", "join"])
def test_three_clients_get_the_source_rows(demo_server: str, sql: str) -> None:
    expected = normal(direct(sql))
    assert len(expected) > 100
    adbc_table = through_adbc(demo_server, sql)
    assert normal(adbc_table) == expected
    info_schema, flight_table = through_pyarrow_flight(demo_server, sql)
    assert info_schema == flight_table.schema
    assert normal(flight_table) == expected
    dbapi = through_flightsql_dbapi(demo_server, sql)
    assert "error" not in dbapi, dbapi
    assert dbapi["rows"] == expected
    assert dbapi["schema_matches"] is True
    assert dbapi["columns"] == adbc_table.column_names


def test_get_objects_lists_domains_products_and_typed_columns(demo_server: str) -> None:
    with flightsql.connect(demo_server, db_kwargs=ADMIN) as conn:
        objects = conn.adbc_get_objects(depth="columns").read_all().to_pylist()
    (catalog,) = objects
    assert catalog["catalog_name"] == "demo"
    schemas = {s["db_schema_name"]: s for s in catalog["catalog_db_schemas"]}
    assert {"sales", "hr", "finance"} <= set(schemas)
    tables = {t["table_name"]: t for t in schemas["sales"]["db_schema_tables"]}
    assert {"orders", "customers", "order_items"} <= set(tables)
    columns = {c["column_name"]: c for c in tables["orders"]["table_columns"]}
    assert list(columns)[:4] == ["order_id", "employee_id", "customer_id", "amount"]
    assert columns["amount"]["xdbc_type_name"].startswith("DECIMAL(12")
    assert columns["ts"]["xdbc_type_name"] == "TIMESTAMP WITH TIME ZONE"
    hr_tables = {t["table_name"] for t in schemas["hr"]["db_schema_tables"]}
    assert "employees" in hr_tables
