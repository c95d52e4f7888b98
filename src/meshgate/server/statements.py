"""Statement and ticket handles: random, bound to the principal that made them, TTL-expired.

A prepared statement is a planned query plus its last bound parameter rows. A ticket is a
snapshot (query + parameter rows) taken at GetFlightInfo, so rebinding later does not change
what DoGet streams. Several bound rows run the query once per row, in order, as one result
stream (ADBC's bind semantics: "each will be bound in turn"). Both are `OpenStatement`s (the
query model's `Statement` is the parsed SQL). Nothing a client sends is evaluated: handles are
only dictionary keys. Each DoGet runs with its own cancel token, set by CancelFlightInfo on its
ticket or by the call ending (`CallWatch`).

With `server.replicas` every handle is also sealed (`server/signed.py`): a replica that did not
issue one verifies it and plans its SQL again for the caller, so a statement prepared on one
replica executes on another and a ticket is fetched from any of them. A bind then answers with
a new handle that carries the bound rows (Flight SQL's `DoPutPreparedStatementResult`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from pyarrow import flight

from meshgate.errors import (
    HandleNotFoundError,
    MeshgateError,
    ParameterError,
    QueryCancelled,
    StatementOutdated,
)
from meshgate.execution.collected import later, on_collect
from meshgate.principal import Principal
from meshgate.server.endpoints import scan_slices, split_queries
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.server.signed import (
    Kind,
    SealedStatement,
    Signer,
    open_statement,
    schema_digest,
    seal_statement,
)
from meshgate.server.warnings import send_warnings
from meshgate.service import PreparedQuery, QueryOptions, QueryService
from meshgate.spi import CancelToken, ScanSlice


@dataclass
class OpenStatement:
    """What a client holds a handle to: a prepared statement (with its last bound
    parameters) or a ticket's snapshot of one (the query a DoGet will run)."""

    principal: Principal
    prepared: PreparedQuery
    # One tuple of values per execution; unbound: one execution without values.
    parameter_rows: tuple[tuple[Any, ...], ...] = ((),)
    expires_at: float = 0.0
    # Set by CancelFlightInfo; every run of the ticket's query is linked to it.
    cancel: CancelToken = field(default_factory=CancelToken)
    claimed: bool = False  # a ticket whose DoGet is streaming
    parameters: pa.Table | None = None  # the bound rows as sent, sealed into replica handles
    part: ScanSlice | None = None  # a ticket's slice of a scan split into several endpoints


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

    def add(self, statement: OpenStatement, handle: bytes | None = None) -> bytes:
        """File `statement` under `handle` (a sealed one) or a new random handle."""
        handle = uuid.uuid4().hex.encode() if handle is None else handle
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

    def renew(self, handle: bytes, principal: Principal) -> float:
        """Restart an unclaimed handle's time-to-live; the wall-clock time it now expires."""
        self.get(handle, principal)
        return time.time() + self._ttl

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


# Each row is one run of the query, so a bind is bounded like any other request.
MAX_PARAMETER_ROWS = 10_000


def bound_table(reader: flight.MetadataRecordBatchReader) -> pa.Table:
    """The parameter rows a DoPut sends, read no further than `MAX_PARAMETER_ROWS`."""
    batches: list[pa.RecordBatch] = []
    count = 0
    while True:
        try:
            batch = reader.read_chunk().data
        except StopIteration:
            return pa.Table.from_batches(batches, schema=reader.schema)
        count += batch.num_rows
        if count > MAX_PARAMETER_ROWS:
            raise ParameterError(
                f"more than {MAX_PARAMETER_ROWS} parameter rows were bound; bind at most "
                f"{MAX_PARAMETER_ROWS} rows per execution (each row runs the query once)"
            )
        batches.append(batch)


def parameter_rows(table: pa.Table) -> tuple[tuple[Any, ...], ...]:
    """The bound rows' values by position (values of Python's type for each Arrow type, a
    dense union's active child for flightsql-dbapi); no columns: one run without values."""
    if table.num_columns == 0:
        return ((),)
    columns = [_values(table.column(i), table.schema.names[i]) for i in range(table.num_columns)]
    return tuple(zip(*columns, strict=True))


