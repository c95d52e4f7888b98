"""A real meshgate Flight SQL server over the demo mesh (users admin/admin, analyst/analyst).

`endpoint` is the same service served twice, plaintext and over TLS with a certificate of a
throw-away CA: every client test that takes it (or `analyst` / `admin`, which log in through
it) runs over both. `server` / `uri` are the plaintext one alone, for tests about something
else than the transport.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from meshgate.catalog.tls import TlsMaterial
from meshgate.server import MeshgateFlightServer, running_server
from meshgate.service import QueryService
from tests.security.oracle import analyst_view
from tests.server.flightsql_clients import Endpoint, Session
from tests.server.pki import Pki, make_pki


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


@pytest.fixture(scope="session")
def server_pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="session")
def tls_endpoint(service: QueryService, server_pki: Pki,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    ca_file = tmp_path_factory.mktemp("server-ca") / "ca.pem"
    ca_file.write_bytes(server_pki.ca.certificate)
    material = TlsMaterial(server_pki.server.certificate, server_pki.server.key)
    with running_server(service, tls=material) as server:
        yield Endpoint(f"grpc+tls://127.0.0.1:{server.port}", server.port,
                       server_pki.ca.certificate, ca_file)


@pytest.fixture(scope="session", params=["plaintext", "tls"])
def endpoint(request: pytest.FixtureRequest, server: MeshgateFlightServer) -> Endpoint:
    if request.param == "tls":
        tls: Endpoint = request.getfixturevalue("tls_endpoint")
        return tls
    return Endpoint(f"grpc://127.0.0.1:{server.port}", server.port)


@pytest.fixture
def admin(endpoint: Endpoint) -> Iterator[Session]:
    session = endpoint.session("admin")
    yield session
    session.close()


@pytest.fixture
def analyst(endpoint: Endpoint) -> Iterator[Session]:
    session = endpoint.session("analyst")
    yield session
    session.close()


@pytest.fixture(scope="session")
def analyst_oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    """What analyst may read, built from the demo generator's rows without meshgate."""
    connection = analyst_view()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()
