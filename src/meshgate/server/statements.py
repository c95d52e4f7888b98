"""Statement and ticket handles: random, bound to the principal that made them, TTL-expired.

A prepared statement is a planned query plus its last bound parameters. A ticket is a snapshot
(query + parameters) taken at GetFlightInfo, so rebinding later does not change what DoGet
streams. Both are `OpenStatement`s (the query model's `Statement` is the parsed SQL). Nothing
a client sends is evaluated: handles are only dictionary keys. Each DoGet runs with its own
cancel token, set by CancelFlightInfo on its ticket or by the call ending (`CallWatch`).
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from pyarrow import flight

from meshgate.errors import HandleNotFoundError, ParameterError
from meshgate.principal import Principal
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import PreparedQuery, QueryOptions, QueryService
from meshgate.spi import CancelToken


@dataclass
class OpenStatement:
    """What a client holds a handle to: a prepared statement (with its last bound
    parameters) or a ticket's snapshot of one (the query a DoGet will run)."""

    principal: Principal
    prepared: PreparedQuery
    parameters: tuple[Any, ...] = ()
    expires_at: float = 0.0
    # Set by CancelFlightInfo; every run of the ticket's query is linked to it.
    cancel: CancelToken = field(default_factory=CancelToken)
    claimed: bool = False  # a ticket whose DoGet is streaming


class _Handles:
    """A thread-safe map of random handles to statements with a sliding TTL and, per
    principal, at most `limit` of them waiting: the least recently used one makes room.

    A claimed handle (a ticket whose DoGet is streaming) neither expires nor is dropped, so
    CancelFlightInfo reaches it until the stream ends and releases it.
    """

    def __init__(self, ttl_seconds: float, limit: int) -> None:
        self._ttl = ttl_seconds
        self._limit = limit
        self._items: dict[bytes, OpenStatement] = {}
        self._lock = threading.Lock()

    def add(self, statement: OpenStatement) -> bytes:
        handle = uuid.uuid4().hex.encode()
        with self._lock:
            self._purge()
            self._make_room(statement.principal)
            self._items[handle] = replace(statement, expires_at=time.monotonic() + self._ttl)
        return handle

    def get(self, handle: bytes, principal: Principal, *, claim: bool = False) -> OpenStatement:
        with self._lock:
            self._purge()
            statement = self._items.get(handle)
            if statement is None or statement.principal != principal:
                raise HandleNotFoundError(
                    "unknown or expired statement handle; prepare or run the query again"
                )
            statement.expires_at = time.monotonic() + self._ttl
            statement.claimed = statement.claimed or claim
            return statement

    def pop(self, handle: bytes, principal: Principal) -> OpenStatement:
        statement = self.get(handle, principal)
        self.discard(handle)
        return statement

    def discard(self, handle: bytes) -> None:
        with self._lock:
            self._items.pop(handle, None)

    def _purge(self) -> None:
        now = time.monotonic()
        for handle in [h for h, s in self._items.items()
                       if s.expires_at <= now and not s.claimed]:
            del self._items[handle]

    def _make_room(self, principal: Principal) -> None:
        waiting = sorted((s.expires_at, h) for h, s in self._items.items()
                         if s.principal == principal and not s.claimed)
        for _, handle in waiting[:max(0, len(waiting) - self._limit + 1)]:
            del self._items[handle]


def pack(message: Any) -> bytes:
    """`message` as serialized google.protobuf.Any (how Flight SQL wraps commands)."""
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return wrapped.SerializeToString()


def parameter_values(table: pa.Table) -> tuple[Any, ...]:
    """One row of bound parameters, by position; union columns give their active child."""
    if table.num_rows == 0:
        return ()
    if table.num_rows > 1:
        raise ParameterError(
            "several parameter rows were bound to a query; bind one row per execution"
        )
    return tuple(table.column(i)[0].as_py() for i in range(table.num_columns))


@dataclass(frozen=True)
class HandleLimits:
    """How long unclaimed tickets and idle prepared statements live, and how many per
    principal (`server.ticket_ttl_seconds`, `server.prepared_statement_ttl_seconds`,
    `server.max_open_handles`)."""

    ticket_ttl_seconds: float = 300.0
    prepared_statement_ttl_seconds: float = 3600.0
    max_open: int = 100


