"""One client process of the suite's lookups: `python -m benchmarks.lookup_client`.

It imports only the two ADBC drivers (sixteen of these start on a two-core machine) and talks
JSON lines on stdin/stdout, one task after another: it reads a task, connects, looks up one key
(warm-up), answers `{"ready": true}`, waits for the line `go`, looks up random keys for the
task's seconds and answers `{"latencies": [...]}` (or `{"error": "..."}`). EOF ends it.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from typing import IO, Any

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg

DOMAIN = "tpch"  # benchmarks.tpch.DOMAIN, not imported: that module pulls in sqlglot and yaml
COLUMNS = "o_orderkey, o_custkey, o_totalprice, o_orderdate"


@dataclass(frozen=True)
class LookupTask:
    way: str  # meshgate_, pg_ or bare_ (benchmarks/bare_lookup.py), then param or literal
    target: str  # meshgate's or the bare server's URI, or the PostgreSQL DSN
    pg_schema: str
    keys: tuple[int, ...]
    seed: int
    seconds: float

    def line(self) -> str:
        return json.dumps(asdict(self)) + "\n"


def run_task(task: LookupTask, go: IO[str], answer: IO[str]) -> list[float]:
    """Warm up, say ready, wait for `go`, then look up for `task.seconds`; each answer one row."""
    rng = random.Random(task.seed)
    via_flight = not task.way.startswith("pg")  # meshgate or the bare Flight server
    table = f"{DOMAIN}.orders" if via_flight else f'"{task.pg_schema}".orders'
    parameter = "?" if via_flight else "$1"
    bound = task.way.endswith("param")
    connection: Any
    if task.way.startswith("meshgate"):
        connection = flightsql.connect(task.target, autocommit=True,
                                       db_kwargs={"username": "admin", "password": "admin"})
    elif via_flight:  # benchmarks/bare_lookup.py: no sign-in
        connection = flightsql.connect(task.target, autocommit=True)
    else:
        connection = pg.connect(task.target, autocommit=True)
    latencies = []
    with connection, connection.cursor() as cursor:

        def lookup() -> None:
            key = rng.choice(task.keys)
            if bound:
                cursor.execute(f"SELECT {COLUMNS} FROM {table} WHERE o_orderkey = {parameter}",
                               (key,))  # fmt: skip
            else:
                cursor.execute(f"SELECT {COLUMNS} FROM {table} WHERE o_orderkey = {key}")
            got = cursor.fetch_arrow_table()
            if got.num_rows != 1 or got.column("o_orderkey")[0].as_py() != key:
                raise RuntimeError(f"{task.way}: lookup of {key} returned {got.num_rows} rows")

        lookup()  # warm-up: connection, first plan
        answer.write('{"ready": true}\n')
        answer.flush()
        if go.readline().strip() != "go":
            raise RuntimeError("expected `go`")
        end = time.monotonic() + task.seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            lookup()
            latencies.append(time.perf_counter() - started)
    return latencies


def main() -> int:
    for line in sys.stdin:
        fields = json.loads(line)
        task = LookupTask(**fields | {"keys": tuple(fields["keys"])})
        try:
            result: dict[str, Any] = {"latencies": run_task(task, sys.stdin, sys.stdout)}
        except Exception as error:  # the parent reports it and stops the run
            result = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
