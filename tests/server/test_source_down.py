"""A source that is down answers UNAVAILABLE with a clear message; the rest keeps serving."""

from __future__ import annotations

from collections.abc import Iterator

import adbc_driver_flightsql.dbapi as adbc
import duckdb
import pytest

from meshgate.principal import hash_password
from meshgate.server import running_server
from meshgate.service import QueryService

CONFIG = """
mesh: {name: shaky}
sources:
  - {name: local, kind: duckdb, options: {path: local.duckdb}}
  - name: remote
    kind: postgres
    options: {dsn: "postgresql://reader:s3cret-password@127.0.0.1:9/warehouse"}
domains:
  - {name: ops, owner: ops-team}
products:
  - domain: ops
    name: healthy
    table: {source: local, table: things}
    columns: [{name: id, type: BIGINT}]
  - domain: ops
    name: remote_things
    table: {source: remote, schema: public, table: things}
    columns: [{name: id, type: BIGINT}]
roles: [{name: admin, grants: ["*"]}]
users: [{name: admin, password_hash: "HASH", roles: [admin]}]
"""


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("shaky")
    with duckdb.connect(str(directory / "local.duckdb")) as connection:
        connection.execute("CREATE TABLE things AS SELECT range AS id FROM range(5)")
    (directory / "mesh.yaml").write_text(
        CONFIG.replace("HASH", hash_password("admin", salt=b"source-down-salt"))
    )
    service = QueryService.from_config(directory)
    with running_server(service) as server:
        yield f"grpc://127.0.0.1:{server.port}"
    service.close()


def test_down_source_is_unavailable_and_the_server_keeps_serving(
    uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    with adbc.connect(uri, db_kwargs={"username": "admin", "password": "admin"}) as conn:
        for _ in range(2):
            with conn.cursor() as cursor, pytest.raises(adbc.Error) as raised:
                cursor.execute("SELECT * FROM ops.remote_things")
            message = str(raised.value)
            assert "Unavailable" in message  # the gRPC code ADBC reports
            assert "unavailable right now" in message
            assert "error id" in message
            # an admin is told the source's configured name, never its address or login
            assert "source 'remote', which this query reads, is unavailable" in message
            for physical in ("127.0.0.1:9", "warehouse", "reader", "s3cret"):
                assert physical not in message
            assert "Traceback" not in message
            with conn.cursor() as cursor:
                cursor.execute("SELECT count(*) AS n FROM ops.healthy")
                assert cursor.fetchone() == (5,)
    # the operator's side: the log has what the client was not told
    assert any("127.0.0.1:9/warehouse" in record.getMessage() for record in caplog.records)
