"""Star joins written as comma joins over many products: meshgate against DuckDB+postgres.

    python -m benchmarks.star_join --dir /work/main/benchmarks/data/split-sf1 \\
        --pg-dsn postgresql://postgres@127.0.0.1:5432/postgres --pg-schema bench_split_sf1

Each engine runs in a process of its own (so its peak RSS is its own), the query once to warm
up and then `--repeat` times; printed: median seconds, the process's peak RSS (VmHWM) and, for
meshgate, the rows its PostgreSQL fragments sent. The queries are the ones
tests/tpch/test_star_join.py asserts a bound of rows moved on.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Six products, comma-joined; the selective sides are one nation and one part type.
STAR = """
SELECT n.n_name, s.s_name, SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue
FROM tpch.lineitem l, tpch.orders o, tpch.customer c, tpch.nation n, tpch.supplier s,
     tpch.part p
WHERE l.l_orderkey = o.o_orderkey AND o.o_custkey = c.c_custkey
  AND c.c_nationkey = n.n_nationkey AND l.l_suppkey = s.s_suppkey
  AND l.l_partkey = p.p_partkey AND s.s_nationkey = n.n_nationkey
  AND n.n_name = 'GERMANY' AND p.p_type LIKE '%BRASS'
  AND o.o_orderdate >= DATE '1995-01-01'
GROUP BY n.n_name, s.s_name
ORDER BY revenue DESC, s.s_name
"""

# Product-heavy: all eight products, every dimension a comma join, filters only on the
# smallest tables (region, part): everything else is reached through keys.
PRODUCT_HEAVY = """
SELECT r.r_name, COUNT(*) AS lines, SUM(ps.ps_supplycost * l.l_quantity) AS cost
FROM tpch.lineitem l, tpch.orders o, tpch.customer c, tpch.nation n, tpch.region r,
     tpch.supplier s, tpch.part p, tpch.partsupp ps
WHERE l.l_orderkey = o.o_orderkey AND o.o_custkey = c.c_custkey
  AND c.c_nationkey = n.n_nationkey AND n.n_regionkey = r.r_regionkey
  AND l.l_suppkey = s.s_suppkey AND l.l_partkey = p.p_partkey
  AND ps.ps_partkey = l.l_partkey AND ps.ps_suppkey = l.l_suppkey
  AND r.r_name = 'ASIA' AND p.p_size <= 10 AND p.p_container LIKE 'SM%'
GROUP BY r.r_name
ORDER BY r.r_name
"""

QUERIES = {"star": STAR, "product_heavy": PRODUCT_HEAVY}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_one(
    engine: str, name: str, directory: Path, dsn: str, schema: str, repeat: int
) -> dict[str, Any]:
    """Time `name` on `engine` in this process."""
    sql = QUERIES[name]
    moved: int | None = None
    if engine == "meshgate":
        from benchmarks.run import postgres_rows
        from meshgate.service import QueryService

        service = QueryService.from_config(directory)
        principal = service.principal("admin")

        def run() -> None:
            service.query(sql, principal)

        moved = postgres_rows(service, sql)
    else:
        from benchmarks.layouts import Layout

        peer = Layout("split", directory, dsn, schema).peer()

        def run() -> None:
            peer.execute(sql).fetch_arrow_table()

    run()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return {"engine": engine, "query": name, "seconds": seconds,
            "peak_rss_mib": _peak_rss_mib(), "postgres_rows": moved}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="split layout from the suite")
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--pg-schema", default="bench_split_sf1")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "QUERY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        engine, name = args.one
        result = _run_one(engine, name, args.dir, args.pg_dsn, args.pg_schema, args.repeat)
        print(json.dumps(result))
        return 0
    print("| query | engine | seconds median (min-max) | peak RSS MiB | rows out of PG |")
    print("|---|---|---|---|---|")
    for name in QUERIES:
        for engine in ("meshgate", "duckdb_pg"):
            command = [sys.executable, "-m", "benchmarks.star_join", "--dir", str(args.dir),
                       "--pg-dsn", args.pg_dsn, "--pg-schema", args.pg_schema,
                       "--repeat", str(args.repeat), "--one", engine, name]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            s = result["seconds"]
            rows = "" if result["postgres_rows"] is None else f"{result['postgres_rows']:,}"
            print(f"| {name} | {engine} | {statistics.median(s):.3f} ({min(s):.3f}-{max(s):.3f}) "
                  f"| {result['peak_rss_mib']:.0f} | {rows} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
