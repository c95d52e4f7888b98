"""The suite's TPC-H workload: 22 queries through meshgate and two DuckDB peers, interleaved.

Per layout one `meshgate serve` process (ADBC Flight SQL client), DuckDB attached to the same
PostgreSQL and Parquet files (the peer to beat) and DuckDB with every table local (the lower
bound, and the reference answer). A warm-up pass runs each query once on each engine and checks
meshgate's answer against the local DuckDB's (Arrow types, values, order where the query
orders); then `rounds` rounds, each engine once per query, the engines' order reversed every
round. The rows meshgate's PostgreSQL fragments sent come from the server's audit lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import sqlglot

from benchmarks.layouts import Layout
from benchmarks.minimal_pushdown import minimal_rows
from benchmarks.served import meshgate_server
from benchmarks.tpch import PG_SOURCE, tpch_queries

ENGINES = ("meshgate", "duckdb_pg", "duckdb_local")


@dataclass
class QueryRun:
    number: int
    seconds: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ENGINES})
    wrong: str = ""  # why meshgate's answer differs from the reference; empty when right
    rows: int = 0
    postgres_rows: int = 0  # rows meshgate's PostgreSQL fragments sent (audit)
    minimal_rows: int | None = None  # the minimal per-table pushdown's (None: reads no PG)


def run_layout(layout: Layout, rounds: int, queries: list[int]) -> list[QueryRun]:
    """Every query of `queries` on the three engines; correctness from the warm-up pass."""
    texts = tpch_queries()
    postgres_tables = {t.name for t in layout.postgres_tables}
    runs = {n: QueryRun(n) for n in queries}
    for number in queries:
        counted = minimal_rows(texts[number - 1], postgres_tables, layout.pg_dsn, layout.pg_schema)
        runs[number].minimal_rows = None if counted is None else counted[0]
    print(f"{layout.name}: loading the local DuckDB", flush=True)
    local, peer = layout.local(), layout.peer()
    try:
        with (
            meshgate_server(layout.directory) as served,
            flightsql.connect(
                served.uri, db_kwargs={"username": "admin", "password": "admin"}, autocommit=True
            ) as client,
        ):

            def meshgate(sql: str) -> pa.Table:
                with client.cursor() as cursor:
                    cursor.execute(sql)
                    return cursor.fetch_arrow_table()

            engines: dict[str, Callable[[str], pa.Table]] = {
                "meshgate": meshgate,
                "duckdb_pg": lambda sql: peer.execute(sql).to_arrow_table(),
                "duckdb_local": lambda sql: local.execute(sql).to_arrow_table(),
            }
            for round_number in range(rounds + 1):
                order = ENGINES if round_number % 2 == 0 else tuple(reversed(ENGINES))
                for number in queries:
                    sql, run = texts[number - 1], runs[number]
                    answers = {}
                    for engine in order:
                        logged = len(served.audit)
                        started = time.perf_counter()
                        answers[engine] = engines[engine](sql)
                        seconds = time.perf_counter() - started
                        if engine == "meshgate" and round_number == 0:
                            record = served.audit.record_after(logged, "admin")
                            run.postgres_rows = sum(int(f["rows"]) for f in record["sources"]
                                                    if f["source"] == PG_SOURCE)  # fmt: skip
                        if round_number > 0:
                            run.seconds[engine].append(seconds)
                    if round_number == 0:
                        run.rows = answers["meshgate"].num_rows
                        run.wrong = difference(sql, answers["meshgate"], answers["duckdb_local"])
                        print(f"{layout.name} q{number:02d} "
                              f"{'WRONG: ' + run.wrong if run.wrong else 'correct'}",
                              flush=True)  # fmt: skip
                step = f"round {round_number}" if round_number else "warm-up"
                print(f"{layout.name}: {step} done", flush=True)
    finally:
        local.close()
        peer.close()
    return [runs[n] for n in queries]


def difference(sql: str, got: pa.Table, want: pa.Table) -> str:
    """Why `got` is not the reference answer `want` (empty: it is), as test_differential asks."""
    if got.schema.types != want.schema.types:
        return f"types {got.schema.types} != {want.schema.types}"
    if got.column_names != want.column_names:
        return f"columns {got.column_names} != {want.column_names}"
    if got.num_rows != want.num_rows:
        return f"{got.num_rows} rows, expected {want.num_rows}"
    got_rows, want_rows = _rows(got), _rows(want)
    if sqlglot.parse_one(sql, read="duckdb").args.get("order") is None:
        got_rows, want_rows = sorted(got_rows, key=repr), sorted(want_rows, key=repr)
    for index, (a, b) in enumerate(zip(got_rows, want_rows, strict=True)):
        if a != b:
            return f"row {index}: {a!r} != {b!r}"
    return ""


def _normal(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(_normal(v) for v in row.values()) for row in table.to_pylist()]
