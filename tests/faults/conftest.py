"""A real meshgate server whose PostgreSQL source runs through a `FaultProxy`.

The database is uniquely named and holds `events`, large enough (ROWS rows, about 200 MB of
binary COPY) that a stream of it takes many batches, and `spin`, a view whose only row takes
hours to count, so a query of it stays active at PostgreSQL until something stops it. A DuckDB
source beside it stands for the queries that do not need PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pytest

from meshgate.principal import hash_password
from meshgate.server import MeshgateFlightServer, running_server
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database
from tests.faults.proxy import FaultProxy
from tests.server.flightsql_clients import Session

ROWS = 3_000_000  # more than every buffer between PostgreSQL and a stalled client holds
SPIN_VIEW = "spin_forever"
CONNECT_TIMEOUT_SECONDS = 2

CONFIG = """
mesh: {name: faulty}
sources:
  - {name: local, kind: duckdb, options: {path: local.duckdb}}
  - name: warehouse
    kind: postgres
    options: {dsn: "DSN", pool_size: 4, connect_timeout_seconds: TIMEOUT}
domains:
  - {name: ops, owner: ops-team}
products:
  - domain: ops
    name: things
    table: {source: local, table: things}
    columns: [{name: id, type: BIGINT}]
  - domain: ops
    name: events
    table: {source: warehouse, schema: public, table: events}
    columns:
      - {name: id, type: BIGINT}
      - {name: payload, type: VARCHAR}
  - domain: ops
    name: spin
    table: {source: warehouse, schema: public, table: SPIN}
    columns: [{name: n, type: BIGINT}]
roles:
  - {name: admin, grants: ["*"]}
  - {name: analyst, grants: ["ops.*"]}
users:
  - {name: admin, password_hash: "ADMIN_HASH", roles: [admin]}
  - {name: analyst, password_hash: "ANALYST_HASH", roles: [analyst]}
"""


@pytest.fixture(scope="package")
def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    """The test database, reached directly (not through the proxy)."""
    with fresh_pg_database(pg_server_dsn) as dsn:
        with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE events AS SELECT g::bigint AS id, md5(g::text) AS payload "
                f"FROM generate_series(1, {ROWS}) AS g"
            )
            # In the select list the series streams; in FROM it would spill to temp files.
            cursor.execute(f"CREATE VIEW {SPIN_VIEW} AS SELECT count(*)::bigint AS n "
                           "FROM (SELECT generate_series(1, 100000000000)) AS g")  # fmt: skip
        yield dsn


@pytest.fixture(scope="package")
def proxy(pg_dsn: str) -> Iterator[FaultProxy]:
    parts = urlsplit(pg_dsn)
    running = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    yield running
    running.close()


@pytest.fixture(autouse=True)
def healthy_proxy(proxy: FaultProxy) -> Iterator[None]:
    """Every test starts and ends with the link to PostgreSQL healthy."""
    proxy.resume()
    yield
    proxy.resume()


def through(dsn: str, proxy: FaultProxy) -> str:
    parts = urlsplit(dsn)
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else \
        f"127.0.0.1:{proxy.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture(scope="package")
def service(pg_dsn: str, proxy: FaultProxy,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:  # fmt: skip
    directory: Path = tmp_path_factory.mktemp("faults")
    with duckdb.connect(str(directory / "local.duckdb")) as connection:
        connection.execute("CREATE TABLE things AS SELECT range AS id FROM range(1000)")
    text = (CONFIG.replace("DSN", through(pg_dsn, proxy)).replace("SPIN", SPIN_VIEW)
            .replace("TIMEOUT", str(CONNECT_TIMEOUT_SECONDS))
            .replace("ADMIN_HASH", hash_password("admin", salt=b"faults-admin-salt"))
            .replace("ANALYST_HASH", hash_password("analyst", salt=b"faults-analyst-salt")))
    (directory / "mesh.yaml").write_text(text, encoding="utf-8")
    svc = QueryService.from_config(directory)
    yield svc
    svc.close()


@pytest.fixture(scope="package")
def server(service: QueryService) -> Iterator[MeshgateFlightServer]:
    with running_server(service) as running:
        yield running


@pytest.fixture(scope="package")
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


def active_backends(dsn: str) -> int:
    """Queries of the test database PostgreSQL is running now (this probe's own excluded)."""
    with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND backend_type = 'client backend' AND datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


