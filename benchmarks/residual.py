"""The residual on Spark: 22 TPC-H queries with the merge on DuckDB and on Spark, beside DuckDB.

    python -m benchmarks.run residual --pg-dsn DSN [--sf 3] [--rounds 1] [--queries 1,9,18]
        [--merge-memory-limit 700MB] [--engines duckdb,spark] [--spark-remote sc://HOST:PORT]
        [--out DIR] [--pg-schema bench] [--data-dir benchmarks/data] [--quick]

Sets up the split layout at `--sf` (benchmarks/layouts.py; reused while its data is there) and
prints how long that took. Then two `meshgate serve` processes over it, each with
`server.limits.merge_memory_limit` set: one that knows only the DuckDB residual, one with
`server.residual.spark` configured whose client sets the session option `residual_engine`
to `spark`. Beside them DuckDB with the postgres extension on the same PostgreSQL and Parquet
(the peer) and DuckDB with every table local (the lower bound, and the reference every answer
is checked against, in every round). A warm-up (q06 once on each engine), then `--rounds`
rounds, the engines' order reversed every round. Each served query's peak RSS of its server
(VmHWM, reset before the query through /proc/PID/clear_refs) is recorded, and the memory
verdict asks: is there a query the DuckDB residual could not answer within the limit (refused
for memory, or its server's RSS past the limit in every round) while the Spark residual's
server stayed under it in every round?

Without `--spark-remote`, a local Spark cluster is started with benchmarks/spark_cluster.py
and stopped at the end. Writes results.json and results.md under `--out` (default
benchmarks/results/residual-<UTC timestamp>/). Exits 1 on a wrong answer or an error other
than a refusal for memory; a missed memory verdict is reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import yaml

from benchmarks import residual_report
from benchmarks.layouts import MARKER, Layout, ensure_layout
from benchmarks.served import ServedMeshgate, meshgate_server
from benchmarks.suite import machine, versions
from benchmarks.suite_scan import _reset_peak, proc_status_kib
from benchmarks.suite_tpch import difference
from benchmarks.tpch import FILES_SOURCE, tpch_queries

HERE = Path(__file__).parent
RESIDUALS = ("duckdb", "spark")  # the residual engines, each behind its own served process
PEERS = ("duckdb_pg", "duckdb_local")
SESSION_OPTION = "residual_engine"
WARM_UP_QUERY = 6  # one scan of lineitem, no join: the cheapest query at every scale
SESSION_OPTION_KEY = f"adbc.flight.sql.session.option.{SESSION_OPTION}"


@dataclass
class ServedPass:
    """One served run of a query: its server's RSS before and peak during it, its refusal."""

    rss_before_kib: int
    peak_rss_kib: int = 0
    refused: str = ""  # the client's error when the query was not answered


@dataclass
class QueryRun:
    number: int
    rows: int = 0  # the reference's
    seconds: dict[str, list[float]] = field(default_factory=dict)  # per engine, answered rounds
    passes: dict[str, list[ServedPass]] = field(default_factory=dict)  # per residual, all
    wrong: dict[str, str] = field(default_factory=dict)  # engine -> why its answer differs


def engine_names(residuals: Sequence[str]) -> tuple[str, ...]:
    """`meshgate_<residual>` for each residual, then the DuckDB peers."""
    return (*(f"meshgate_{r}" for r in residuals), *PEERS)


def served_config(layout: Layout, target: Path, residual: str, memory_limit: str,
                  spark: dict[str, Any] | None) -> Path:  # fmt: skip
    """The layout's mesh, products and users under `target`, with this run's server section.

    The files source points at the layout's own Parquet (absolute), so nothing is copied.
    The DuckDB server has no `server.residual` section: DuckDB is then its only residual.
    """
    target.mkdir(parents=True, exist_ok=True)
    mesh = yaml.safe_load((layout.directory / "mesh.yaml").read_text(encoding="utf-8"))
    for source in mesh["sources"]:
        if source["name"] == FILES_SOURCE:
            source["options"]["path"] = str(layout.directory / "data")
    server: dict[str, Any] = {
        "limits": {"merge_memory_limit": memory_limit},
        "state_directory": str(target / "state"),
        "reload_poll_seconds": None,
        "query_timeout_seconds": 1800,
    }
    if residual == "spark":
        assert spark is not None
        server["residual"] = {"default": "auto", "spark": spark}
    mesh["server"] = server
    (target / "mesh.yaml").write_text(yaml.safe_dump(mesh, sort_keys=False), encoding="utf-8")
    for name in ("products.yaml", "access.yaml"):
        shutil.copy(layout.directory / name, target / name)
    return target


@dataclass
class Served:
    """One residual's server and an ADBC connection to it, with the session option set."""

    residual: str
    server: ServedMeshgate
    connection: Any

    def query(self, sql: str) -> pa.Table:
        with self.connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetch_arrow_table()


