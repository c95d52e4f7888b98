"""A bare `pyarrow.flight` server answering point lookups of `orders`: the lookups' floor.

    python -m benchmarks.bare_lookup --pg-dsn DSN --pg-schema S --port N

It reads the four lookup columns of `orders` from PostgreSQL once (sorted by key, cast to the
TPC-H Arrow types), prints `ready`, and answers exactly the Flight SQL calls the ADBC driver
makes for the suite's lookups, with the row of the key asked for and nothing else: no
authentication, planning, policy, audit or source query. CreatePreparedStatement takes the
text (a literal key is read from its end, `= 123`), a DoPut bind the `?` value; the key
travels in the handle (DoPutPreparedStatementResult) and the ticket, so no state is kept.
What a lookup through this server costs is what the client, its driver and the Flight
transport cost: the floor of any Flight SQL server's lookup on this machine.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import adbc_driver_postgresql.dbapi as pg
import numpy as np
import pyarrow as pa
from google.protobuf import any_pb2
from pyarrow import flight

from benchmarks.tpch import TABLES, arrow_schema
from meshgate.server.proto import flight_sql_pb2 as pb

COLUMNS = ("o_orderkey", "o_custkey", "o_totalprice", "o_orderdate")  # lookup_client's
_LITERAL_KEY = re.compile(rb"=\s*(-?\d+)\s*$")
_PARAMETERS = pa.schema([pa.field("0", pa.int64())])


def _pack(message: Any) -> bytes:
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return bytes(wrapped.SerializeToString())


def _unpack(data: bytes, message: Any) -> Any:
    if not any_pb2.Any.FromString(data).Unpack(message):
        raise flight.FlightServerError(f"expected a {message.DESCRIPTOR.name}")
    return message


class LookupServer(flight.FlightServerBase):  # type: ignore[misc]
    """Answers CreatePreparedStatement / ClosePreparedStatement, DoPut, GetFlightInfo and
    DoGet for `SELECT <COLUMNS> FROM orders WHERE o_orderkey = ? | <literal>`."""

    def __init__(self, location: str, table: pa.Table) -> None:
        super().__init__(location)
        self._table = table
        self._keys = table.column("o_orderkey").to_numpy()

    def do_action(self, context: Any, action: flight.Action) -> Iterator[bytes]:
        if action.type == "ClosePreparedStatement":
            return
        if action.type != "CreatePreparedStatement":
            raise flight.FlightUnimplementedError(f"{action.type} is not served")
        request = _unpack(action.body.to_pybytes(), pb.ActionCreatePreparedStatementRequest())
        literal = _LITERAL_KEY.search(request.query.encode())
        yield _pack(pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=literal.group(1) if literal else b"?",
            dataset_schema=self._table.schema.serialize().to_pybytes(),
            parameter_schema=(pa.schema([]) if literal else _PARAMETERS).serialize().to_pybytes(),
        ))  # fmt: skip

    def do_put(self, context: Any, descriptor: flight.FlightDescriptor,
               reader: flight.MetadataRecordBatchReader,
               writer: flight.FlightMetadataWriter) -> None:  # fmt: skip
        key = reader.read_all().column(0)[0].as_py()
        result = pb.DoPutPreparedStatementResult(prepared_statement_handle=str(key).encode())
        writer.write(pa.py_buffer(result.SerializeToString()))

    def get_flight_info(self, context: Any,
                        descriptor: flight.FlightDescriptor) -> flight.FlightInfo:  # fmt: skip
        if b"CommandPreparedStatementQuery" not in (descriptor.command or b""):
            # the driver asks for SqlInfo when it connects, and copes with a refusal
            raise flight.FlightUnimplementedError("only prepared statements are served")
        command = _unpack(descriptor.command, pb.CommandPreparedStatementQuery())
        endpoint = flight.FlightEndpoint(command.prepared_statement_handle, [])
        return flight.FlightInfo(self._table.schema, descriptor, [endpoint], 1, -1)

    def do_get(self, context: Any, ticket: flight.Ticket) -> flight.RecordBatchStream:
        key = int(ticket.ticket)
        index = int(np.searchsorted(self._keys, key))
        found = index < len(self._keys) and self._keys[index] == key
        return flight.RecordBatchStream(self._table.slice(index, 1 if found else 0))


def load(pg_dsn: str, pg_schema: str) -> pa.Table:
    (orders,) = (t for t in TABLES if t.name == "orders")
    schema = pa.schema([arrow_schema(orders).field(name) for name in COLUMNS])
    with pg.connect(pg_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT {", ".join(COLUMNS)} FROM "{pg_schema}".orders '
                       "ORDER BY o_orderkey")  # fmt: skip
        return cursor.fetch_arrow_table().cast(schema).combine_chunks()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_lookup", description=__doc__)
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--pg-schema", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = LookupServer(f"grpc://127.0.0.1:{args.port}", load(args.pg_dsn, args.pg_schema))
    print("ready", flush=True)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
