"""The suite's full scan: `SELECT *` of the layout's largest PostgreSQL table, six ways.

meshgate (its own `meshgate serve`, ADBC Flight SQL client, the server's peak RSS during each
scan: VmHWM after resetting it through /proc/PID/clear_refs), DuckDB's postgres extension
exporting the table to Arrow, ADBC PostgreSQL directly, PostgreSQL's binary COPY through
psycopg (bytes counted, discarded), ConnectorX's partitioned read (one partition per core) and
a bare pyarrow.flight server in its own process streaming the table from memory to the same
ADBC client. One warm-up, then `rounds` rounds, the order reversed every round.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import psycopg

from benchmarks.layouts import Layout
from benchmarks.served import meshgate_server
from benchmarks.tpch import DOMAIN

PEERS = ("meshgate", "duckdb_pg", "adbc_pg", "copy_binary", "connectorx", "bare_flight")
PARTITION_KEYS = {"orders": "o_orderkey", "lineitem": "l_orderkey", "customer": "c_custkey"}


@dataclass
class ScanResult:
    table: str
    rows: int = 0
    seconds: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PEERS})
    peak_rss_kib: list[int] = field(default_factory=list)  # meshgate's VmHWM per scan
    # The served process's CPU seconds per scan: on a shared machine a scan's time says who
    # got the cores, its CPU what it cost.
    server_cpu_seconds: list[float] = field(default_factory=list)
    load_average: list[float] = field(default_factory=list)  # 1-minute, after each round
    rss_before_kib: int = 0
    copy_bytes: int = 0


def run_scan(layout: Layout, rounds: int) -> ScanResult:
    table = layout.largest_postgres_table()
    result = ScanResult(table)
    physical = f'"{layout.pg_schema}"."{table}"'
    print(f"scan: {table} ({layout.name} layout)", flush=True)
    peer = layout.peer()
    with meshgate_server(layout.directory) as served, bare_flight(layout, table) as bare_uri, \
            flightsql.connect(served.uri, db_kwargs={"username": "admin", "password": "admin"},
                              autocommit=True) as client, \
            flightsql.connect(bare_uri, autocommit=True) as bare, \
            pg.connect(layout.pg_dsn) as direct:  # fmt: skip

        def through_flight(connection: object, sql: str) -> int:
            with connection.cursor() as cursor:  # type: ignore[attr-defined]
                cursor.execute(sql)
                return int(cursor.fetch_arrow_table().num_rows)

        def through_meshgate() -> int:
            _reset_peak(served.pid)
            cpu = proc_cpu_seconds(served.pid)
            rows = through_flight(client, f"SELECT * FROM {DOMAIN}.{table}")
            result.server_cpu_seconds.append(proc_cpu_seconds(served.pid) - cpu)
            result.peak_rss_kib.append(proc_status_kib(served.pid, "VmHWM"))
            return rows

        def through_adbc() -> int:
            with direct.cursor() as cursor:
                cursor.execute(f"SELECT * FROM {physical}")
                return int(cursor.fetch_arrow_table().num_rows)

        def through_copy() -> int:
            with psycopg.connect(layout.pg_dsn) as connection, connection.cursor() as cursor:
                total = 0
                with cursor.copy(f"COPY (SELECT * FROM {physical}) TO STDOUT (FORMAT binary)") \
                        as copy:  # fmt: skip
                    for chunk in copy:
                        total += len(chunk)
            result.copy_bytes = total
            return -1  # rows are not decoded: COPY's figure is bytes and seconds

        def through_connectorx() -> int:
            import connectorx

            read = connectorx.read_sql(
                layout.pg_dsn, f"SELECT * FROM {physical}", return_type="arrow",
                partition_on=PARTITION_KEYS[table], partition_num=os.cpu_count() or 2,
            )  # fmt: skip
            return int(read.num_rows)

        ways: dict[str, Callable[[], int]] = {
            "meshgate": through_meshgate,
            "duckdb_pg": lambda: int(
                peer.execute(f"SELECT * FROM {DOMAIN}.{table}").to_arrow_table().num_rows
            ),
            "adbc_pg": through_adbc,
            "copy_binary": through_copy,
            "connectorx": through_connectorx,
            "bare_flight": lambda: through_flight(bare, "SELECT *"),
        }
        result.rss_before_kib = proc_status_kib(served.pid, "VmRSS")
        for round_number in range(rounds + 1):
            order = PEERS if round_number % 2 else tuple(reversed(PEERS))
            for way in order:
                started = time.perf_counter()
                rows = ways[way]()
                seconds = time.perf_counter() - started
                if rows >= 0:
                    if result.rows and rows != result.rows:
                        raise SystemExit(f"scan through {way}: {rows} rows, others {result.rows}")
                    result.rows = rows
                if round_number > 0:
                    result.seconds[way].append(seconds)
            if round_number > 0:
                result.load_average.append(os.getloadavg()[0])
            print(f"scan: {'warm-up' if round_number == 0 else f'round {round_number}'} done",
                  flush=True)  # fmt: skip
    peer.close()
    result.peak_rss_kib = result.peak_rss_kib[1:]  # the warm-up's peak includes start-up
    result.server_cpu_seconds = result.server_cpu_seconds[1:]
    return result


@contextmanager
def bare_flight(layout: Layout, table: str) -> Iterator[str]:
    """The bare pyarrow.flight server in its own process; its URI once it has the table."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bare_flight", "--pg-dsn", layout.pg_dsn,
         "--pg-schema", layout.pg_schema, "--table", table, "--port", str(port)],
        stdout=subprocess.PIPE, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise SystemExit("the bare pyarrow.flight server did not start")
        yield f"grpc://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _reset_peak(pid: int) -> None:
    """Reset the process's VmHWM to its current RSS (Linux: clear_refs value 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (Linux /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/{pid}/status has no {key}")