@contextmanager
def serving(directory: Path, residual: str) -> Iterator[Served]:
    # The DuckDB server knows no other residual; the Spark one is asked for Spark per session.
    options = {} if residual == "duckdb" else {SESSION_OPTION_KEY: residual}
    with meshgate_server(directory) as server, flightsql.connect(
        server.uri, db_kwargs={"username": "admin", "password": "admin"},
        conn_kwargs=options, autocommit=True,
    ) as connection:  # fmt: skip
        yield Served(residual, server, connection)


def run_queries(layout: Layout, residuals: dict[str, Path], rounds: int, queries: Sequence[int],
                done: Callable[[list[QueryRun]], None]) -> list[QueryRun]:  # fmt: skip
    """Every query on every engine in `rounds` rounds, every answer checked against local's;
    `done` gets the queries run so far after each one (a long run's partial results).

    The warm-up is one run of the cheapest query (q06) on each engine, not a whole pass: at
    SF 3 a pass of the 22 queries on four engines takes many minutes on two shared cores.
    """
    texts = tpch_queries()
    names = engine_names(tuple(residuals))
    runs = {n: QueryRun(n, seconds={e: [] for e in names}, passes={r: [] for r in residuals})
            for n in queries}  # fmt: skip
    print(f"residual: loading the local DuckDB (SF {layout.directory.name})", flush=True)
    started = time.monotonic()
    local, peer = layout.local(), layout.peer()
    print(f"residual: local DuckDB loaded in {time.monotonic() - started:.0f} s", flush=True)
    try:
        with ExitStack() as stack:
            served = {r: stack.enter_context(serving(d, r)) for r, d in residuals.items()}
            engines: dict[str, Callable[[str], pa.Table]] = {
                "duckdb_pg": lambda sql: peer.execute(sql).to_arrow_table(),
                "duckdb_local": lambda sql: local.execute(sql).to_arrow_table(),
                **{f"meshgate_{r}": s.query for r, s in served.items()},
            }
            for engine in names:
                engines[engine](texts[WARM_UP_QUERY - 1])
            print("residual: warm-up done", flush=True)
            for round_number in range(1, rounds + 1):
                order = names if round_number % 2 else tuple(reversed(names))
                for number in queries:
                    sql, run = texts[number - 1], runs[number]
                    answers: dict[str, pa.Table] = {}
                    for engine in order:
                        began = time.perf_counter()
                        if engine in PEERS:
                            answers[engine] = engines[engine](sql)
                        else:
                            answer = _served_query(served[engine.removeprefix("meshgate_")],
                                                   sql, run)  # fmt: skip
                            if answer is not None:
                                answers[engine] = answer
                        if engine in answers:
                            run.seconds[engine].append(time.perf_counter() - began)
                    _check(sql, run, answers, round_number)
                    done([runs[n] for n in queries if runs[n].passes and any(
                        runs[n].passes.values())])
                print(f"residual: round {round_number} done", flush=True)
    finally:
        local.close()
        peer.close()
    return [runs[n] for n in queries]


def _served_query(served: Served, sql: str, run: QueryRun) -> pa.Table | None:
    """The served answer, with its server's RSS before and peak during it; None if refused."""
    pid = served.server.pid
    _reset_peak(pid)
    measured = ServedPass(proc_status_kib(pid, "VmRSS"))
    try:
        answer: pa.Table | None = served.query(sql)
    except Exception as exc:  # the client's error, as a user sees it: recorded, judged later
        measured.refused = _first_line(exc)
        answer = None
    measured.peak_rss_kib = proc_status_kib(pid, "VmHWM")
    run.passes[served.residual].append(measured)
    return answer


