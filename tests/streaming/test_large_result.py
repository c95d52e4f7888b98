"""A result larger than the server's memory budget streams to the client without running out.

The server runs as its own process (`meshgate serve`) and a watchdog samples its resident
memory while an ADBC client reads 6M rows (about 1.5 GB as Arrow) from a PostgreSQL-backed
product; the server must never go above 1 GiB, and every row must arrive.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import pytest

from meshgate.principal import hash_password
from tests.conftest import fresh_pg_database

ROWS = 6_000_000
MEMORY_LIMIT = 1024**3

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CONFIG = """
mesh: {{name: big}}
sources:
  - {{name: warehouse, kind: postgres, options: {{dsn: "{dsn}"}}}}
domains:
  - {{name: telemetry, owner: platform}}
products:
  - domain: telemetry
    name: events
    table: {{source: warehouse, schema: public, table: events}}
    columns:
      - {{name: id, type: BIGINT}}
      - {{name: payload, type: VARCHAR}}
      - {{name: amount, type: "DECIMAL(12,2)"}}
      - {{name: ts, type: TIMESTAMPTZ}}
roles:
  - {{name: admin, grants: ["*"]}}
users:
  - {{name: admin, password_hash: "{hash}", roles: [admin]}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module")
def big_mesh(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        with pg.connect(dsn, autocommit=True) as con, con.cursor() as cur:
            cur.execute(
                "CREATE UNLOGGED TABLE events (id BIGINT, payload TEXT, "
                "amount NUMERIC(12,2), ts TIMESTAMPTZ)"
            )
            cur.execute(
                "INSERT INTO events SELECT g, repeat(md5(g::text), 6), (g % 100000) / 100.0, "
                f"TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 second' "
                f"FROM generate_series(1, {ROWS}) AS g"
            )
        directory = tmp_path_factory.mktemp("big")
        (directory / "mesh.yaml").write_text(
            CONFIG.format(dsn=dsn, hash=hash_password("admin", salt=b"big-result-salt1"))
        )
        yield directory


def test_select_star_streams_within_the_memory_limit(big_mesh: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meshgate.cli",
            "serve",
            "--config",
            str(big_mesh),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    peak = 0
    stop = threading.Event()

    def watchdog() -> None:
        nonlocal peak
        while not stop.is_set() and server.poll() is None:
            peak = max(peak, _rss(server.pid))
            if peak > MEMORY_LIMIT:
                server.kill()  # the limit: a server above it is killed, and the read fails
                return
            time.sleep(0.05)

    monitor = threading.Thread(target=watchdog, daemon=True)
    try:
        _wait_for_port(port, server)
        monitor.start()
        rows = 0
        batches = 0
        with flightsql.connect(
            f"grpc://127.0.0.1:{port}", db_kwargs={"username": "admin", "password": "admin"}
        ) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT * FROM telemetry.events")
            reader = cursor.fetch_record_batch()
            for batch in reader:
                rows += batch.num_rows
                batches += 1
    finally:
        stop.set()
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert rows == ROWS, stderr.decode()[-2000:]
    assert batches > 10
    assert peak < MEMORY_LIMIT, f"server peaked at {peak / 2**20:.0f} MiB"
    print(f"streamed {rows} rows in {batches} batches; server peak RSS {peak / 2**20:.0f} MiB")


def _wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(
                f"server exited: {server.stderr.read().decode() if server.stderr else ''}"
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("server did not start within 60 s")
