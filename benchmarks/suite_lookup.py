"""The suite's point lookups: orders by key from 1, 4 and 16 client processes.

Each client is a process (benchmarks/lookup_client.py, so the clients' GIL caps nothing; the
same processes serve every measurement) holding one connection per measurement, looking
up random existing order keys for a fixed time; every answer must be exactly one row. Six
ways: through meshgate with the key bound as a parameter (`?`) and with the literal key in the
text (a new text each time), directly through ADBC PostgreSQL the same two ways (`$1`,
literal), and through a bare `pyarrow.flight` server answering the same Flight SQL calls from
memory (benchmarks/bare_lookup.py: what the client, its driver and the transport cost alone).
Rounds interleave the ways, their order reversed every round; clients start together (a `go`
line) once all have connected and made one lookup of warm-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import adbc_driver_postgresql.dbapi as pg

from benchmarks.layouts import Layout
from benchmarks.lookup_client import LookupTask
from benchmarks.served import free_port, meshgate_server

WAYS = ("meshgate_param", "pg_param", "bare_param", "meshgate_literal", "pg_literal",
        "bare_literal")


@dataclass
class LookupRun:
    way: str
    clients: int
    latencies: list[float] = field(default_factory=list)  # seconds, every client's
    seconds: float = 0.0
    server_cpu_seconds: float = 0.0  # the meshgate server process's CPU (user + system) in it

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.seconds


def run_lookups(layout: Layout, rounds: int, clients: Sequence[int],
                seconds: float) -> list[LookupRun]:  # fmt: skip
    """`rounds` rounds of every way at every client count; one LookupRun per round."""
    keys = _sample_keys(layout, 2000)
    runs: list[LookupRun] = []
    with meshgate_server(layout.directory) as served, bare_lookups(layout) as bare_uri, \
            client_processes(max(clients)) as workers:
        targets = {"meshgate": served.uri, "pg": layout.pg_dsn, "bare": bare_uri}
        for round_number in range(rounds):
            for count in clients:
                ways = WAYS if round_number % 2 == 0 else tuple(reversed(WAYS))
                for way in ways:
                    tasks = [
                        LookupTask(way, targets[way.split("_")[0]], layout.pg_schema, keys,
                                   (round_number * 100 + count) * 1000 + i, seconds)
                        for i in range(count)
                    ]  # fmt: skip
                    run = LookupRun(way, count, seconds=seconds)
                    cpu = server_cpu_seconds(served.pid)
                    for latencies in _run_together(workers[:count], tasks):
                        run.latencies.extend(latencies)
                    if way.startswith("meshgate_"):
                        run.server_cpu_seconds = server_cpu_seconds(served.pid) - cpu
                    runs.append(run)
                    per_lookup = run.server_cpu_seconds / max(1, len(run.latencies)) * 1000
                    print(f"lookup {way} x{count}: {run.qps:.1f} qps, meshgate server CPU "
                          f"{per_lookup:.2f} ms per lookup", flush=True)
    return runs


def server_cpu_seconds(pid: int) -> float:
    """The process's user + system CPU so far (Linux /proc; clock ticks of 1/100 s)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def bare_lookups(layout: Layout) -> Iterator[str]:
    """benchmarks/bare_lookup.py in its own process; its URI once it holds `orders`."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bare_lookup", "--pg-dsn", layout.pg_dsn,
         "--pg-schema", layout.pg_schema, "--port", str(port)],
        stdout=subprocess.PIPE, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise SystemExit("the bare lookup server (benchmarks/bare_lookup.py) did not start")
        yield f"grpc://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def client_processes(count: int) -> Iterator[list[subprocess.Popen[str]]]:
    """`count` processes of benchmarks.lookup_client, kept for the whole workload."""
    workers = [
        subprocess.Popen([sys.executable, "-m", "benchmarks.lookup_client"], text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=os.environ.copy())
        for _ in range(count)
    ]  # fmt: skip
    try:
        yield workers
    finally:
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.close()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()


def _run_together(workers: Sequence[subprocess.Popen[str]],
                  tasks: Sequence[LookupTask]) -> list[list[float]]:  # fmt: skip
    """Give each worker its task, wait until all are ready, start them at once, collect."""
    for worker, task in zip(workers, tasks, strict=True):
        assert worker.stdin is not None
        worker.stdin.write(task.line())
        worker.stdin.flush()
    for worker in workers:
        _answer(worker, "ready")
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    found = []
    for worker, task in zip(workers, tasks, strict=True):
        latencies = _answer(worker, "latencies")
        if not latencies:
            raise SystemExit(f"lookup {task.way}: a client made no lookup in {task.seconds} s")
        found.append([float(s) for s in latencies])
    return found


def _answer(worker: subprocess.Popen[str], key: str) -> Any:
    assert worker.stdout is not None
    line = worker.stdout.readline()
    if not line:
        raise SystemExit("a lookup client process exited")
    answer = json.loads(line)
    if "error" in answer:
        raise SystemExit(f"lookup client failed: {answer['error']}")
    return answer[key]


def _sample_keys(layout: Layout, count: int) -> tuple[int, ...]:
    with pg.connect(layout.pg_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT o_orderkey FROM "{layout.pg_schema}".orders '
                       f"ORDER BY hashint8(o_orderkey) LIMIT {count}")  # fmt: skip
        return tuple(int(row[0]) for row in cursor.fetchall())
