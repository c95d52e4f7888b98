"""Planning latency and point-lookup overhead, the figures of benchmarks/README.md "Planning and
point lookups".

    python -m benchmarks.latency planning --dir /tmp/tpch [--rounds 5]
    python -m benchmarks.latency lookups --dir /tmp/tpch --pg-dsn DSN [--pg-schema tpch] \\
        [--lookups 400] [--clients 1,4,16] [--seconds 10]

`planning` plans the 22 TPC-H queries in process: cold is a query's first prepare on a service
whose plan cache was emptied just before (connectors, catalog and imports warm: what a new
statement costs a running server), warm the same text again (a cache hit). Rounds interleave
the queries; per query the median over the rounds, then p50/p95 over the 22 queries, in wall
time and in the thread's CPU time (the machine's noise hits the first only). The process
collects garbage as `meshgate serve` does (`server.memory.collect_garbage_less_often`).

`lookups` starts `meshgate serve --config DIR` and looks up random existing customers by key
(`tpch.customer`, its primary key) three ways, each lookup of one way next to one of each other
way so that noise hits all alike: direct ADBC PostgreSQL (`WHERE c_custkey = $1`, the cursor
reused), meshgate over ADBC Flight SQL with the key in the text (a new text each time) and with
`?` (the cursor reused). Then `--clients` processes of literal lookups through meshgate for
`--seconds` each, for their qps.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLUMNS = "c_custkey, c_name, c_acctbal"


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def planning(directory: Path, rounds: int) -> None:
    from benchmarks.tpch import tpch_queries
    from meshgate.server.memory import collect_garbage_less_often
    from meshgate.service import QueryService

    service = QueryService.from_config(directory)
    admin = service.principal("admin")
    queries = tpch_queries()
    for sql in queries:  # imports, connections, source metadata
        service.prepare(sql, admin)
    collect_garbage_less_often()  # as `meshgate serve` does once the service is up
    cold: list[list[float]] = [[] for _ in queries]
    cold_cpu: list[list[float]] = [[] for _ in queries]
    warm: list[list[float]] = [[] for _ in queries]
    for _ in range(rounds):
        for number, sql in enumerate(queries):
            service.forget_plans()
            started, cpu = time.perf_counter(), time.thread_time()
            service.prepare(sql, admin)
            cold[number].append(time.perf_counter() - started)
            cold_cpu[number].append(time.thread_time() - cpu)
            started = time.perf_counter()
            service.prepare(sql, admin)
            warm[number].append(time.perf_counter() - started)
    service.close()
    for label, samples in (("cold", cold), ("cold CPU", cold_cpu), ("warm", warm)):
        medians = [statistics.median(s) * 1000 for s in samples]
        spread = statistics.median((max(s) - min(s)) * 1000 for s in samples)
        print(f"{label:9s} p50 {percentile(medians, 0.5):7.2f} ms  p95 "
              f"{percentile(medians, 0.95):7.2f} ms  max {max(medians):7.2f} ms  "
              f"(median spread over rounds {spread:.2f} ms)")  # fmt: skip
    per_query = "  ".join(f"Q{n + 1} {statistics.median(s) * 1000:.0f}"
                          for n, s in enumerate(cold_cpu))
    print(f"cold CPU per query, ms: {per_query}")


def _connect(way: str, uri: str, dsn: str) -> Any:
    import adbc_driver_flightsql.dbapi as flightsql
    import adbc_driver_postgresql.dbapi as pg

    if way == "pg":
        return pg.connect(dsn, autocommit=True)
    return flightsql.connect(uri, db_kwargs={"username": "admin", "password": "admin"},
                             autocommit=True)  # fmt: skip


def _lookup(cursor: Any, way: str, schema: str, key: int) -> None:
    if way == "pg":
        cursor.execute(f'SELECT {COLUMNS} FROM "{schema}".customer WHERE c_custkey = $1', (key,))
    elif way == "param":
        cursor.execute(f"SELECT {COLUMNS} FROM tpch.customer WHERE c_custkey = ?", (key,))
    else:
        cursor.execute(f"SELECT {COLUMNS} FROM tpch.customer WHERE c_custkey = {key}")
    table = cursor.fetch_arrow_table()
    if table.num_rows != 1 or table.column(0)[0].as_py() != key:
        raise SystemExit(f"{way}: the lookup of {key} returned {table.num_rows} rows")


def _client(task: tuple[str, str, int, float, Any]) -> list[float]:
    """One process of literal lookups through meshgate until `seconds` have passed."""
    uri, schema, seed, seconds, ready = task
    rng = random.Random(seed)
    latencies = []
    with _connect("literal", uri, "") as connection, connection.cursor() as cursor:
        _lookup(cursor, "literal", schema, rng.randint(1, 150_000))
        ready.wait(120)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            _lookup(cursor, "literal", schema, rng.randint(1, 150_000))
            latencies.append(time.perf_counter() - started)
    return latencies


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def lookups(directory: Path, dsn: str, schema: str, count: int, clients: Sequence[int],
            seconds: float) -> None:  # fmt: skip
    from benchmarks.served import meshgate_server

    ways = ("pg", "literal", "param")
    with meshgate_server(directory) as served:
        connections = {way: _connect(way, served.uri, dsn) for way in ways}
        cursors = {way: c.cursor() for way, c in connections.items()}
        rng = random.Random(7)
        latency: dict[str, list[float]] = {way: [] for way in ways}
        for number in range(count + 20):
            order = ways[number % 3:] + ways[: number % 3]
            for way in order:
                key = rng.randint(1, 150_000)
                started = time.perf_counter()
                _lookup(cursors[way], way, schema, key)
                if number >= 20:  # the first ones warm up connections and plans
                    latency[way].append(time.perf_counter() - started)
        for way in ways:
            cursors[way].close()
            connections[way].close()
        base = statistics.median(latency["pg"]) * 1000
        for way in ways:
            values = latency[way]
            p50 = statistics.median(values) * 1000
            print(f"{way:8s} p50 {p50:6.2f} ms  p95 {percentile(values, 0.95) * 1000:6.2f} ms"
                  f"  overhead over direct p50 {p50 - base:+6.2f} ms  ({len(values)} lookups)")
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            single = None
            for number in clients:
                ready = manager.Barrier(number)
                tasks = [(served.uri, schema, 1000 * number + i, seconds, ready)
                         for i in range(number)]  # fmt: skip
                cpu = _cpu_seconds(served.pid)
                with context.Pool(number) as pool:
                    results = pool.map(_client, tasks, chunksize=1)
                cpu = _cpu_seconds(served.pid) - cpu
                values = [v for result in results for v in result]
                qps = len(values) / seconds
                single = single or qps
                print(f"{number:2d} clients {qps:7.1f} qps ({qps / single:4.1f}x one client)  "
                      f"p50 {statistics.median(values) * 1000:6.2f} ms  p95 "
                      f"{percentile(values, 0.95) * 1000:6.2f} ms  p99 "
                      f"{percentile(values, 0.99) * 1000:6.2f} ms  server CPU "
                      f"{cpu / seconds:.2f} cores (incl. setup)")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency")
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("planning", help="cold and warm planning of TPC-H's 22 queries")
    plan.add_argument("--dir", type=Path, required=True)
    plan.add_argument("--rounds", type=int, default=5)
    look = commands.add_parser("lookups", help="point lookups: overhead and concurrency")
    look.add_argument("--dir", type=Path, required=True)
    look.add_argument("--pg-dsn", required=True)
    look.add_argument("--pg-schema", default="tpch")
    look.add_argument("--lookups", type=int, default=400)
    look.add_argument("--clients", default="1,4,16")
    look.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.command == "planning":
        planning(args.dir, args.rounds)
    else:
        clients = [int(c) for c in args.clients.split(",")]
        lookups(args.dir, args.pg_dsn, args.pg_schema, args.lookups, clients, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
