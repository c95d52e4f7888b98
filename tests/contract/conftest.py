"""Fixtures of the contract suite: one `source` per registered builder, and the DuckDB oracle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from .sources import BUILDERS, TABLES, ContractSource


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, (_, marks) in BUILDERS.items()])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContractSource]:
    builder, _ = BUILDERS[request.param]
    built = builder(request, tmp_path)
    yield built
    built.connector.close()


@pytest.fixture(scope="session")
def reference() -> duckdb.DuckDBPyConnection:
    """DuckDB holding all contract tables: the oracle every source's answer is compared with."""
    connection = duckdb.connect()
    for name, table in TABLES.items():
        connection.register("incoming", table)
        connection.execute(f'CREATE TABLE "{name}" AS SELECT * FROM incoming')
        connection.unregister("incoming")
    return connection
