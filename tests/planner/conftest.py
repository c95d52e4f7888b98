"""The planner mesh (four source kinds) and its all-in-one-place DuckDB oracle; and the same
mesh with crm planned by a stub, for plan goldens without a PostgreSQL.

The oracle reads each source by a path that shares no code with meshgate: DuckDB attaches the
DuckDB file and reads the Parquet file itself, Python's sqlite3 reads the SQLite file, the ADBC
PostgreSQL driver reads crm. So a connector's decoding error cannot reach the expected answer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pytest
import yaml

from meshgate.catalog.loader import load_mesh
from meshgate.registry import create_connector, installed_kinds
from meshgate.service import QueryService
from meshgate.spi import Connector, ConnectorContext
from tests.conftest import fresh_pg_database
from tests.planner import mesh
from tests.planner.stub import STUB_DSN, PlanOnlyPostgres


@pytest.fixture(scope="package")
def crm_dsn(pg_server_dsn: str) -> Iterator[str]:
    """The PostgreSQL database holding crm's tables."""
    with fresh_pg_database(pg_server_dsn) as dsn:
        yield dsn


@pytest.fixture(scope="package")
def mesh_dir(crm_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mesh.build(tmp_path_factory.mktemp("golden"), crm_dsn)


@pytest.fixture(scope="package")
def stub_mesh_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("golden_stub")
    mesh.write_files(directory, STUB_DSN)
    return directory


@pytest.fixture(scope="package")
def stub_service(stub_mesh_dir: Path) -> Iterator[QueryService]:
    """The mesh with the real file sources and crm (PostgreSQL) planned by `PlanOnlyPostgres`."""
    definition = load_mesh(stub_mesh_dir, known_source_kinds=installed_kinds())
    connectors: dict[str, Connector] = {}
    for name, source in definition.sources.items():
        context = ConnectorContext(name, source.options, definition.directory)
        if source.kind == "postgres":
            connectors[name] = PlanOnlyPostgres(context)
        else:
            connectors[name] = create_connector(source.kind, context)
    svc = QueryService(definition, connectors)
    yield svc
    svc.close()


@pytest.fixture(scope="package")
def service(mesh_dir: Path) -> Iterator[QueryService]:
    svc = QueryService.from_config(mesh_dir)
    yield svc
    svc.close()


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@pytest.fixture(scope="package")
def oracle(mesh_dir: Path, crm_dsn: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB holding every product's rows under the same names, each read from its
    source without meshgate, typed as mesh.yaml declares."""
    data = mesh_dir / "data"
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    for domain in ("sales", "hr", "crm"):
        connection.execute(f"CREATE SCHEMA {domain}")
    connection.execute(f"ATTACH {_quoted(data / 'sales.duckdb')} AS sales_db (READ_ONLY)")
    for table in ("orders", "customers"):
        connection.execute(f"CREATE TABLE sales.{table} AS FROM sales_db.main.{table}")
    connection.execute("DETACH sales_db")
    items = _quoted(data / "lake" / "items.parquet")
    connection.execute(f"CREATE TABLE sales.items AS FROM read_parquet({items})")
    connection.execute(
        "CREATE TABLE hr.employees (id BIGINT, name VARCHAR, region VARCHAR, "
        "manager_id BIGINT, salary DECIMAL(10, 1))"
    )
    with sqlite3.connect(data / "hr.sqlite") as lite:
        employees = lite.execute(
            "SELECT id, name, region, manager_id, salary FROM employees"
        ).fetchall()
    connection.executemany("INSERT INTO hr.employees VALUES (?, ?, ?, ?, ?)", employees)
    with pg.connect(crm_dsn) as crm, crm.cursor() as cursor:
        for table in ("contacts", "tickets"):
            cursor.execute(f"SELECT * FROM public.{table}")
            connection.register("incoming", cursor.fetch_arrow_table())
            connection.execute(f"CREATE TABLE crm.{table} AS FROM incoming")
            connection.unregister("incoming")
    config = yaml.safe_load((mesh_dir / "mesh.yaml").read_text())
    for product in config["products"]:
        if "query" in product:
            name = f"{product['domain']}.{product['name']}"
            connection.execute(f"CREATE VIEW {name} AS {product['query']}")
    yield connection
    connection.close()
