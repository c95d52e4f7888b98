"""A real meshgate Flight SQL server over the demo mesh (users admin/admin, analyst/analyst)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from meshgate.server import MeshgateFlightServer, running_server
from meshgate.service import QueryService
from tests.security.oracle import analyst_view
from tests.server.flightsql_clients import Session


@pytest.fixture(scope="session")
def service(demo_dir: Path) -> Iterator[QueryService]:
    service = QueryService.from_config(demo_dir)
    yield service
    service.close()


@pytest.fixture(scope="session")
def server(service: QueryService) -> Iterator[MeshgateFlightServer]:
    with running_server(service) as server:
        yield server


@pytest.fixture(scope="session")
def uri(server: MeshgateFlightServer) -> str:
    return f"grpc://127.0.0.1:{server.port}"


@pytest.fixture
def admin(uri: str) -> Iterator[Session]:
    session = Session(uri, "admin", "admin")
    yield session
    session.close()


@pytest.fixture
def analyst(uri: str) -> Iterator[Session]:
    session = Session(uri, "analyst", "analyst")
    yield session
    session.close()


@pytest.fixture(scope="session")
def analyst_oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    """What analyst may read, built from the demo generator's rows without meshgate."""
    connection = analyst_view()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()
