"""SQLAlchemy's PostgreSQL dialect reflects meshgate over the PostgreSQL wire: SQLAlchemy 2 with
psycopg 3, in an environment of its own (the project's pins SQLAlchemy 1.4 for
flightsql-dbapi, and 1.4 has no psycopg 3 dialect). Each caller reflects exactly the products
and columns ADBC's get_objects shows them over Flight SQL.

The environment is `MESHGATE_SQLALCHEMY2_PYTHON` when set, else a virtualenv made once (from
PyPI, pinned below) under the user's cache directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import pytest
from pyarrow import flight

from meshgate.server.postgres import PostgresFrontEnd
from meshgate.service import QueryService

CLIENT = Path(__file__).with_name("postgres_sqlalchemy_client.py")
PINS = ("sqlalchemy==2.1.9", "psycopg[binary]==3.3.9")


@pytest.fixture(scope="module")
def sqlalchemy2_python() -> str:
    given = os.environ.get("MESHGATE_SQLALCHEMY2_PYTHON")
    if given:
        return given
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    venv = cache / "meshgate" / ("sqlalchemy2-" + "-".join(p.split("==")[1] for p in PINS))
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS], check=True,
                       timeout=600)  # fmt: skip
    return str(python)


@pytest.fixture(scope="module")
def postgres_port(service: QueryService) -> Iterator[int]:
    front_end = PostgresFrontEnd(service).start()
    yield front_end.port
    front_end.shutdown()


def _reflect(python: str, port: int, user: str) -> dict[str, Any]:
    url = f"postgresql+psycopg://{user}:{user}@127.0.0.1:{port}/meshgate"
    done = subprocess.run([python, str(CLIENT), url], capture_output=True, text=True,
                          timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    reflected: dict[str, Any] = json.loads(done.stdout)
    return reflected


def _flight_columns(server: flight.FlightServerBase, user: str) -> dict[str, list[str]]:
    uri = f"grpc://127.0.0.1:{server.port}"
    with adbc.connect(uri, db_kwargs={"username": user, "password": user}) as connection:
        objects = connection.adbc_get_objects(depth="columns").read_all().to_pylist()
    return {f"{schema['db_schema_name']}.{table['table_name']}":
            [column["column_name"] for column in table["table_columns"] or ()]
            for catalog in objects for schema in catalog["catalog_db_schemas"] or ()
            for table in schema["db_schema_tables"] or ()
            if table["table_type"].upper() in ("TABLE", "BASE TABLE")}  # fmt: skip


def _flight_rows(server: flight.FlightServerBase, user: str, sql: str) -> list[list[Any]]:
    uri = f"grpc://127.0.0.1:{server.port}"
    with (adbc.connect(uri, db_kwargs={"username": user, "password": user}) as connection,
          connection.cursor() as cursor):
        cursor.execute(sql)
        return [[order, str(amount)] for order, amount in cursor.fetchall()]


@pytest.mark.parametrize("user", ["analyst", "partner"])
def test_sqlalchemy_reflects_what_get_objects_shows_and_queries_with_a_parameter(
    sqlalchemy2_python: str, postgres_port: int, server: flight.FlightServerBase, user: str
) -> None:
    reflected = _reflect(sqlalchemy2_python, postgres_port, user)

    assert reflected["sqlalchemy"].startswith("2.")
    expected = _flight_columns(server, user)
    assert {name: [c[0] for c in columns] for name, columns in reflected["columns"].items()} \
        == expected
    assert sorted(reflected["schemas"]) == sorted({name.split(".")[0] for name in expected})
    assert ("hr" in reflected["schemas"]) == (user == "analyst")
    assert reflected["primary_keys"]["sales.order_items"] == ["order_items_pkey",
                                                              ["order_id", "line_no"]]
    assert reflected["rows"] == _flight_rows(server, user, "SELECT order_id, amount FROM "
                                             "sales.orders WHERE order_id < 4 ORDER BY 1")
    orders = {c[0]: c for c in reflected["columns"]["sales.orders"]}
    assert orders["amount"][1] == "NUMERIC(12, 2)"
    assert orders["ts"][1] == "TIMESTAMP"
    assert reflected["foreign_keys"]["sales.orders"] == []  # meshgate declares none yet
    assert reflected["indexes"]["sales.orders"] == []  # a primary key's index is not listed