def _values(column: pa.ChunkedArray, name: str) -> list[Any]:
    if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
        try:  # Python's datetime holds microseconds
            column = column.cast(pa.timestamp("us", column.type.tz))
        except pa.ArrowInvalid:
            raise ParameterError(
                f"parameter {name!r} has nanoseconds; bind timestamps to the microsecond"
            ) from None
    values: list[Any] = column.to_pylist()
    return values


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

    def __init__(self, service: QueryService, limits: HandleLimits,
                 signer: Signer | None = None, locations: tuple[str, ...] = ()) -> None:
        self._service = service
        self._limits = limits
        self._signer = signer
        # Where the endpoints of a split result are fetched, in turn (the replicas' URIs).
        self._locations = tuple(flight.Location(uri) for uri in locations)
        self._prepared = _Handles(limits.prepared_statement_ttl_seconds, limits.max_open)
        self._tickets = _Handles(limits.ticket_ttl_seconds, limits.max_open)
        self._closed: dict[bytes, float] = {}  # sealed prepared handles closed here -> expiry
        self._closed_lock = threading.Lock()
        self._calls = CallWatch()
        self._shutting_down = False

    # ---- ad-hoc statements ------------------------------------------------------------------

    def statement_info(self, principal: Principal, command: pb.CommandStatementQuery,
                       descriptor: flight.FlightDescriptor, options: QueryOptions,
                       context: flight.ServerCallContext,
                       endpoints: int = 1) -> flight.FlightInfo:  # fmt: skip
        prepared = self._prepare(command.query, principal, options)
        return self._flight_info(OpenStatement(principal, prepared), descriptor, context,
                                 endpoints=endpoints)

    def statement_schema(self, principal: Principal, command: pb.CommandStatementQuery,
                         options: QueryOptions) -> pa.Schema:
        return self._prepare(command.query, principal, options).schema

    def _prepare(self, sql: str, principal: Principal, options: QueryOptions) -> PreparedQuery:
        return self._service.prepare(sql, principal, default_domain=options.default_domain,
                                     strict=options.strict, client=options.client,
                                     limits=options.limits,
                                     residual_engine=options.residual_engine)

    # ---- prepared statements ----------------------------------------------------------------

    def create_prepared(self, principal: Principal,
                        request: pb.ActionCreatePreparedStatementRequest,
                        options: QueryOptions) -> pb.ActionCreatePreparedStatementResult:
        prepared = self._prepare(request.query, principal, options)
        handle = self._prepared.add(OpenStatement(principal, prepared), self._seal(
            Kind.PREPARED, prepared, None, self._limits.prepared_statement_ttl_seconds))
        return pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=handle,
            dataset_schema=prepared.schema.serialize().to_pybytes(),
            parameter_schema=prepared.parameter_schema.serialize().to_pybytes(),
            is_update=False,
        )

    def close_prepared(self, principal: Principal,
                       request: pb.ActionClosePreparedStatementRequest) -> None:
        handle = request.prepared_statement_handle
        try:
            self._prepared.pop(handle, principal)
        except HandleNotFoundError:
            if self._sealed(Kind.PREPARED, handle, principal) is None:
                raise
        if self._signer is not None:  # this replica refuses it from now on
            with self._closed_lock:
                self._closed[handle] = time.time() + self._limits.prepared_statement_ttl_seconds

    def bind(self, principal: Principal, command: pb.CommandPreparedStatementQuery,
             reader: flight.MetadataRecordBatchReader) -> pb.DoPutPreparedStatementResult:
        statement = self._find(self._prepared, Kind.PREPARED,
                               command.prepared_statement_handle, principal)
        table = bound_table(reader)
        rows = parameter_rows(table)
        expected = statement.prepared.parameter_count
        if rows and len(rows[0]) not in (0, expected):
            raise ParameterError(
                f"the statement has {expected} parameter(s) but {len(rows[0])} column(s) "
                "were bound; bind one column per parameter, in order"
            )
        statement.parameter_rows = rows
        statement.parameters = table if table.num_columns else None
        handle = command.prepared_statement_handle
        sealed = self._seal(Kind.PREPARED, statement.prepared, table,
                            self._limits.prepared_statement_ttl_seconds)
        if sealed is not None:  # the rows travel in the handle, to whichever replica runs it
            handle = self._prepared.add(replace(statement), sealed)
        return pb.DoPutPreparedStatementResult(prepared_statement_handle=handle)

    def prepared_info(self, principal: Principal, command: pb.CommandPreparedStatementQuery,
                      descriptor: flight.FlightDescriptor, context: flight.ServerCallContext,
                      endpoints: int = 1) -> flight.FlightInfo:  # fmt: skip
        statement = self._find(self._prepared, Kind.PREPARED,
                               command.prepared_statement_handle, principal)
        statement.prepared = self._service.up_to_date(statement.prepared)  # after a reload
        return self._flight_info(
            OpenStatement(principal, statement.prepared, statement.parameter_rows), descriptor,
            context, statement.parameters, endpoints,
        )

    def prepared_schema(self, principal: Principal,
                        command: pb.CommandPreparedStatementQuery) -> pa.Schema:
        return self._find(self._prepared, Kind.PREPARED, command.prepared_statement_handle,
                          principal).prepared.schema

    # ---- sealed handles (replicas) -----------------------------------------------------------

    def _seal(self, kind: bytes, prepared: PreparedQuery, parameters: pa.Table | None,
              ttl_seconds: float, part: ScanSlice | None = None) -> bytes | None:
        """A handle carrying `prepared` (and its bound rows) for other replicas; None
        without `server.replicas`."""
        if self._signer is None:
            return None
        return seal_statement(self._signer, kind, SealedStatement(
            prepared.principal.name, prepared.sql, prepared.default_domain, prepared.strict,
            prepared.limits, schema_digest(prepared.schema), parameters,
            time.time() + ttl_seconds, part))

    def _sealed(self, kind: bytes, handle: bytes,
                principal: Principal) -> SealedStatement | None:  # fmt: skip
        """The statement sealed in `handle` for this caller; None if the handle is someone
        else's, expired, closed here or forged: as if it never existed."""
        if self._signer is None:
            return None
        now = time.time()
        with self._closed_lock:
            for gone in [h for h, until in self._closed.items() if until <= now]:
                del self._closed[gone]
            closed = handle in self._closed
        sealed = open_statement(self._signer, kind, handle)
        if sealed is None or sealed.user != principal.name or sealed.expires_at <= now or closed:
            return None
        return sealed

    def _find(self, handles: _Handles, kind: bytes, handle: bytes, principal: Principal,
              *, claim: bool = False) -> OpenStatement:
        """The statement behind `handle`: this process's own, or one another replica sealed,
        planned again here for the caller as they are now."""
        try:
            return handles.get(handle, principal, claim=claim)
        except HandleNotFoundError as missing:
            not_found = missing
        sealed = self._sealed(kind, handle, principal)
        if sealed is None:
            raise not_found
        prepared = self._service.prepare(sealed.sql, principal,
                                         default_domain=sealed.default_domain,
                                         strict=sealed.strict, limits=sealed.limits)
        if schema_digest(prepared.schema) != sealed.schema_digest:
            raise StatementOutdated(
                "this statement's result columns differ on this server from those it was "
                "prepared with (its configuration differs); prepare the statement again"
            )
        rows = ((),) if sealed.parameters is None else parameter_rows(sealed.parameters)
        handles.add(OpenStatement(principal, prepared, rows, parameters=sealed.parameters,
                                  part=sealed.part), handle)
        return handles.get(handle, principal, claim=claim)

    # ---- tickets ----------------------------------------------------------------------------

    def _flight_info(self, statement: OpenStatement, descriptor: flight.FlightDescriptor,
                     context: flight.ServerCallContext, parameters: pa.Table | None = None,
                     endpoints: int = 1) -> flight.FlightInfo:  # fmt: skip
        statement.parameters = parameters
        send_warnings(context, statement.prepared.warnings)
        parts = self._parts(statement, endpoints)
        listed = []
        for number, part in enumerate(parts):
            handle = self._tickets.add(part, self._seal(
                Kind.TICKET, part.prepared, parameters, self._limits.ticket_ttl_seconds,
                part.part))
            ticket = flight.Ticket(pack(pb.TicketStatementQuery(statement_handle=handle)))
            where = [self._locations[number % len(self._locations)]] \
                if len(parts) > 1 and self._locations else []
            listed.append(flight.FlightEndpoint(ticket, where))
        return flight.FlightInfo(statement.prepared.schema, descriptor, listed, -1, -1)

    def _parts(self, statement: OpenStatement, endpoints: int) -> list[OpenStatement]:
        """The statement split into `endpoints` parts whose results together are exactly its
        result (server/endpoints.py); itself alone where it cannot be split, or a row or
        byte limit applies (each part would be limited on its own, and the sum could pass)."""
        prepared = statement.prepared
        configured = self._service.definition.server.limits
        limited = (configured.max_result_rows, configured.max_result_bytes) != (None, None) or (
            prepared.limits is not None
            and (prepared.limits.max_rows, prepared.limits.max_bytes) != (None, None))
        if limited:
            return [statement]
        slices = scan_slices(prepared, endpoints, self._service.connectors,
                             self._limits.ticket_ttl_seconds)  # fmt: skip
        if slices:
            return [replace(statement, part=part, cancel=CancelToken()) for part in slices]
        queries = split_queries(prepared, endpoints)
        parts = []
        for sql in queries:
            try:
                part = self._service.prepare(sql, statement.principal,
                                             default_domain=prepared.default_domain,
                                             strict=prepared.strict, client=prepared.client,
                                             limits=prepared.limits,
                                             residual_engine=prepared.residual_engine)
            except MeshgateError:  # e.g. strict mode cannot push the part's condition
                return [statement]
            if not part.schema.equals(prepared.schema):
                return [statement]
            parts.append(replace(statement, prepared=part, cancel=CancelToken()))
        return parts or [statement]

    def stream(self, principal: Principal, ticket: pb.TicketStatementQuery,
               context: flight.ServerCallContext
               ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """Run the ticket's query, once per bound parameter row; batches are pulled lazily
        and each row's run starts when the one before it has been streamed.

        The run has its own cancel token, set by CancelFlightInfo on the ticket (which stays
        registered while it streams, so it can still be reached) or by the call ending
        early (the client closed the stream, or its gRPC deadline passed).
        """
        handle = ticket.statement_handle
        statement = self._find(self._tickets, Kind.TICKET, handle, principal, claim=True)
        run = CancelToken()
        unlink = statement.cancel.on_cancel(run.cancel)
        unwatch = self._calls.watch(context, run)

        def release() -> None:
            unwatch()
            unlink()
            self._tickets.discard(handle)

        started = (self._service.execute(statement.prepared, row, cancel=run,
                                         part=statement.part)
                   for row in statement.parameter_rows)
        # The first run starts now, so its refusal is the DoGet's error, not a broken stream.
        try:
            first = next(started, None)
        except BaseException:
            release()
            raise
        send_warnings(context, statement.prepared.warnings)
        batches = _batches(first, started, release, lambda: self._shutting_down, unwatch)
        # A stream pyarrow never starts (the client left first) runs no `finally`: its claimed
        # ticket is let go when the generator is collected, on the clean-up thread (never in
        # the collecting thread, which may hold the very lock `release` takes).
        on_collect(batches, release)
        return statement.prepared.schema, batches

    def renew(self, principal: Principal,
              endpoint: flight.FlightEndpoint) -> flight.FlightEndpoint:
        """RenewFlightEndpoint: a ticket not yet fetched waits another `ticket_ttl_seconds`;
        the endpoint comes back with that expiration time. A ticket of another principal, one
        already fetched or expired, is not found, like one never issued."""
        ticket = pb.TicketStatementQuery()
        try:
            ours = any_pb2.Any.FromString(endpoint.ticket.ticket).Unpack(ticket)
        except DecodeError:
            ours = False
        if not ours:
            raise HandleNotFoundError("this endpoint's ticket was not issued by meshgate; "
                                      "renew only endpoints of meshgate's own FlightInfo")
        found = self._find(self._tickets, Kind.TICKET, ticket.statement_handle, principal)
        if found.claimed:
            raise HandleNotFoundError("this ticket is being fetched already; a ticket serves "
                                      "one DoGet, run the query again for another")
        expires = self._tickets.renew(ticket.statement_handle, principal)
        renewed = endpoint.ticket
        sealed = self._seal(Kind.TICKET, found.prepared, found.parameters,
                            self._limits.ticket_ttl_seconds, found.part)
        if sealed is not None:  # other replicas learn the new expiry from the ticket itself
            self._tickets.add(replace(found), sealed)
            renewed = flight.Ticket(pack(pb.TicketStatementQuery(statement_handle=sealed)))
        when = pa.scalar(int(expires * 1_000_000), pa.timestamp("us", tz="UTC"))
        return flight.FlightEndpoint(renewed, endpoint.locations, expiration_time=when,
                                     app_metadata=endpoint.app_metadata)

    def running(self) -> int:
        """Result streams running now."""
        return self._calls.watched()

    def cancel_running(self) -> int:
        """Cancel every running stream (shutdown, past its grace); how many there were.
        Their clients are told UNAVAILABLE: the server is going, retry."""
        self._shutting_down = True
        return self._calls.cancel_all()

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


def _batches(first: pa.RecordBatchReader | None, rest: Iterator[pa.RecordBatchReader],
             release: Callable[[], None], shutting_down: Callable[[], bool],
             unwatch: Callable[[], None] = lambda: None) -> Iterator[pa.RecordBatch]:  # fmt: skip
    reader = first
    collected = False
    try:
        while reader is not None:
            try:
                yield from reader
            finally:
                reader.close()
            reader = next(rest, None)
    except GeneratorExit:
        # Closed early: by the caller, or by the garbage collector in whatever thread it runs
        # in (`collected.later` says why the ticket is then released on another thread).
        # The call itself may end right after: the watcher lets go of it now (its lock is
        # safe to take here), never after its context is gone.
        unwatch()
        collected = True
        raise
    except QueryCancelled:
        if not shutting_down():
            raise
        # Not the client's cancel: tell it to retry (elsewhere, or once the server is back).
        raise flight.FlightUnavailableError(
            "the server is shutting down and stopped this query; run it again"
        ) from None
    finally:
        if collected:
            later(release)
        else:
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

    def watched(self) -> int:
        with self._lock:
            return len(self._calls)

    def cancel_all(self) -> int:
        with self._lock:
            tokens = [token for _, token in self._calls.values()]
        for token in tokens:
            token.cancel()
        return len(tokens)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._calls:
                    self._lock.wait()
                ended = [token for call, token in self._calls.values() if call.is_cancelled()]
            for token in ended:
                token.cancel()
            time.sleep(self._interval)
