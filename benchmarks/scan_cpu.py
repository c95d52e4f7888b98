"""Where a full scan's CPU goes: meshgate servers of several code trees beside DuckDB's reader.

  python -m benchmarks.scan_cpu --dir DIR --pg-schema SCHEMA --rounds 3 \\
      --server main=/work/main --server mine=. [--server 'p2=.:{"partitions": 2}']

On a shared 2-core machine a scan's seconds mostly say who got the cores; its CPU seconds
say what it cost. Each round scans `orders` once per contender, the order reversed every
round: every `--server` (NAME=TREE[:JSON source options]) is a `meshgate serve` importing the
code of TREE (its src/ and connectors/) read by an ADBC Flight SQL client, and DuckDB's
postgres extension exports the same table to Arrow. Printed per contender: median seconds, the
rows/s ratio to DuckDB, and the median CPU seconds of the served process, of this client
process, and of the PostgreSQL backends that served the scan (found by `application_name`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import psycopg
import yaml

from benchmarks.run import duckdb_peer
from benchmarks.scan import mesh_with_partitions
from benchmarks.served import meshgate_server
from benchmarks.suite_scan import proc_cpu_seconds
from benchmarks.tpch import DOMAIN


@dataclass
class Contender:
    name: str
    scan: Callable[[], int]
    application: str  # the application_name its PostgreSQL connections carry
    pid: int | None = None  # a meshgate server's
    seconds: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    backends: list[float] = field(default_factory=list)


def _cpu(pid: int) -> float:
    try:
        return proc_cpu_seconds(pid)
    except FileNotFoundError:  # a backend that ended
        return 0.0


def _backends(dsn: str, application: str) -> dict[int, float]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchall()
    return {int(row[0]): _cpu(int(row[0])) for row in rows}


def _named(dsn: str, application: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}application_name={application}"


def _mesh(directory: Path, into: Path, dsn: str, options: dict[str, Any]) -> Path:
    """A copy of the mesh (scan.py's) whose PostgreSQL sources use `dsn` and `options`."""
    mesh_with_partitions(directory, into, None)
    mesh = yaml.safe_load((into / "mesh.yaml").read_text(encoding="utf-8"))
    for source in mesh["sources"]:
        if source["kind"] == "postgres":
            source["options"]["dsn"] = dsn
            source["options"].update(options)
    (into / "mesh.yaml").write_text(yaml.safe_dump(mesh), encoding="utf-8")
    return into


def _server(stack: ExitStack, spec: str, directory: Path, scratch: Path, dsn: str,
            table: str) -> Contender:  # fmt: skip
    name, _, rest = spec.partition("=")
    tree, _, options = rest.partition(":")
    application = f"scan_cpu_{os.getpid()}_{name}"
    mesh = _mesh(directory, scratch / name, _named(dsn, application),
                 json.loads(options) if options else {})  # fmt: skip
    root = Path(tree).resolve()
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = f"{root / 'src'}:{root / 'connectors'}"
    try:
        served = stack.enter_context(meshgate_server(mesh))
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    client = stack.enter_context(flightsql.connect(
        served.uri, db_kwargs={"username": "admin", "password": "admin"}, autocommit=True))

    def scan() -> int:
        with client.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {DOMAIN}.{table}")
            return int(cursor.fetch_arrow_table().num_rows)

    return Contender(name, scan, application, served.pid)


def _round(contender: Contender, dsn: str, measured: bool) -> int:
    backends = _backends(dsn, contender.application)
    server = _cpu(contender.pid) if contender.pid else 0.0
    client = time.process_time()
    started = time.perf_counter()
    rows = contender.scan()
    seconds = time.perf_counter() - started
    client = time.process_time() - client
    server = (_cpu(contender.pid) - server) if contender.pid else 0.0
    after = _backends(dsn, contender.application)
    if measured:
        contender.seconds.append(seconds)
        contender.server.append(server)
        contender.client.append(client)
        contender.backends.append(sum(cpu - backends.get(pid, 0.0) for pid, cpu in after.items()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="a split layout's directory")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-schema", default="bench_split_sf1")
    parser.add_argument("--table", default="orders")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server", action="append", required=True,
                        help="NAME=TREE[:JSON source options], repeatable")  # fmt: skip
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        contenders = [_server(stack, spec, args.dir, Path(scratch), args.pg_dsn, args.table)
                      for spec in args.server]  # fmt: skip
        application = f"scan_cpu_{os.getpid()}_duckdb"
        peer = duckdb_peer(args.dir, _named(args.pg_dsn, application), args.pg_schema)
        contenders.append(Contender("duckdb_pg", lambda: int(
            peer.execute(f"SELECT * FROM {DOMAIN}.{args.table}").to_arrow_table().num_rows
        ), application))  # fmt: skip
        loads = []
        for number in range(args.rounds + 1):
            order = contenders if number % 2 else contenders[::-1]
            counts = {_round(c, args.pg_dsn, measured=number > 0) for c in order}
            if len(counts) != 1:
                raise SystemExit(f"the contenders read different row counts: {counts}")
            loads.append(os.getloadavg()[0])
            print(f"round {number} (load {loads[-1]:.1f}): " + ", ".join(
                f"{c.name} {c.seconds[-1]:.2f} s" for c in contenders if c.seconds
            ), flush=True)  # fmt: skip
        peer.close()
    duckdb = statistics.median(contenders[-1].seconds)
    print(f"{args.rounds} rounds, load average {min(loads):.1f}-{max(loads):.1f}; medians:")
    print("contender      seconds [min-max]       rows/s vs DuckDB   CPU s: server client "
          "backends total")
    for c in contenders:
        median = statistics.median(c.seconds)
        cpu = [statistics.median(v) for v in (c.server, c.client, c.backends)]
        print(f"{c.name:14s} {median:6.2f} [{min(c.seconds):.2f}-{max(c.seconds):.2f}]"
              f"   {duckdb / median:5.2f}x           {cpu[0]:5.2f}  {cpu[1]:5.2f}  "
              f"{cpu[2]:5.2f}  {sum(cpu):5.2f}")


if __name__ == "__main__":
    main()
