"""Benchmarks with peers measured in the same run, reported as ratios.

  python -m benchmarks.run tpch --dir DIR --pg-dsn DSN [--queries 1,3,5] [--repeat 3]
      each TPC-H query through meshgate (its own `meshgate serve` process, ADBC Flight SQL
      client) and through DuckDB attached to the same PostgreSQL and Parquet files;
  python -m benchmarks.run transfer --dir DIR --pg-dsn DSN
      rows TPC-H Q3 moves out of PostgreSQL: meshgate vs the best hand-written pushdown vs
      what DuckDB's postgres scanner pulls (single-table filters only); then, per query reading
      PostgreSQL, meshgate's rows vs the minimal per-table pushdown's;
  python -m benchmarks.run suite --pg-dsn DSN [--sf 1] [--rounds 3] [--workloads ...] [--quick]
      sets up the data itself and runs every workload beside its peers: benchmarks/suite.py;
  python -m benchmarks.run residual --pg-dsn DSN [--sf 3] [--rounds 1] [--merge-memory-limit 1GB]
      the 22 queries with the residual on DuckDB and on Spark beside DuckDB, and each
      server's peak memory against its limit: benchmarks/residual.py;
  python -m benchmarks.run policy --dir DIR --pg-dsn DSN [--repeat 3]
      scans and joins over a filtered, masked tpch.customer as a restricted role vs as admin
      (its own `meshgate serve` process, ADBC client), and the rows that left PostgreSQL.

DIR is a mesh made by `python -m benchmarks.tpch setup`. Results are printed and written as
JSON under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import duckdb
import yaml

from benchmarks.served import meshgate_server
from benchmarks.tpch import DOMAIN, PG_SOURCE, TABLES, in_postgres, tpch_queries
from meshgate.execution.run import ExecutionReport
from meshgate.service import QueryService

RESULTS = Path(__file__).parent / "results"
POLICY_RATIO_LIMIT = 1.15  # issue 12: restricted within 1.15x of admin
# TPC-H Q3 with its substitution parameters, as the tpch extension ships it.
Q3_SEGMENT = "BUILDING"
Q3_DATE = "1995-03-15"


@dataclass(frozen=True)
class Timing:
    query: int
    meshgate_seconds: float
    duckdb_seconds: float

    @property
    def ratio(self) -> float:
        """meshgate time / DuckDB time: below 1 means meshgate was faster."""
        return self.meshgate_seconds / self.duckdb_seconds


@dataclass(frozen=True)
class Transfer:
    meshgate_rows: int
    hand_written_rows: int
    duckdb_scanner_rows: int

    @property
    def ratio(self) -> float:
        return self.meshgate_rows / max(self.hand_written_rows, 1)


# --- peers ----------------------------------------------------------------------------------
def postgres_extension() -> Path:
    """The postgres extension from its wheel, copied under the name DuckDB's loader expects."""
    import duckdb_extension_postgres

    root = Path(duckdb_extension_postgres.__file__).parent
    found = sorted(root.rglob("*.duckdb_extension"))
    if not found:
        raise SystemExit("duckdb-extension-postgres holds no extension for this DuckDB")
    target = Path(tempfile.gettempdir()) / f"duckdb-{duckdb.__version__}" / (
        "postgres_scanner.duckdb_extension"
    )
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(found[-1], target)
    return target


def duckdb_peer(
    directory: Path, pg_dsn: str, pg_schema: str = "tpch", all_postgres: bool = False
) -> duckdb.DuckDBPyConnection:
    """DuckDB attached to the same PostgreSQL, with the Parquet half as views: the peer."""
    connection = duckdb.connect()
    connection.execute(f"LOAD '{postgres_extension()}'")
    connection.execute(f"ATTACH '{_libpq(pg_dsn)}' AS pg (TYPE postgres, READ_ONLY)")
    connection.execute(f"CREATE SCHEMA {DOMAIN}")
    for table in TABLES:
        source = (
            f"pg.{pg_schema}.{table.name}"
            if in_postgres(table, all_postgres)
            else f"read_parquet('{directory / 'data' / f'{table.name}.parquet'}')"
        )
        connection.execute(f"CREATE VIEW {DOMAIN}.{table.name} AS SELECT * FROM {source}")
    return connection


def _libpq(dsn: str) -> str:
    """DuckDB's postgres extension takes URIs too; keep the DSN as the user gave it."""
    return dsn.replace("'", "''")


def _median_seconds(run: Callable[[], object], repeat: int) -> float:
    run()  # warm-up: caches, connections, plans of the peer alike
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


