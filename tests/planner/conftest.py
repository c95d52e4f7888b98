"""The planner mesh (four source kinds) and its all-in-one-place DuckDB oracle; and the same
mesh with crm planned by a stub, for plan goldens without a PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from meshgate.catalog.catalog import QueryDefinition
from meshgate.catalog.loader import load_mesh
from meshgate.registry import create_connector, installed_kinds
from meshgate.service import QueryService
from meshgate.spi import Connector, ConnectorContext
from tests.conftest import fresh_pg_database
from tests.planner import mesh
from tests.planner.stub import STUB_DSN, PlanOnlyPostgres


@pytest.fixture(scope="package")
def mesh_dir(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        yield mesh.build(tmp_path_factory.mktemp("golden"), dsn)


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


@pytest.fixture(scope="package")
def oracle(service: QueryService) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB holding every product's rows under the same names."""
    admin = service.principal("admin")
    connection = duckdb.connect()
    for product in service.catalog.products.values():
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{product.domain}"')
    views = []
    for product in service.catalog.products.values():
        if isinstance(product.definition, QueryDefinition):
            views.append(product)
            continue
        table = service.query(f"SELECT * FROM {product.qualified_name}", admin)
        connection.register("incoming", table)
        connection.execute(f"CREATE TABLE {product.qualified_name} AS SELECT * FROM incoming")
        connection.unregister("incoming")
    for product in views:
        assert isinstance(product.definition, QueryDefinition)
        connection.execute(f"CREATE VIEW {product.qualified_name} AS {product.definition.sql}")
    yield connection
    connection.close()
