"""The planner mesh (four source kinds) and its all-in-one-place DuckDB oracle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from meshgate.catalog.catalog import QueryDefinition
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database
from tests.planner import mesh


@pytest.fixture(scope="package")
def mesh_dir(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        yield mesh.build(tmp_path_factory.mktemp("golden"), dsn)


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