# --- suites ---------------------------------------------------------------------------------
def run_tpch(
    directory: Path, pg_dsn: str, queries: Sequence[int], repeat: int, pg_schema: str = "tpch"
) -> list[Timing]:
    texts = tpch_queries()
    peer = duckdb_peer(directory, pg_dsn, pg_schema)
    timings = []
    with meshgate_server(directory) as served, flightsql.connect(
        served.uri, db_kwargs={"username": "admin", "password": "admin"}
    ) as client:
        for number in queries:
            sql = texts[number - 1]

            def through_meshgate(sql: str = sql) -> object:
                with client.cursor() as cursor:
                    cursor.execute(sql)
                    return cursor.fetch_arrow_table()

            def through_duckdb(sql: str = sql) -> object:
                return peer.execute(sql).to_arrow_table()

            timing = Timing(number, _median_seconds(through_meshgate, repeat),
                            _median_seconds(through_duckdb, repeat))  # fmt: skip
            print(
                f"q{number:02d}  meshgate {timing.meshgate_seconds:8.3f}s  duckdb+postgres "
                f"{timing.duckdb_seconds:8.3f}s  ratio {timing.ratio:6.2f}",
                flush=True,
            )
            timings.append(timing)
    peer.close()
    return timings


def q3_hand_written(pg_schema: str = "tpch") -> str:
    """What an expert would send to PostgreSQL for Q3: the join, the filters, three columns."""
    return (
        f"SELECT o.o_orderkey, o.o_orderdate, o.o_shippriority "
        f"FROM {pg_schema}.customer c JOIN {pg_schema}.orders o ON c.c_custkey = o.o_custkey "
        f"WHERE c.c_mktsegment = '{Q3_SEGMENT}' AND o.o_orderdate < DATE '{Q3_DATE}'"
    )


def measure_q3_transfer(service: QueryService, pg_dsn: str, pg_schema: str = "tpch") -> Transfer:
    """Rows that leave PostgreSQL for Q3 under meshgate, by hand, and under DuckDB's scanner."""
    sql = tpch_queries()[2]
    report = ExecutionReport()
    prepared = service.prepare(sql, service.principal("admin"))
    service.execute(prepared, report=report).read_all()
    postgres_sources = {
        name for name, s in service.definition.sources.items() if s.kind == "postgres"
    }
    moved = sum(f.rows for f in report.fragments.values() if f.source in postgres_sources)
    with pg.connect(pg_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({q3_hand_written(pg_schema)}) AS best")
        best = int(cursor.fetchone()[0])
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {pg_schema}.customer "
            f"WHERE c_mktsegment = '{Q3_SEGMENT}') + (SELECT count(*) FROM {pg_schema}.orders "
            f"WHERE o_orderdate < DATE '{Q3_DATE}')"
        )
        scanner = int(cursor.fetchone()[0])
    return Transfer(moved, best, scanner)


@dataclass(frozen=True)
class QueryTransfer:
    query: int
    meshgate_rows: int
    minimal_rows: int  # the minimal per-table pushdown's (benchmarks/minimal_pushdown.py)

    @property
    def ratio(self) -> float:
        return self.meshgate_rows / max(self.minimal_rows, 1)


def postgres_rows(service: QueryService, sql: str) -> int:
    """Rows the PostgreSQL fragments of `sql` sent, run in process as admin."""
    report = ExecutionReport()
    service.execute(service.prepare(sql, service.principal("admin")), report=report).read_all()
    postgres_sources = {
        name for name, s in service.definition.sources.items() if s.kind == "postgres"
    }
    return sum(f.rows for f in report.fragments.values() if f.source in postgres_sources)


def measure_transfers(
    service: QueryService, directory: Path, pg_dsn: str, pg_schema: str = "tpch"
) -> list[QueryTransfer]:
    """Per TPC-H query reading PostgreSQL: meshgate's rows out of it vs the minimal pushdown's."""
    from benchmarks.minimal_pushdown import minimal_rows

    products = yaml.safe_load((directory / "products.yaml").read_text(encoding="utf-8"))
    in_pg = {p["name"] for p in products["products"] if p["table"]["source"] == PG_SOURCE}
    found = []
    for number, sql in enumerate(tpch_queries(), start=1):
        counted = minimal_rows(sql, in_pg, pg_dsn, pg_schema)
        if counted is not None:
            found.append(QueryTransfer(number, postgres_rows(service, sql), counted[0]))
    return found


