"""A result past `server.limits.max_result_rows` over PostgreSQL: ADBC gets the error naming
the limit, and the PostgreSQL backend that was streaming the rows stops (`pg_stat_activity`).

The product reads a view that streams 10^11 rows: without the stop PostgreSQL would keep
sending for hours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc
import adbc_driver_postgresql.dbapi as pg
import pytest

from meshgate.server import running_server
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database
from tests.policy import mesh
from tests.waiting import within

pytestmark = pytest.mark.postgres

VIEW = "limits_probe_view"
PRODUCT = f"""
  - domain: hr
    name: endless
    table: {{source: lab_db, schema: public, table: {VIEW}}}
    columns:
      - {{name: n, type: BIGINT}}
"""


@pytest.fixture(scope="module")
def dsn(pg_server_dsn: str) -> Iterator[str]:
    with fresh_pg_database(pg_server_dsn) as database:
        with pg.connect(database, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE VIEW {VIEW} AS SELECT generate_series(1, 100000000000) AS n")
        yield database


def streaming_backends(dsn: str) -> int:
    with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            f"AND query ILIKE '%{VIEW}%' AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def read_all(cursor: adbc.Cursor, sql: str) -> int:
    cursor.execute(sql)
    return int(cursor.fetch_arrow_table().num_rows)


def test_the_row_limit_ends_the_stream_and_stops_the_backend(dsn: str, tmp_path: Path) -> None:
    config = mesh.build(tmp_path / "limited")
    text = (config / "mesh.yaml").read_text(encoding="utf-8")
    text = text.replace("sources:\n", "sources:\n  - {name: lab_db, kind: postgres, "
                        f"options: {{dsn: '{dsn}'}}}}\n", 1) + PRODUCT  # fmt: skip
    text += "\nserver: {limits: {max_result_rows: 100000}}\n"
    (config / "mesh.yaml").write_text(text, encoding="utf-8")
    service = QueryService.from_config(config)
    try:
        with running_server(service) as running, adbc.connect(
            f"grpc://127.0.0.1:{running.port}",
            db_kwargs={"username": "analyst", "password": "analyst"},
        ) as conn, conn.cursor() as cursor:
            with pytest.raises(adbc.Error) as raised:
                read_all(cursor, "SELECT n FROM hr.endless")
            assert "resource exhausted: the result has more than 100,000 rows" in str(raised.value)
            assert "server.limits.max_result_rows" in str(raised.value)
            assert within(10, lambda: streaming_backends(dsn) == 0)  # it would run for hours
            assert read_all(cursor, "SELECT n FROM hr.endless LIMIT 100000") == 100000
            assert within(5, lambda: service.slots.running() == 0)
    finally:
        service.close()
