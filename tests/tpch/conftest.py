"""TPC-H at SF 0.01 split between PostgreSQL and Parquet, served by meshgate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pytest

from meshgate.server import running_server
from meshgate.service import QueryService
from tests.tpch_mesh import reference, tpch_mesh

__all__ = ["reference", "tpch_mesh"]  # shared with tests/spark (tests/tpch_mesh.py)


@pytest.fixture(scope="package")
def service(tpch_mesh: tuple[Path, str]) -> Iterator[QueryService]:
    svc = QueryService.from_config(tpch_mesh[0])
    yield svc
    svc.close()


@pytest.fixture(scope="package")
def client(service: QueryService) -> Iterator[Any]:
    """An ADBC Flight SQL connection to meshgate serving the TPC-H mesh."""
    with (
        running_server(service) as server,
        flightsql.connect(
            f"grpc://127.0.0.1:{server.port}", db_kwargs={"username": "admin", "password": "admin"}
        ) as connection,
    ):
        yield connection