# --- reporting ------------------------------------------------------------------------------
def chart(timings: Sequence[Timing], width: int = 40) -> str:
    """Bars of meshgate/DuckDB time per query; the `|` marks parity (ratio 1)."""
    if not timings:
        return ""
    top = max(2.0, *(t.ratio for t in timings))
    parity = round(width / top)
    lines = [f"ratio meshgate / duckdb+postgres (| = 1.0, full width = {top:.1f})"]
    for t in timings:
        bar = "#" * max(1, round(t.ratio / top * width))
        line = list(bar.ljust(width))
        if parity < width:
            line[parity] = "|" if line[parity] == " " else line[parity]
        lines.append(f"q{t.query:02d} {''.join(line)} {t.ratio:5.2f}")
    geo = statistics.geometric_mean([t.ratio for t in timings])
    lines.append(f"geometric mean ratio: {geo:.2f}")
    return "\n".join(lines)


def _write(name: str, payload: Any) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def _run_policy(directory: Path, pg_dsn: str, repeat: int, pg_schema: str) -> int:
    """Exit 1 when a ratio is above the limit or the customer rows exceed the filter."""
    from benchmarks import governance

    timings = governance.run_policy(directory, pg_dsn, repeat, pg_schema)
    print(governance.report(timings, POLICY_RATIO_LIMIT))
    path = _write("policy", governance.as_json(timings) | {"repeat": repeat})
    print(f"results: {path}")
    ok = all(t.ratio <= POLICY_RATIO_LIMIT and t.within_filter for t in timings)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["suite"]:  # every workload and peer in one run: benchmarks/suite.py
        from benchmarks.suite import main as suite

        return suite(arguments[1:])
    if arguments[:1] == ["residual"]:  # the residual on DuckDB and on Spark: benchmarks/residual.py
        from benchmarks.residual import main as residual

        return residual(arguments[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    tpch = commands.add_parser("tpch", help="TPC-H: meshgate vs DuckDB attached to PostgreSQL")
    transfer = commands.add_parser("transfer", help="rows TPC-H Q3 moves out of PostgreSQL")
    policy = commands.add_parser("policy", help="a filtered, masked product: restricted vs admin")
    for command in (tpch, transfer, policy):
        command.add_argument("--dir", type=Path, required=True, help="mesh from tpch setup")
        command.add_argument("--pg-dsn", required=True)
        command.add_argument("--pg-schema", default="tpch")
    tpch.add_argument("--queries", default=",".join(str(n) for n in range(1, 23)))
    for command in (tpch, policy):
        command.add_argument("--repeat", type=int, default=3)
    commands.add_parser("suite", help="every workload beside its peers: see `suite --help`")
    commands.add_parser("residual", help="the residual on DuckDB and on Spark, with memory: "
                        "see `residual --help`")
    args = parser.parse_args(arguments)
    if args.command == "policy":
        return _run_policy(args.dir, args.pg_dsn, args.repeat, args.pg_schema)
    if args.command == "tpch":
        queries = [int(n) for n in args.queries.split(",") if n]
        timings = run_tpch(args.dir, args.pg_dsn, queries, args.repeat, args.pg_schema)
        print(chart(timings))
        path = _write("tpch", [asdict(t) | {"ratio": t.ratio} for t in timings])
        print(f"results: {path}")
        return 0
    service = QueryService.from_config(args.dir)
    try:
        result = measure_q3_transfer(service, args.pg_dsn, args.pg_schema)
        print(
            f"TPC-H Q3 rows out of PostgreSQL: meshgate {result.meshgate_rows}, best "
            f"hand-written pushdown {result.hand_written_rows}, DuckDB postgres scanner "
            f"{result.duckdb_scanner_rows}; meshgate / hand-written = {result.ratio:.3f}",
            flush=True,
        )
        per_query = measure_transfers(service, args.dir, args.pg_dsn, args.pg_schema)
    finally:
        service.close()
    print("query  meshgate rows  minimal per-table pushdown  ratio")
    for q in per_query:
        print(f"q{q.query:02d}   {q.meshgate_rows:13,}  {q.minimal_rows:26,}  {q.ratio:5.2f}")
    path = _write("transfer", asdict(result) | {"ratio": result.ratio, "per_query": [
        asdict(q) | {"ratio": q.ratio} for q in per_query]})  # fmt: skip
    print(f"results: {path}")
    over = [q.query for q in per_query if q.ratio > 1.2]
    return 0 if result.ratio <= 1.2 and not over else 1


if __name__ == "__main__":
    sys.exit(main())
