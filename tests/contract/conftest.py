"""Fixtures of the contract suite: one `source` per registered builder, and the oracle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from .oracle import oracle
from .sources import BUILDERS, ContractSource


@pytest.fixture(params=[pytest.param(name, marks=marks) for name, (_, marks) in BUILDERS.items()])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContractSource]:
    builder, _ = BUILDERS[request.param]
    built = builder(request, tmp_path)
    yield built
    built.connector.close()


@pytest.fixture(scope="session")
def reference() -> duckdb.DuckDBPyConnection:
    """The oracle every source's answer is compared with (tests/contract/oracle.py)."""
    return oracle()
