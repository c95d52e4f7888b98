"""Full scan of one PostgreSQL table to the client: meshgate beside its peer and the source limit.

  python -m benchmarks.scan --dir DIR --pg-dsn DSN [--table orders] [--rounds 5]
      [--partitions 1 3]

Each round reads the whole table once per contender, interleaved so that machine noise hits
all alike: `meshgate serve` (its own process, one per `partitions` value, over a copy of the
mesh in DIR with that source option; ADBC Flight SQL client reading the stream batch by batch),
DuckDB 1.5.5 with its postgres extension exporting the same table as an Arrow stream, and
psycopg's binary COPY to nowhere (PostgreSQL's own limit). Printed: median seconds with the
spread, rows per second, the ratio to DuckDB's rows per second, and per meshgate process its
peak RSS during the scan (VmHWM, reset before each round) and the CPU seconds it used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import duckdb
import psycopg
import yaml

from benchmarks.run import postgres_extension
from benchmarks.served import ServedMeshgate, meshgate_server
from benchmarks.tpch import DOMAIN


@dataclass
class Contender:
    name: str
    scan: Callable[[], int]
    pid: int | None = None  # a meshgate server's, whose memory and CPU are read
    seconds: list[float] = field(default_factory=list)
    peak_mib: list[int] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)


def mesh_with_partitions(directory: Path, into: Path, partitions: int | None) -> Path:
    """A copy of the mesh's YAML with `partitions` set on its PostgreSQL sources (None: the
    connector's default); the data directory is linked, not copied."""
    into.mkdir(parents=True)
    for item in directory.iterdir():
        if item.suffix == ".yaml":
            shutil.copy(item, into / item.name)
        else:
            (into / item.name).symlink_to(item.resolve())
    mesh_file = into / "mesh.yaml"
    mesh = yaml.safe_load(mesh_file.read_text(encoding="utf-8"))
    for source in mesh["sources"]:
        if source["kind"] == "postgres" and partitions is not None:
            source["options"]["partitions"] = partitions
    mesh_file.write_text(yaml.safe_dump(mesh), encoding="utf-8")
    return into


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _meshgate_scan(client: Any, table: str) -> Callable[[], int]:
    def scan() -> int:
        with client.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {DOMAIN}.{table}")
            return sum(batch.num_rows for batch in cursor.fetch_record_batch())

    return scan


def _duckdb_scan(connection: duckdb.DuckDBPyConnection, table: str, schema: str
                 ) -> Callable[[], int]:  # fmt: skip
    def scan() -> int:
        reader = connection.execute(f"SELECT * FROM pg.{schema}.{table}").to_arrow_reader()
        return sum(batch.num_rows for batch in reader)

    return scan


def _copy_scan(dsn: str, table: str, schema: str) -> Callable[[], int]:
    def scan() -> int:
        read = 0
        with psycopg.connect(dsn) as conn, conn.cursor() as cursor, cursor.copy(
            f"COPY {schema}.{table} TO STDOUT (FORMAT binary)"
        ) as copy:
            for data in copy:
                read += len(data)
        return -1  # bytes, not rows: not checked

    return scan


def _servers(stack: ExitStack, directory: Path, scratch: Path, table: str,
             partitions: list[int | None]) -> Iterator[Contender]:  # fmt: skip
    for value in partitions:
        mesh = mesh_with_partitions(directory, scratch / f"partitions-{value}", value)
        served: ServedMeshgate = stack.enter_context(meshgate_server(mesh))
        client = stack.enter_context(flightsql.connect(
            served.uri, db_kwargs={"username": "admin", "password": "admin"}))
        label = "default" if value is None else str(value)
        yield Contender(f"meshgate partitions={label}", _meshgate_scan(client, table), served.pid)


def _round(contender: Contender, rows: int) -> None:
    pid = contender.pid
    if pid is not None:
        Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")  # reset VmHWM
        cpu = _cpu_seconds(pid)
    started = time.perf_counter()
    read = contender.scan()
    contender.seconds.append(time.perf_counter() - started)
    if read >= 0 and read != rows:
        raise SystemExit(f"{contender.name} read {read} rows of {rows}")
    if pid is not None:
        contender.peak_mib.append(_status_kib(pid, "VmHWM") // 1024)
        contender.cpu_seconds.append(_cpu_seconds(pid) - cpu)


def report(contenders: list[Contender], rows: int) -> list[str]:
    peer = next(c for c in contenders if c.name.startswith("duckdb"))
    peer_rate = rows / statistics.median(peer.seconds)
    lines = []
    for c in contenders:
        median = statistics.median(c.seconds)
        line = (f"{c.name:28s} {median:5.2f} s [{min(c.seconds):.2f}-{max(c.seconds):.2f}] "
                f"{rows / median / 1e6:5.2f} M rows/s  {rows / median / peer_rate:4.2f}x DuckDB")
        if c.peak_mib:
            line += (f"  VmHWM {statistics.median(c.peak_mib):.0f} MiB "
                     f"[{min(c.peak_mib)}-{max(c.peak_mib)}]  server CPU "
                     f"{statistics.median(c.cpu_seconds):.2f} s")
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="a mesh from benchmarks.tpch")
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--pg-schema", default="tpch")
    parser.add_argument("--table", default="orders")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--partitions", type=int, nargs="*", default=[],
                        help="meshgate servers with these `partitions` (besides the default)")
    args = parser.parse_args()
    peer = duckdb.connect()
    peer.execute(f"LOAD '{postgres_extension()}'")
    peer.execute(f"ATTACH '{args.pg_dsn.replace(chr(39), chr(39) * 2)}' AS pg "
                 "(TYPE postgres, READ_ONLY)")
    counted = peer.execute(f"SELECT count(*) FROM pg.{args.pg_schema}.{args.table}").fetchone()
    rows = int(counted[0]) if counted else 0
    with ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        contenders = list(_servers(stack, args.dir, Path(scratch), args.table,
                                   [None, *args.partitions]))
        contenders += [
            Contender("duckdb postgres extension", _duckdb_scan(peer, args.table, args.pg_schema)),
            Contender("psycopg binary COPY", _copy_scan(args.pg_dsn, args.table, args.pg_schema)),
        ]
        for contender in contenders:
            contender.scan()  # warm-up: plans, pools, connections
        for number in range(args.rounds):
            for contender in contenders:
                _round(contender, rows)
            print(f"round {number + 1}: " + ", ".join(
                f"{c.name} {c.seconds[-1]:.2f} s" for c in contenders), flush=True)
    print(f"{args.pg_schema}.{args.table}: {rows} rows, {args.rounds} interleaved rounds")
    print("\n".join(report(contenders, rows)))


if __name__ == "__main__":
    main()
