"""One command for every benchmark: data set up, workloads run beside their peers, one report.

    python -m benchmarks.run suite --pg-dsn DSN [--sf 1] [--rounds 3] [--workloads tpch,scan]
        [--quick] [--out DIR] [--pg-schema bench] [--data-dir benchmarks/data]
        [--lookup-seconds 5] [--scan-layout split]

Workloads: tpch (split layout), tpch_pg (all-PostgreSQL layout), scan, lookup, planning,
masked. Writes results.json (machine, versions, options, every raw timing), results.md and
chart.png under --out, and prints the issue's targets with PASS/FAIL. Exits 1 only on a wrong
TPC-H answer (or an error); a missed target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import suite_report
from benchmarks.layouts import Layout, ensure_layout

WORKLOADS = ("tpch", "tpch_pg", "scan", "lookup", "planning", "masked")
HERE = Path(__file__).parent
MACHINE_NOTE = os.environ.get("MESHGATE_BENCH_MACHINE_NOTE", "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run suite",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pg-dsn", required=True, help="PostgreSQL to load into and read")
    parser.add_argument("--sf", type=float, help="TPC-H scale factor (default 1; quick 0.1)")
    parser.add_argument("--rounds", type=int, help="measured rounds (default 3; quick 1)")
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma list of {','.join(WORKLOADS)} (default all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="SF 0.1, 1 round, lookups at 1 and 16 clients for 1.5 s",
    )
    parser.add_argument("--out", type=Path, help="default benchmarks/results/<timestamp>/")
    parser.add_argument(
        "--pg-schema",
        default="bench",
        help="schema prefix, must start with bench (default bench): <prefix>_<layout>_sf<sf>",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=HERE / "data",
        help="where the layouts' configs and Parquet live (default "
        "benchmarks/data); reused while their data is there",
    )
    parser.add_argument(
        "--lookup-seconds", type=float, help="seconds per lookup measurement (default 5; quick 1.5)"
    )
    parser.add_argument(
        "--scan-layout",
        choices=("split", "all_pg"),
        default="split",
        help="layout whose largest PostgreSQL table the scan reads",
    )
    args = parser.parse_args(argv)
    chosen = [w for w in args.workloads.split(",") if w]
    unknown = sorted(set(chosen) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    sf = args.sf if args.sf is not None else (0.1 if args.quick else 1.0)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = args.out or HERE / "results" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": started, "machine": machine(), "versions": versions(),
        "options": {"sf": sf, "rounds": rounds, "workloads": chosen, "quick": args.quick,
                    "pg_schema": args.pg_schema, "scan_layout": args.scan_layout},
    }  # fmt: skip
    layouts: dict[str, Layout] = {}

    def layout(name: str) -> Layout:
        if name not in layouts:
            layouts[name] = ensure_layout(name, sf, args.pg_dsn, args.pg_schema, args.data_dir)
        return layouts[name]

    wrong = run_workloads(chosen, rounds, args, layout, results)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "results.md").write_text(suite_report.markdown(results))
    suite_report.chart(results, out / "chart.png")
    print("\n".join(suite_report.targets(results)))
    print(f"results: {out}/results.json, results.md, chart.png")
    if wrong:
        print(f"WRONG answers: {', '.join(wrong)}")
        return 1
    return 0


def run_workloads(chosen: list[str], rounds: int, args: argparse.Namespace,
                  layout: Any, results: dict[str, Any]) -> list[str]:  # fmt: skip
    """Run each chosen workload into `results`; the TPC-H queries answered wrong."""
    wrong = []
    elapsed = results.setdefault("elapsed_seconds", {})
    clock = time.monotonic()

    def lap(workload: str) -> None:
        nonlocal clock
        elapsed[workload] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()

    for workload, name in (("tpch", "split"), ("tpch_pg", "all_pg")):
        if workload in chosen:
            from benchmarks.suite_tpch import run_layout

            runs = run_layout(layout(name), rounds, list(range(1, 23)))
            lap(workload)
            results.setdefault("tpch", {})[name] = [asdict(r) for r in runs]
            wrong += [f"{workload} q{r.number:02d}" for r in runs if r.wrong]
    if "scan" in chosen:
        from benchmarks.suite_scan import run_scan

        scan = run_scan(layout(args.scan_layout), rounds)
        results["scan"] = asdict(scan) | {"layout": args.scan_layout}
        lap("scan")
    if "lookup" in chosen:
        from benchmarks.suite_lookup import run_lookups

        clients, seconds = ((1, 16), 1.5) if args.quick else ((1, 4, 16), 5.0)
        seconds = args.lookup_seconds or seconds
        lookups = run_lookups(layout("split"), rounds, clients, seconds)
        results["lookup"] = [asdict(r) for r in lookups]
        lap("lookup")
    if "planning" in chosen:
        from benchmarks.suite_planning import run_planning

        results["planning"] = [asdict(r) for r in run_planning(layout("split"), rounds)]
        lap("planning")
    if "masked" in chosen:
        from benchmarks import governance

        split = layout("split")
        timings = governance.run_policy(split.directory, split.pg_dsn, rounds, split.pg_schema)
        print(governance.report(timings, suite_report.MASKED_MAX))
        results["masked"] = governance.as_json(timings)
        lap("masked")
    return wrong


def machine() -> dict[str, Any]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cpus": os.cpu_count(), "memory_gib": pages / 2**30, "platform": platform.platform(),
            "python": platform.python_version(), "load_average": os.getloadavg(),
            "note": MACHINE_NOTE}  # fmt: skip


def versions() -> dict[str, str]:
    found = {}
    for package in (
        "meshgate",
        "duckdb",
        "duckdb-extension-postgres",
        "pyarrow",
        "sqlglot",
        "adbc-driver-flightsql",
        "adbc-driver-postgresql",
        "psycopg",
        "connectorx",
    ):
        try:
            found[package] = version(package)
        except Exception:
            found[package] = "not installed"
    return found
