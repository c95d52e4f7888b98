"""A large result fetched from one endpoint, from several, and from several replicas.

```sh
python -m benchmarks.endpoints --pg-dsn DSN [--rows 6000000] [--rounds 3]
```

Creates a database of its own with one table of `--rows` rows (id BIGINT, sensor INTEGER,
value DOUBLE), serves it through `meshgate serve` (its own process), and fetches
`SELECT * FROM ops.readings` with the ADBC Flight SQL driver asking for 1, 2 and 4 endpoints
(`x-meshgate-result-endpoints`), then from two replicas whose endpoints name both of them
(`server.replicas.locations`), next to a direct ADBC read from PostgreSQL. Rounds interleave
the modes; it prints each mode's median and spread, rows per second and the speed-up over one
endpoint, and checks every fetch returned every row. The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg

from benchmarks.served import free_port, meshgate_server
from meshgate.principal import hash_password

HEADER = "adbc.flight.sql.rpc.call_header.x-meshgate-result-endpoints"
QUERY = "SELECT id, sensor, value FROM ops.readings"
MESH = """
mesh: {{name: endpoints, description: One large table for the endpoints benchmark.}}
users: [{{name: admin, password_hash: "{hash}", roles: [admin]}}]
roles: [{{name: admin, grants: ["*"]}}]
sources:
  - {{name: warehouse, kind: postgres, options: {{dsn: "{dsn}", pool_size: 8}}}}
domains:
  - {{name: ops, owner: benchmarks, description: Readings in PostgreSQL.}}
products:
  - domain: ops
    name: readings
    table: {{source: warehouse, schema: public, table: readings}}
    columns: [{{name: id, type: BIGINT}}, {{name: sensor, type: INTEGER}},
              {{name: value, type: DOUBLE}}]
"""


@contextlib.contextmanager
def _database(server_dsn: str, rows: int) -> Iterator[str]:
    name = f"meshgate_bench_endpoints_{secrets.token_hex(4)}"
    with pg.connect(server_dsn, autocommit=True) as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    dsn = server_dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE readings AS SELECT g::bigint AS id, (g % 97)::int AS "
                           f"sensor, g / 7.0::float8 AS value FROM generate_series(1, {rows}) g")
            cursor.execute("ANALYZE readings")
        yield dsn
    finally:
        with pg.connect(server_dsn, autocommit=True) as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _fetch(uri: str, endpoints: int) -> Callable[[], int]:
    def run() -> int:
        kwargs = {"username": "admin", "password": "admin", HEADER: str(endpoints)}
        with flightsql.connect(uri, db_kwargs=kwargs) as connection, \
                connection.cursor() as cursor:  # fmt: skip
            cursor.execute(QUERY)
            return int(cursor.fetch_arrow_table().num_rows)
    return run


def _direct(dsn: str) -> Callable[[], int]:
    def run() -> int:
        with pg.connect(dsn) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT id, sensor, value FROM readings")
            return int(cursor.fetch_arrow_table().num_rows)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--rows", type=int, default=6_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["MESHGATE_BENCH_SIGNING_KEY"] = secrets.token_urlsafe(48)
    with _database(args.pg_dsn, args.rows) as dsn, tempfile.TemporaryDirectory() as tmp:
        mesh = MESH.format(hash=hash_password("admin"), dsn=dsn)
        one, pair = Path(tmp, "one"), Path(tmp, "pair")
        ports = (free_port(), free_port())
        for directory, server in ((one, "server: {result_endpoints: {max: 8}}\n"), (pair, (
                "server:\n  result_endpoints: {max: 8}\n  replicas:\n"
                "    signing_key: \"${MESHGATE_BENCH_SIGNING_KEY}\"\n    locations: ["
                + ", ".join(f"\"grpc://127.0.0.1:{p}\"" for p in ports) + "]\n"))):
            directory.mkdir()
            (directory / "mesh.yaml").write_text(mesh + server, encoding="utf-8")
        with meshgate_server(one) as single, meshgate_server(pair, ports[0]) as first, \
                meshgate_server(pair, ports[1]):  # fmt: skip
            modes: dict[str, Callable[[], int]] = {
                "PostgreSQL direct (ADBC)": _direct(dsn),
                "meshgate, 1 endpoint": _fetch(single.uri, 1),
                "meshgate, 2 endpoints": _fetch(single.uri, 2),
                "meshgate, 4 endpoints": _fetch(single.uri, 4),
                "2 replicas, 2 endpoints": _fetch(first.uri, 2),
                "2 replicas, 4 endpoints": _fetch(first.uri, 4),
            }
            times: dict[str, list[float]] = {name: [] for name in modes}
            for name, run in modes.items():  # warm-up
                assert run() == args.rows, name
            for round_number in range(args.rounds):
                order = list(modes) if round_number % 2 == 0 else list(reversed(modes))
                for name in order:
                    started = time.perf_counter()
                    rows = modes[name]()
                    times[name].append(time.perf_counter() - started)
                    assert rows == args.rows, f"{name} returned {rows} rows, not {args.rows}"
    base = statistics.median(times["meshgate, 1 endpoint"])
    print(f"{args.rows:,} rows, {args.rounds} rounds, {os.cpu_count()} cores; every fetch "
          "returned every row")
    print(f"{'mode':28} {'median s':>9} {'min-max s':>13} {'rows/s':>12} {'vs 1 endpoint':>14}")
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"{name:28} {median:9.2f} {min(measured):6.2f}-{max(measured):<6.2f} "
              f"{args.rows / median:12,.0f} {base / median:13.2f}x")


if __name__ == "__main__":
    main()