class StatementRegistry:
    """Flight SQL statements over a QueryService: prepare, bind, describe, stream, close."""

    def __init__(self, service: QueryService, limits: HandleLimits) -> None:
        self._service = service
        self._prepared = _Handles(limits.prepared_statement_ttl_seconds, limits.max_open)
        self._tickets = _Handles(limits.ticket_ttl_seconds, limits.max_open)
        self._calls = CallWatch()

    # ---- ad-hoc statements ------------------------------------------------------------------

    def statement_info(self, principal: Principal, command: pb.CommandStatementQuery,
                       descriptor: flight.FlightDescriptor,
                       options: QueryOptions) -> flight.FlightInfo:
        prepared = self._prepare(command.query, principal, options)
        return self._flight_info(OpenStatement(principal, prepared), descriptor)

    def statement_schema(self, principal: Principal, command: pb.CommandStatementQuery,
                         options: QueryOptions) -> pa.Schema:
        return self._prepare(command.query, principal, options).schema

    def _prepare(self, sql: str, principal: Principal, options: QueryOptions) -> PreparedQuery:
        return self._service.prepare(sql, principal, default_domain=options.default_domain,
                                     strict=options.strict, client=options.client,
                                     limits=options.limits)

    # ---- prepared statements ----------------------------------------------------------------

    def create_prepared(self, principal: Principal,
                        request: pb.ActionCreatePreparedStatementRequest,
                        options: QueryOptions) -> pb.ActionCreatePreparedStatementResult:
        prepared = self._prepare(request.query, principal, options)
        handle = self._prepared.add(OpenStatement(principal, prepared))
        parameters = pa.schema(
            [pa.field(str(i), pa.string()) for i in range(prepared.parameter_count)]
        )
        return pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=handle,
            dataset_schema=prepared.schema.serialize().to_pybytes(),
            parameter_schema=parameters.serialize().to_pybytes(),
            is_update=False,
        )

    def close_prepared(self, principal: Principal,
                       request: pb.ActionClosePreparedStatementRequest) -> None:
        self._prepared.pop(request.prepared_statement_handle, principal)

    def bind(self, principal: Principal, command: pb.CommandPreparedStatementQuery,
             reader: flight.MetadataRecordBatchReader) -> pb.DoPutPreparedStatementResult:
        statement = self._prepared.get(command.prepared_statement_handle, principal)
        statement.parameters = parameter_values(reader.read_all())
        return pb.DoPutPreparedStatementResult(
            prepared_statement_handle=command.prepared_statement_handle
        )

    def prepared_info(self, principal: Principal, command: pb.CommandPreparedStatementQuery,
                      descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        statement = self._prepared.get(command.prepared_statement_handle, principal)
        return self._flight_info(
            OpenStatement(principal, statement.prepared, statement.parameters), descriptor
        )

    def prepared_schema(self, principal: Principal,
                        command: pb.CommandPreparedStatementQuery) -> pa.Schema:
        return self._prepared.get(command.prepared_statement_handle, principal).prepared.schema

    # ---- tickets ----------------------------------------------------------------------------

    def _flight_info(self, statement: OpenStatement,
                     descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        handle = self._tickets.add(statement)
        ticket = flight.Ticket(pack(pb.TicketStatementQuery(statement_handle=handle)))
        return flight.FlightInfo(statement.prepared.schema, descriptor,
                                 [flight.FlightEndpoint(ticket, [])], -1, -1)

    def stream(self, principal: Principal, ticket: pb.TicketStatementQuery,
               context: flight.ServerCallContext
               ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """Run the ticket's query; batches are pulled lazily.

        The run has its own cancel token, set by CancelFlightInfo on the ticket (which stays
        registered while it streams, so it can still be reached) or by the call ending
        early (the client closed the stream, or its gRPC deadline passed).
        """
        handle = ticket.statement_handle
        statement = self._tickets.get(handle, principal, claim=True)
        run = CancelToken()
        unlink = statement.cancel.on_cancel(run.cancel)
        unwatch = self._calls.watch(context, run)

        def release() -> None:
            unwatch()
            unlink()
            self._tickets.discard(handle)

        try:
            reader = self._service.execute(statement.prepared, statement.parameters, cancel=run)
        except BaseException:
            release()
            raise
        batches = _batches(reader, release)
        # A stream pyarrow never starts (the client left first) runs no `finally`: its claimed
        # ticket is let go when the generator is collected.
        weakref.finalize(batches, release)
        return statement.prepared.schema, batches

    def cancel(self, principal: Principal, info: flight.FlightInfo) -> bool:
        """Cancel the queries behind a FlightInfo's tickets; False if none is known."""
        found = False
        for endpoint in info.endpoints:
            ticket = pb.TicketStatementQuery()
            try:
                ours = any_pb2.Any.FromString(endpoint.ticket.ticket).Unpack(ticket)
            except DecodeError:  # not a ticket meshgate issued: nothing of ours to cancel
                continue
            if ours:
                try:
                    self._tickets.pop(ticket.statement_handle, principal).cancel.cancel()
                    found = True
                except HandleNotFoundError:
                    pass
        return found


def _batches(reader: pa.RecordBatchReader,
             release: Callable[[], None]) -> Iterator[pa.RecordBatch]:
    try:
        yield from reader
    finally:
        reader.close()
        release()


class CallWatch:
    """One thread turning ended Flight calls into their runs' cancel tokens.

    gRPC says a call was cancelled (client gone, deadline passed) only when asked, and the
    call's own thread may be blocked for minutes waiting for a source's first batch, so a
    single watcher asks for every streaming call a few times a second.
    """

    def __init__(self, interval: float = 0.1) -> None:
        self._interval = interval
        self._calls: dict[int, tuple[flight.ServerCallContext, CancelToken]] = {}
        self._next = 0
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, call: flight.ServerCallContext, token: CancelToken) -> Callable[[], None]:
        """Set `token` once `call` is cancelled; returns the function that stops watching
        (after it returns the watcher never touches `call` again)."""
        with self._lock:
            key = self._next
            self._next += 1
            self._calls[key] = (call, token)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="meshgate-call-watch",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            self._lock.notify()

        def unwatch() -> None:
            with self._lock:
                self._calls.pop(key, None)

        return unwatch

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._calls:
                    self._lock.wait()
                ended = [token for call, token in self._calls.values() if call.is_cancelled()]
            for token in ended:
                token.cancel()
            time.sleep(self._interval)