def _check(sql: str, run: QueryRun, answers: dict[str, pa.Table], round_number: int) -> None:
    """Record (the first) wrong answer per engine, and print this round's verdicts."""
    reference = answers["duckdb_local"]
    run.rows = reference.num_rows
    for engine, answer in answers.items():
        if engine != "duckdb_local" and engine not in run.wrong:
            why = difference(sql, answer, reference)
            if why:
                run.wrong[engine] = why
    verdicts = [f"{e} {'WRONG: ' + run.wrong[e] if e in run.wrong else 'correct'}"
                for e in answers if e != "duckdb_local"]  # fmt: skip
    verdicts += [f"meshgate_{r} REFUSED: {p[-1].refused}" for r, p in run.passes.items()
                 if p and p[-1].refused]  # fmt: skip
    print(f"round {round_number} q{run.number:02d} " + "; ".join(verdicts), flush=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__


@contextmanager
def spark_cluster(remote: str | None, staging: Path | None,
                  directory: Path) -> Iterator[tuple[str, Path]]:  # fmt: skip
    """`remote` and `staging`, or a local cluster's, started under `directory` for this run
    (2 workers of 1.5 GB, 1 GB executors: a shared 2-core machine) and stopped afterwards."""
    if remote is not None:
        yield remote, staging if staging is not None else directory / "staging"
        return
    from benchmarks import spark_cluster as local

    print("residual: starting a local Spark cluster (2 workers)", flush=True)
    cluster = local.start(directory, workers=2, worker_memory="1536m", executor_memory="1g",
                          driver_memory="1g")  # fmt: skip
    try:
        yield cluster.remote, cluster.staging_directory
    finally:
        local.stop(directory)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run residual",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-dsn", required=True, help="PostgreSQL to load into and read")
    parser.add_argument("--sf", type=float, help="TPC-H scale factor (default 3; quick 0.01)")
    parser.add_argument("--rounds", type=int, help="measured rounds (default 1)")
    parser.add_argument("--queries", default=",".join(str(n) for n in range(1, 23)),
                        help="comma list of TPC-H query numbers (default all 22)")
    parser.add_argument("--engines", default=",".join(RESIDUALS),
                        help=f"residual engines, comma list of {','.join(RESIDUALS)} "
                        "(default both)")
    parser.add_argument("--merge-memory-limit", default="700MB",
                        help="server.limits.merge_memory_limit of both servers (default 700MB: "
                        "where SF 3 shows the point, benchmarks/README.md)")
    parser.add_argument("--spark-remote", help="Spark Connect URL, sc://HOST:PORT (default: "
                        "start a local cluster with benchmarks/spark_cluster.py for this run)")
    parser.add_argument("--spark-staging-directory", type=Path,
                        help="with --spark-remote: a directory meshgate and the Spark workers "
                        "see at the same path (default <out>/spark/staging)")
    parser.add_argument("--spark-min-input-rows", type=int, default=0,
                        help="server.residual.spark.min_input_rows (default 0; the session "
                        "option asks for Spark anyway)")
    parser.add_argument("--quick", action="store_true", help="SF 0.01, 1 round")
    parser.add_argument("--out", type=Path, help="default benchmarks/results/residual-<time>/")
    parser.add_argument("--pg-schema", default="bench",
                        help="schema prefix, must start with bench (default bench)")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data",
                        help="where the layout's config and Parquet live (default "
                        "benchmarks/data); reused while its data is there")
    args = parser.parse_args(argv)
    residuals = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(residuals) - set(RESIDUALS))
    if unknown or not residuals:
        parser.error(f"--engines: choose from {', '.join(RESIDUALS)}")
    queries = [int(n) for n in args.queries.split(",") if n]
    if not queries or not all(1 <= n <= 22 for n in queries):
        parser.error("--queries: TPC-H query numbers from 1 to 22")
    sf = args.sf if args.sf is not None else (0.01 if args.quick else 3.0)
    rounds = args.rounds if args.rounds is not None else 1
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = (args.out or HERE / "results" / f"residual-{stamp}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(), "versions": versions(),
        "options": {"sf": sf, "rounds": rounds, "queries": queries, "engines": residuals,
                    "merge_memory_limit": args.merge_memory_limit,
                    "spark_min_input_rows": args.spark_min_input_rows,
                    "pg_schema": args.pg_schema, "quick": args.quick},
    }  # fmt: skip
    marker_before = _marker_time(args.data_dir, sf)
    began = time.monotonic()
    layout = ensure_layout("split", sf, args.pg_dsn, args.pg_schema, args.data_dir)
    setup = time.monotonic() - began
    reused = marker_before is not None and marker_before == _marker_time(args.data_dir, sf)
    results["setup"] = {"seconds": round(setup, 1), "reused": reused,
                        "directory": str(layout.directory), "pg_schema": layout.pg_schema}
    print(f"setup: SF {sf:g} split layout {'reused' if reused else 'set up'} in "
          f"{setup:.1f} s", flush=True)  # fmt: skip
    with ExitStack() as stack:
        directories = {}
        for residual in residuals:
            spark = None
            if residual == "spark":
                remote, staging = stack.enter_context(spark_cluster(
                    args.spark_remote, args.spark_staging_directory, out / "spark"))
                results["options"]["spark_remote"] = remote
                spark = {"remote": remote, "staging_directory": str(staging),
                         "min_input_rows": args.spark_min_input_rows}  # fmt: skip
            directories[residual] = served_config(layout, out / f"config-{residual}", residual,
                                                  args.merge_memory_limit, spark)  # fmt: skip

        def write(runs: list[QueryRun], finished: str = "") -> None:
            results["queries"] = [asdict(r) for r in runs]
            results["finished"] = finished or "(running)"
            (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
            (out / "results.md").write_text(residual_report.markdown(results))

        runs = run_queries(layout, directories, rounds, queries, write)
    write(runs, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    print(residual_report.table(results))
    print("\n".join(residual_report.verdicts(results)))
    print(f"results: {out}/results.json, results.md")
    failed = residual_report.failures(results)
    if failed:
        print(f"FAILED: {'; '.join(failed)}")
        return 1
    return 0


def _marker_time(root: Path, sf: float) -> float | None:
    """When the split layout's marker was written (None: there is none): unchanged = reused."""
    marker = root / f"split-sf{f'{sf:g}'.replace('.', '_')}" / MARKER
    return marker.stat().st_mtime if marker.is_file() else None


if __name__ == "__main__":
    raise SystemExit(main())
