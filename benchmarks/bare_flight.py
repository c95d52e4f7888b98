"""A bare `pyarrow.flight` server streaming one in-memory table: the transport's limit.

    python -m benchmarks.bare_flight --pg-dsn DSN --pg-schema S --table orders --port N

It reads the table from PostgreSQL once (ADBC, cast to the TPC-H Arrow types), prints `ready`
and answers every statement's GetFlightInfo, whatever the SQL, with one endpoint whose DoGet streams
that table in 64k-row batches. That is all an ADBC Flight SQL client needs to run a query, so
the suite's scan can measure the same client against a server doing no work at all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
from pyarrow import flight

from benchmarks.tpch import TABLES, arrow_schema

BATCH_ROWS = 65_536


class TableServer(flight.FlightServerBase):  # type: ignore[misc]
    def __init__(self, location: str, table: pa.Table) -> None:
        super().__init__(location)
        self._table = table

    def get_flight_info(self, context: Any, descriptor: flight.FlightDescriptor) -> Any:
        if b"CommandStatementQuery" not in (descriptor.command or b""):
            # the driver asks for SqlInfo when it connects, and copes with a refusal
            raise flight.FlightUnimplementedError("only statements are served")
        endpoint = flight.FlightEndpoint(b"table", [])
        return flight.FlightInfo(self._table.schema, descriptor, [endpoint],
                                 self._table.num_rows, -1)  # fmt: skip

    def do_get(self, context: Any, ticket: flight.Ticket) -> Any:
        batches = self._table.to_batches(max_chunksize=BATCH_ROWS)
        return flight.GeneratorStream(self._table.schema, iter(batches))


def load(pg_dsn: str, pg_schema: str, table_name: str) -> pa.Table:
    (table,) = (t for t in TABLES if t.name == table_name)
    with pg.connect(pg_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{pg_schema}"."{table_name}"')
        return cursor.fetch_arrow_table().cast(arrow_schema(table)).combine_chunks()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_flight", description=__doc__)
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--pg-schema", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = TableServer(f"grpc://127.0.0.1:{args.port}",
                         load(args.pg_dsn, args.pg_schema, args.table))  # fmt: skip
    print("ready", flush=True)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
