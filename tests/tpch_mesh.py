"""The TPC-H mesh at SF 0.01, split between PostgreSQL and Parquet, and its one-DuckDB
reference: fixtures shared by the packages that run TPC-H through meshgate (tests/tpch,
tests/spark), each importing them into its conftest (one instance per package)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pyarrow.parquet as pq
import pytest

from benchmarks.tpch import TABLES, arrow_schema, setup_tpch
from tests.conftest import fresh_pg_database

SCALE = 0.01


@pytest.fixture(scope="package")
def tpch_mesh(
    pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """The mesh's config directory and the DSN of its own fresh PostgreSQL database."""
    with fresh_pg_database(pg_server_dsn) as dsn:
        yield setup_tpch(SCALE, dsn, tmp_path_factory.mktemp("tpch")), dsn


@pytest.fixture(scope="package")
def reference(tpch_mesh: tuple[Path, str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB with all eight tables, read from the very sources the mesh uses."""
    directory, dsn = tpch_mesh
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA tpch")
    with pg.connect(dsn) as source, source.cursor() as cursor:
        for table in TABLES:
            if table.in_postgres:
                cursor.execute(f"SELECT * FROM tpch.{table.name}")
                # the driver hands NUMERIC over as text: give the reference the TPC-H types
                data = cursor.fetch_arrow_table().cast(arrow_schema(table))
            else:
                data = pq.read_table(directory / "data" / f"{table.name}.parquet")
            connection.register("incoming", data)
            connection.execute(f"CREATE TABLE tpch.{table.name} AS SELECT * FROM incoming")
            connection.unregister("incoming")
    yield connection
    connection.close()
