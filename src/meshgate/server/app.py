"""MeshgateFlightServer: decode a Flight SQL request, delegate to a typed handler, encode.

pyarrow has no Flight SQL server, so this layer routes on the `google.protobuf.Any` type URL of
each descriptor/ticket and on the action name. It holds no query or catalog logic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pyarrow as pa
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from pyarrow import flight

from meshgate.catalog.config import ServerConfig
from meshgate.errors import (
    BadRequestError,
    ReadOnlyError,
    UnsupportedCommandError,
)
from meshgate.execution.limits import ResultLimits
from meshgate.principal import Principal
from meshgate.server import endpoints, metadata, residual
from meshgate.server.auth import AuthMiddlewareFactory, CallCredential, NoopAuthHandler, TokenStore
from meshgate.server.errors import at_boundary, guarded
from meshgate.server.headers import CallHeaders, CallHeadersFactory
from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.server.sessions import SessionStore
from meshgate.server.signed import Signer
from meshgate.server.sqlinfo import SCHEMA as SQL_INFO_SCHEMA
from meshgate.server.sqlinfo import sql_info_table
from meshgate.server.statements import HandleLimits, StatementRegistry, pack
from meshgate.service import QueryOptions, QueryService

AUTH = "auth"
HEADERS = "headers"

_INGEST_TYPE_URL = "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementIngest"
_SUBSTRAIT_TYPE_URLS = frozenset(
    f"type.googleapis.com/arrow.flight.protocol.sql.{name}"
    for name in ("CommandStatementSubstraitPlan", "CommandPreparedStatementSubstraitPlan")
)
# Flight SQL's transaction and savepoint actions (SqlInfo says: no transactions).
_TRANSACTION_ACTIONS = frozenset(
    {"BeginTransaction", "BeginSavepoint", "EndTransaction", "EndSavepoint"}
)
_NO_TRANSACTIONS = (
    "meshgate has no transactions: every query reads a consistent snapshot of each source on "
    "its own; run queries without BEGIN/COMMIT (ADBC and JDBC: leave autocommit on)"
)
_NO_SUBSTRAIT = (
    "meshgate does not accept Substrait plans; send the query as SQL (CommandStatementQuery "
    "or a prepared statement)"
)
_WRITE_COMMANDS = (pb.CommandStatementUpdate, pb.CommandPreparedStatementUpdate)


_COMMANDS: dict[str, type[Message]] = {
    f"type.googleapis.com/{cls.DESCRIPTOR.full_name}": cls
    for cls in (
        pb.CommandStatementQuery, pb.CommandPreparedStatementQuery, pb.TicketStatementQuery,
        pb.CommandStatementUpdate, pb.CommandPreparedStatementUpdate,
        pb.CommandGetSqlInfo, pb.CommandGetCatalogs, pb.CommandGetDbSchemas,
        pb.CommandGetTables, pb.CommandGetTableTypes, pb.CommandGetPrimaryKeys,
        pb.CommandGetImportedKeys, pb.CommandGetExportedKeys, pb.CommandGetCrossReference,
        pb.CommandGetXdbcTypeInfo,
    )
}


def unpack(data: bytes) -> Message:
    """A Flight SQL command from serialized Any bytes (descriptor cmd or ticket)."""
    try:
        wrapped = any_pb2.Any.FromString(data)
    except DecodeError:
        raise BadRequestError(
            "the request is not a Flight SQL command (google.protobuf.Any)"
        ) from None
    if wrapped.type_url == _INGEST_TYPE_URL:
        raise ReadOnlyError()
    if wrapped.type_url in _SUBSTRAIT_TYPE_URLS:
        raise UnsupportedCommandError(_NO_SUBSTRAIT)
    cls = _COMMANDS.get(wrapped.type_url)
    if cls is None:
        raise UnsupportedCommandError(f"meshgate does not support the command {wrapped.type_url!r}")
    message = cls()
    try:
        wrapped.Unpack(message)
    except DecodeError:
        raise BadRequestError(
            f"the {cls.DESCRIPTOR.name} in this request cannot be decoded (corrupt protobuf, or "
            f"text that is not UTF-8); send a valid serialized {cls.DESCRIPTOR.full_name}"
        ) from None
    return message


def _parse(cls: type[Any], body: bytes, what: str) -> Any:
    """A Flight SQL action body: the request message wrapped in google.protobuf.Any."""
    message = cls()
    try:
        unpacked = any_pb2.Any.FromString(body).Unpack(message)
    except DecodeError:
        unpacked = False
    if not unpacked:
        raise BadRequestError(
            f"the {what} action body must be a {cls.DESCRIPTOR.full_name} wrapped in Any"
        )
    return message


def _decode(cls: type[Any], body: bytes, what: str) -> Any:
    """A Flight-level action body: the request message itself, serialized (not in Any)."""
    try:
        return cls.FromString(body)
    except DecodeError:
        raise BadRequestError(
            f"the {what} action body must be a serialized {cls.DESCRIPTOR.full_name}"
        ) from None


class MeshgateFlightServer(flight.FlightServerBase):  # type: ignore[misc]
    """The Flight SQL endpoint; every RPC is authenticated by the `auth` middleware."""

    def __init__(self, service: QueryService, location: str,
                 config: ServerConfig | None = None, **options: Any) -> None:
        config = config if config is not None else ServerConfig()
        self.sessions = SessionStore(ResultLimits(
            config.limits.max_result_rows, config.limits.max_result_bytes,
            config.query_timeout_seconds), max_endpoints=config.result_endpoints.max)
        self._endpoints = config.result_endpoints
        signer = None if config.replicas is None else Signer(config.replicas.signing_key)
        self.tokens = TokenStore(config.token_ttl_seconds, on_expire=self.sessions.forget,
                                 signer=signer,
                                 principal_of=None if signer is None else service.principal)
        self.service = service
        self.statements = StatementRegistry(service, HandleLimits(
            ticket_ttl_seconds=config.ticket_ttl_seconds,
            prepared_statement_ttl_seconds=config.prepared_statement_ttl_seconds,
            max_open=config.max_open_handles,
        ), signer, config.replicas.locations if config.replicas is not None else ())
        self._actions: dict[str, Callable[[CallCredential, bytes], Iterator[bytes]]] = {
            "CreatePreparedStatement": self._create_prepared,
            "ClosePreparedStatement": self._close_prepared,
            "SetSessionOptions": self._set_session_options,
            "GetSessionOptions": self._get_session_options,
            "CloseSession": self._close_session,
            "CancelFlightInfo": self._cancel_flight_info,
            "CancelQuery": self._cancel_query,  # Flight SQL's older action, still sent
            "RenewFlightEndpoint": self._renew_flight_endpoint,
        }
        super().__init__(
            location,
            auth_handler=NoopAuthHandler(),
            middleware={AUTH: AuthMiddlewareFactory(service.authenticate, self.tokens,
                                                    service.authenticate_token,
                                                    service.current_principal),
                        HEADERS: CallHeadersFactory()},
            **options,
        )

    @staticmethod
    def _caller(context: flight.ServerCallContext) -> CallCredential:
        credential = context.get_middleware(AUTH)
        assert isinstance(credential, CallCredential)
        credential.client = context.peer()
        return credential

    def caller_is_admin(self, context: flight.ServerCallContext) -> bool:
        """Admins are told which source failed (`server.errors.client_error`)."""
        credential = context.get_middleware(AUTH)
        return isinstance(credential, CallCredential) and \
            self.service.catalog.is_admin(credential.principal)

    def _endpoint_count(self, context: flight.ServerCallContext, caller: CallCredential) -> int:
        """The call header's count, else the session's, else the deployment's default;
        never above `server.result_endpoints.max`."""
        count = endpoints.requested(self._header(context, endpoints.HEADER))
        if count is None:
            count = self.sessions.result_endpoints(caller.token)
        return min(count or self._endpoints.default, self._endpoints.max)

    def _options(self, caller: CallCredential,
                 context: flight.ServerCallContext | None = None) -> QueryOptions:
        """The session's options; a call's `residual_engine` header over the session's."""
        options = replace(self.sessions.options(caller.token), client=caller.client)
        engine = None if context is None else self._header(context, residual.HEADER)
        if engine is not None:
            options = replace(options, residual_engine=engine)
        return options

    @staticmethod
    def _header(context: flight.ServerCallContext, name: str) -> str | None:
        """The first value of the call's `x-meshgate-*` header `name` (None: not sent)."""
        headers = context.get_middleware(HEADERS)
        return headers.get(name) if isinstance(headers, CallHeaders) else None

    # ---- GetFlightInfo / GetSchema ------------------------------------------------------------

    @at_boundary
    def get_flight_info(self, context: flight.ServerCallContext,
                        descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        caller = self._caller(context)
        principal = caller.principal
        command = self._command(descriptor)
        if isinstance(command, pb.CommandStatementQuery):
            return self.statements.statement_info(principal, command, descriptor,
                                                  self._options(caller, context), context,
                                                  self._endpoint_count(context, caller))
        if isinstance(command, pb.CommandPreparedStatementQuery):
            return self.statements.prepared_info(principal, command, descriptor, context,
                                                 self._endpoint_count(context, caller))
        schema = self._metadata_schema(command)
        endpoint = flight.FlightEndpoint(descriptor.command, [])
        return flight.FlightInfo(schema, descriptor, [endpoint], -1, -1)

    @at_boundary
    def get_schema(self, context: flight.ServerCallContext,
                   descriptor: flight.FlightDescriptor) -> flight.SchemaResult:
        caller = self._caller(context)
        principal = caller.principal
        command = self._command(descriptor)
        if isinstance(command, pb.CommandStatementQuery):
            return flight.SchemaResult(self.statements.statement_schema(
                principal, command, self._options(caller, context)))
        if isinstance(command, pb.CommandPreparedStatementQuery):
            return flight.SchemaResult(self.statements.prepared_schema(principal, command))
        return flight.SchemaResult(self._metadata_schema(command))

    @staticmethod
    def _command(descriptor: flight.FlightDescriptor) -> Message:
        if descriptor.descriptor_type != flight.DescriptorType.CMD:
            raise BadRequestError("meshgate serves Flight SQL command descriptors only, not paths")
        return unpack(descriptor.command)

    @staticmethod
    def _metadata_schema(command: Message) -> pa.Schema:
        if isinstance(command, pb.CommandGetTables):
            if command.include_schema:
                return metadata.TABLES_WITH_SCHEMA_SCHEMA
            return metadata.TABLES_SCHEMA
        schemas: dict[type[Message], pa.Schema] = {
            pb.CommandGetSqlInfo: SQL_INFO_SCHEMA,
            pb.CommandGetCatalogs: metadata.CATALOGS_SCHEMA,
            pb.CommandGetDbSchemas: metadata.DB_SCHEMAS_SCHEMA,
            pb.CommandGetTableTypes: metadata.TABLE_TYPES_SCHEMA,
            pb.CommandGetPrimaryKeys: metadata.PRIMARY_KEYS_SCHEMA,
            pb.CommandGetImportedKeys: metadata.FOREIGN_KEYS_SCHEMA,
            pb.CommandGetExportedKeys: metadata.FOREIGN_KEYS_SCHEMA,
            pb.CommandGetCrossReference: metadata.FOREIGN_KEYS_SCHEMA,
            pb.CommandGetXdbcTypeInfo: metadata.XDBC_TYPE_INFO_SCHEMA,
        }
        schema = schemas.get(type(command))
        if schema is None:
            if isinstance(command, _WRITE_COMMANDS):
                raise ReadOnlyError()
            raise BadRequestError(f"{command.DESCRIPTOR.name} is not a query or metadata command")
        return schema

    # ---- DoGet --------------------------------------------------------------------------------

    @at_boundary
    def do_get(self, context: flight.ServerCallContext,
               ticket: flight.Ticket) -> flight.FlightDataStream:
        principal = self._caller(context).principal
        command = unpack(ticket.ticket)
        if isinstance(command, pb.TicketStatementQuery):
            schema, batches = self.statements.stream(principal, command, context)
            return flight.GeneratorStream(
                schema, guarded(batches, admin=self.caller_is_admin(context)))
        table = self._metadata_table(principal, command)
        return flight.RecordBatchStream(table.combine_chunks())

    def _metadata_table(self, principal: Principal, command: Message) -> pa.Table:
        view = self.service.view(principal)
        if isinstance(command, pb.CommandGetSqlInfo):
            return sql_info_table(list(command.info))
        if isinstance(command, pb.CommandGetCatalogs):
            return metadata.catalogs(view)
        if isinstance(command, pb.CommandGetDbSchemas):
            return metadata.db_schemas(view, command)
        if isinstance(command, pb.CommandGetTables):
            return metadata.tables(view, command)
        if isinstance(command, pb.CommandGetTableTypes):
            return metadata.table_types()
        if isinstance(command, pb.CommandGetPrimaryKeys):
            return metadata.primary_keys(view, command)
        if isinstance(command, pb.CommandGetImportedKeys | pb.CommandGetExportedKeys
                      | pb.CommandGetCrossReference):
            return metadata.foreign_keys()
        if isinstance(command, pb.CommandGetXdbcTypeInfo):
            return metadata.xdbc_type_info(command)
        raise BadRequestError(f"{command.DESCRIPTOR.name} is not a valid ticket")

    # ---- DoPut --------------------------------------------------------------------------------

    @at_boundary
    def do_put(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor,
               reader: flight.MetadataRecordBatchReader,
               writer: flight.FlightMetadataWriter) -> None:
        principal = self._caller(context).principal
        command = self._command(descriptor)
        if isinstance(command, _WRITE_COMMANDS):
            raise ReadOnlyError()  # the stream is not read: the Go client may send no schema (P8)
        if not isinstance(command, pb.CommandPreparedStatementQuery):
            raise BadRequestError(f"DoPut does not accept {command.DESCRIPTOR.name}")
        result = self.statements.bind(principal, command, reader)
        writer.write(pa.py_buffer(result.SerializeToString()))

    # ---- ListFlights / DoExchange -----------------------------------------------------------

    @at_boundary
    def list_flights(self, context: flight.ServerCallContext,
                     criteria: bytes) -> Iterator[flight.FlightInfo]:
        self._caller(context)
        raise UnsupportedCommandError(
            "meshgate does not list flights; send a Flight SQL command (CommandGetTables "
            "lists the data products you may read)"
        )

    @at_boundary
    def do_exchange(self, context: flight.ServerCallContext,
                    descriptor: flight.FlightDescriptor, reader: flight.MetadataRecordBatchReader,
                    writer: flight.MetadataRecordBatchWriter) -> None:
        self._caller(context)
        raise UnsupportedCommandError(
            "meshgate does not support DoExchange; run queries with GetFlightInfo and DoGet"
        )

    # ---- DoAction -----------------------------------------------------------------------------

    def list_actions(self, context: flight.ServerCallContext) -> list[tuple[str, str]]:
        return [(name, "") for name in self._actions]

    @at_boundary
    def do_action(self, context: flight.ServerCallContext,
                  action: flight.Action) -> Iterator[bytes]:
        handler = self._actions.get(action.type)
        if action.type in _TRANSACTION_ACTIONS:
            raise UnsupportedCommandError(_NO_TRANSACTIONS)
        if action.type == "CreatePreparedSubstraitPlan":
            raise UnsupportedCommandError(_NO_SUBSTRAIT)
        if handler is None:
            raise UnsupportedCommandError(f"meshgate does not support the action {action.type!r}")
        body = action.body.to_pybytes() if action.body is not None else b""
        if action.type == "CreatePreparedStatement":  # its call's residual_engine header
            return guarded(self._create_prepared(self._caller(context), body, context),
                           admin=self.caller_is_admin(context))
        return guarded(handler(self._caller(context), body),
                       admin=self.caller_is_admin(context))

    def _create_prepared(self, caller: CallCredential, body: bytes,
                         context: flight.ServerCallContext | None = None) -> Iterator[bytes]:
        request = _parse(pb.ActionCreatePreparedStatementRequest, body, "CreatePreparedStatement")
        yield pack(self.statements.create_prepared(caller.principal, request,
                                                   self._options(caller, context)))

    def _close_prepared(self, caller: CallCredential, body: bytes) -> Iterator[bytes]:
        request = _parse(pb.ActionClosePreparedStatementRequest, body, "ClosePreparedStatement")
        self.statements.close_prepared(caller.principal, request)
        yield from ()

    def _set_session_options(self, caller: CallCredential, body: bytes) -> Iterator[bytes]:
        request = _decode(flight_pb2.SetSessionOptionsRequest, body, "SetSessionOptions")
        view = self.service.view(caller.principal)
        yield self.sessions.set_options(caller.token, view, request)

    def _get_session_options(self, caller: CallCredential, body: bytes) -> Iterator[bytes]:
        _decode(flight_pb2.GetSessionOptionsRequest, body, "GetSessionOptions")
        view = self.service.view(caller.principal)
        yield self.sessions.get_options(caller.token, view)

    def _close_session(self, caller: CallCredential, body: bytes) -> Iterator[bytes]:
        _decode(flight_pb2.CloseSessionRequest, body, "CloseSession")
        self.tokens.revoke(caller.token)
        yield self.sessions.close(caller.token)

    def _cancel_flight_info(self, caller: CallCredential, body: bytes) -> Iterator[bytes]:
        request = _decode(flight_pb2.CancelFlightInfoRequest, body, "CancelFlightInfo")
        try:
            info = flight.FlightInfo.deserialize(request.info.SerializeToString())
        except pa.ArrowInvalid:
            raise BadRequestError(
                "the CancelFlightInfo request must carry the FlightInfo the query returned"
            ) from None
        cancelled = self.statements.cancel(caller.principal, info)
        status = (flight_pb2.CANCEL_STATUS_CANCELLED if cancelled
                  else flight_pb2.CANCEL_STATUS_NOT_CANCELLABLE)
        yield flight_pb2.CancelFlightInfoResult(status=status).SerializeToString()

    def _renew_flight_endpoint(self, caller: CallCredential, body: bytes) -> Iterator[bytes]:
        request = _decode(flight_pb2.RenewFlightEndpointRequest, body, "RenewFlightEndpoint")
        try:
            endpoint = flight.FlightEndpoint.deserialize(request.endpoint.SerializeToString())
        except pa.ArrowInvalid:
            raise BadRequestError(
                "the RenewFlightEndpoint request must carry an endpoint of a FlightInfo"
            ) from None
        yield self.statements.renew(caller.principal, endpoint).serialize()

    def _cancel_query(self, caller: CallCredential, body: bytes) -> Iterator[bytes]:
        request = _parse(pb.ActionCancelQueryRequest, body, "CancelQuery")
        try:
            info = flight.FlightInfo.deserialize(request.info)
        except pa.ArrowInvalid:
            raise BadRequestError(
                "the CancelQuery request must carry the FlightInfo the query returned"
            ) from None
        cancelled = self.statements.cancel(caller.principal, info)
        result = pb.ActionCancelQueryResult.CancelResult
        yield pack(pb.ActionCancelQueryResult(
            result=result.CANCEL_RESULT_CANCELLED if cancelled
            else result.CANCEL_RESULT_NOT_CANCELLABLE))
