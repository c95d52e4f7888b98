"""What a NUMERIC(15,2) column costs on the wire from PostgreSQL, four ways, in CPU seconds.

  python -m benchmarks.numeric_wire --pg-dsn DSN [--schema bench_split_sf1] [--rounds 2]

Reads SF 1 `orders` (9 columns) through one ADBC PostgreSQL connection with `o_totalprice`
sent as text (`CAST(CAST(x AS NUMERIC(15,2)) AS TEXT)`, then an Arrow cast), as its unscaled
BIGINT (`CAST(CAST(x AS NUMERIC(15,2)) * 100 AS BIGINT)`, then widened to decimal128), as the
driver's own NUMERIC (opaque strings, then an Arrow cast) and not at all (a constant), and
prints per round the wall time, this process's CPU seconds and the backend's (from
/proc/PID/stat: PostgreSQL must run on this machine). CPU seconds, not wall time, are what a
shared 2-core machine can compare.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pyarrow.compute as pc

COLUMNS = ("o_orderkey, o_custkey, o_orderstatus, {price}, o_orderdate, o_orderpriority, "
           "o_clerk, o_shippriority, o_comment")
WAYS = {
    "text": "CAST(CAST(o_totalprice AS NUMERIC(15,2)) AS TEXT)",
    "bigint": "CAST(CAST(o_totalprice AS NUMERIC(15,2)) * 100 AS BIGINT)",
    "driver": "o_totalprice",
    "none": "0::int8",
}
TARGET = pa.decimal128(15, 2)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _decimal(way: str, column: pa.Array) -> pa.Array:
    if isinstance(column.type, pa.BaseExtensionType):
        column = column.storage
    if way == "bigint":
        return pc.cast(column, pa.decimal128(19, 0)).view(TARGET)
    if way in ("text", "driver"):
        return pc.cast(column, TARGET)
    return column


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--schema", default="bench_split_sf1")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with pg.connect(args.pg_dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
        assert row is not None
        backend = int(row[0])
        for _ in range(args.rounds):
            for way, price in WAYS.items():
                sql = f'SELECT {COLUMNS.format(price=price)} FROM "{args.schema}".orders'
                backend_before, mine_before = _cpu_seconds(backend), time.process_time()
                started = time.perf_counter()
                cursor.execute(sql)
                rows = 0
                for batch in cursor.fetch_record_batch():
                    rows += batch.num_rows
                    _decimal(way, batch.column(3))
                print(f"{way:7} {rows:,} rows: wall {time.perf_counter() - started:.2f} s, "
                      f"client CPU {time.process_time() - mine_before:.2f} s, backend CPU "
                      f"{_cpu_seconds(backend) - backend_before:.2f} s", flush=True)


if __name__ == "__main__":
    main()
