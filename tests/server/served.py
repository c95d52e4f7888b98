"""A real `meshgate serve` process over the demo mesh plus a PostgreSQL source behind a proxy.

The lifecycle and operations tests drive the process as an operator does: signals, edits of
its config directory, HTTP probes; and query it with real Flight SQL clients. Its stderr goes
to a file the tests read while it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as pg
from pyarrow import flight

from tests.faults.proxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]

# Rows of `ops.events`; `ops.slow` takes SLOW_SECONDS at PostgreSQL; `ops.spin` never ends.
EVENTS = 1000
SLOW_SECONDS = 3

WAREHOUSE = """
sources:
  - name: warehouse
    kind: postgres
    options: {dsn: "DSN", pool_size: 2, connect_timeout_seconds: 2}
domains:
  - {name: ops, owner: ops-team, description: Operations data in PostgreSQL.}
products:
  - domain: ops
    name: events
    table: {source: warehouse, schema: public, table: EVENTS_TABLE}
    columns: [{name: id, type: BIGINT}, {name: kind, type: VARCHAR}]
  - domain: ops
    name: slow
    table: {source: warehouse, schema: public, table: slow}
    columns: [{name: n, type: BIGINT}]
  - domain: ops
    name: spin
    table: {source: warehouse, schema: public, table: spin}
    columns: [{name: n, type: BIGINT}]
"""


def create_warehouse(dsn: str) -> None:
    """The tables and views the warehouse source serves, in the database `dsn`."""
    with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        for table, kind in (("events", "click"), ("events_v2", "view")):
            cursor.execute(f"CREATE TABLE {table} AS SELECT g::bigint AS id, '{kind}'::text "
                           f"AS kind FROM generate_series(1, {EVENTS}) AS g")  # fmt: skip
        cursor.execute("CREATE TABLE events_wide AS SELECT id, kind, 0::bigint AS extra "
                       "FROM events")  # fmt: skip
        cursor.execute(f"CREATE VIEW slow AS SELECT 1::bigint AS n FROM pg_sleep({SLOW_SECONDS})")
        cursor.execute("CREATE VIEW spin AS SELECT count(*)::bigint AS n "
                       "FROM (SELECT generate_series(1, 100000000000)) AS g")  # fmt: skip


def through(dsn: str, proxy: FaultProxy) -> str:
    """`dsn` with its host and port replaced by the proxy's."""
    parts = urlsplit(dsn)
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else \
        f"127.0.0.1:{proxy.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def copy_demo(demo_dir: Path, directory: Path, server_yaml: str = "") -> None:
    """The demo's files in `directory`, data paths made absolute, plus `server_yaml`."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in demo_dir.glob("*.yaml"):
        text = source.read_text(encoding="utf-8").replace("path: data/", f"path: {demo_dir}/data/")
        (directory / source.name).write_text(text, encoding="utf-8")
    if server_yaml:
        (directory / "server.yaml").write_text(server_yaml, encoding="utf-8")


def write_config(directory: Path, demo_dir: Path, dsn: str, server_yaml: str,
                 events_table: str = "events") -> None:  # fmt: skip
    """The demo's files (data paths made absolute), the warehouse and `server_yaml`."""
    copy_demo(demo_dir, directory, server_yaml)
    write_warehouse(directory, dsn, events_table)


def write_warehouse(directory: Path, dsn: str, events_table: str,
                    columns: str = "") -> None:  # fmt: skip
    text = WAREHOUSE.replace("DSN", dsn).replace("EVENTS_TABLE", events_table)
    if columns:
        text = text.replace("{name: kind, type: VARCHAR}]", "{name: kind, type: VARCHAR}, "
                            + columns + "]", 1)  # fmt: skip
    (directory / "warehouse.yaml").write_text(text, encoding="utf-8")


@dataclass
class Served:
    """A running `meshgate serve`: its Flight URI, its HTTP base URL, its stderr file."""

    process: subprocess.Popen[bytes]
    uri: str
    http: str
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """Each stderr line parsed as JSON (the test fails on a line that is not)."""
        return [json.loads(line) for line in self.stderr().splitlines() if line.strip()]

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait_for_log(self, text: str, after: int = 0, timeout: float = 30) -> str:
        """Wait until `text` appears in stderr past offset `after`; returns the stderr."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stderr = self.stderr()
            if text in stderr[after:]:
                return stderr
            assert self.process.poll() is None, f"meshgate serve exited:\n{stderr}"
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not logged within {timeout}s:\n{self.stderr()[after:]}")


def http_get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    """The status and body of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def _wait_serving(served: Served) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert served.process.poll() is None, f"meshgate serve exited:\n{served.stderr()}"
        client = flight.FlightClient(served.uri)
        try:
            client.authenticate_basic_token("admin", "admin")
            return
        except flight.FlightError:
            time.sleep(0.2)
        finally:
            client.close()
    raise AssertionError(f"nothing answered on {served.uri} within 60 s:\n{served.stderr()}")


@contextlib.contextmanager
def serve(directory: Path, http_port: int | None = None,
          name: str | None = None) -> Iterator[Served]:  # fmt: skip
    """`meshgate serve --config directory` on a free port; killed if still running after.
    `name` tells apart the logs of several processes over one directory (replicas)."""
    port = free_port()
    log = directory.parent / f"{name or directory.name}-stderr.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), str(ROOT / "connectors"), os.environ.get("PYTHONPATH", "")])}
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshgate.cli", "serve", "--config", str(directory),
             "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=directory.parent,
        )  # fmt: skip
    served = Served(process, f"grpc://127.0.0.1:{port}", "", log)
    try:
        _wait_serving(served)
        if http_port is not None:
            served.http = f"http://127.0.0.1:{bound_http_port(served, http_port)}"
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def bound_http_port(served: Served, configured: int) -> int:
    """The HTTP port: the configured one, or the one the log names for port 0."""
    stderr = served.wait_for_log("operations endpoint on http://")
    if configured:
        return configured
    tail = stderr.split("operations endpoint on http://", 1)[1]
    return int(tail.split(" ", 1)[0].split(":")[1])


def eventually(check: Callable[[], bool], timeout: float = 30, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(interval)
