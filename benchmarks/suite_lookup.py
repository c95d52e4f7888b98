"""The suite's point lookups: orders by key from 1, 4 and 16 client processes.

Each client is a process (so the clients' GIL caps nothing) holding one connection, looking
up random existing order keys for a fixed time; every answer must be exactly one row. Four
ways: through meshgate with the key bound as a parameter (`?`) and with the literal key in the
text (a new text each time), and directly through ADBC PostgreSQL the same two ways (`$1`,
literal). Rounds interleave the ways, their order reversed every round; clients start together
(a barrier) after connecting and one lookup of warm-up.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg

from benchmarks.layouts import Layout
from benchmarks.served import meshgate_server
from benchmarks.tpch import DOMAIN

WAYS = ("meshgate_param", "pg_param", "meshgate_literal", "pg_literal")
COLUMNS = "o_orderkey, o_custkey, o_totalprice, o_orderdate"


@dataclass(frozen=True)
class LookupTask:
    way: str
    target: str  # meshgate URI or PostgreSQL DSN
    pg_schema: str
    keys: tuple[int, ...]
    seed: int
    ready: Any  # a multiprocessing.Manager().Barrier for every client of the run
    seconds: float


@dataclass
class LookupRun:
    way: str
    clients: int
    latencies: list[float] = field(default_factory=list)  # seconds, every client's
    seconds: float = 0.0

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.seconds


def run_lookups(layout: Layout, rounds: int, clients: Sequence[int],
                seconds: float) -> list[LookupRun]:  # fmt: skip
    """`rounds` rounds of every way at every client count; one LookupRun per round."""
    keys = _sample_keys(layout, 2000)
    runs: list[LookupRun] = []
    context = multiprocessing.get_context("spawn")
    with meshgate_server(layout.directory) as served, context.Pool(max(clients)) as pool, \
            context.Manager() as manager:  # fmt: skip
        targets = {"meshgate": served.uri, "pg": layout.pg_dsn}
        for round_number in range(rounds):
            for count in clients:
                ways = WAYS if round_number % 2 == 0 else tuple(reversed(WAYS))
                for way in ways:
                    target = targets[way.split("_")[0]]
                    seed = round_number * 100 + count
                    barrier = manager.Barrier(count)
                    run = _run_way(pool, way, target, layout.pg_schema, keys, count, seconds, seed,
                                   barrier)  # fmt: skip
                    runs.append(run)
                    print(f"lookup {way} x{count}: {run.qps:.1f} qps", flush=True)
    return runs


def _run_way(pool: Pool, way: str, target: str, pg_schema: str, keys: tuple[int, ...],
             count: int, seconds: float, seed: int, barrier: Any) -> LookupRun:  # fmt: skip
    tasks = [LookupTask(way, target, pg_schema, keys, seed * 1000 + i, barrier, seconds)
             for i in range(count)]  # fmt: skip
    results = pool.map(lookup_client, tasks, chunksize=1)
    run = LookupRun(way, count, seconds=seconds)
    for latencies in results:
        if not latencies:
            raise SystemExit(f"lookup {way} x{count}: a client made no lookup in {seconds} s")
        run.latencies.extend(latencies)
    return run


def lookup_client(task: LookupTask) -> list[float]:
    """One client: look up random keys from `start_at` for `seconds`; each answer one row."""
    rng = random.Random(task.seed)
    via_meshgate = task.way.startswith("meshgate")
    table = f"{DOMAIN}.orders" if via_meshgate else f'"{task.pg_schema}".orders'
    parameter = "?" if via_meshgate else "$1"
    bound = task.way.endswith("param")
    connection = (
        flightsql.connect(task.target, db_kwargs={"username": "admin", "password": "admin"},
                          autocommit=True)
        if via_meshgate else pg.connect(task.target, autocommit=True)
    )  # fmt: skip
    latencies = []
    try:
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
            task.ready.wait(120)
            end = time.monotonic() + task.seconds
            while time.monotonic() < end:
                started = time.perf_counter()
                lookup()
                latencies.append(time.perf_counter() - started)
    except Exception as error:
        raise RuntimeError(f"lookup client ({task.way}) failed: {error}") from None
    return latencies


def _sample_keys(layout: Layout, count: int) -> tuple[int, ...]:
    with pg.connect(layout.pg_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT o_orderkey FROM "{layout.pg_schema}".orders '
                       f"ORDER BY hashint8(o_orderkey) LIMIT {count}")  # fmt: skip
        return tuple(int(row[0]) for row in cursor.fetchall())
