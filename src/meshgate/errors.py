"""Errors a caller can see: each has a user-facing message and the gRPC status it maps to.

The message must say what is wrong and what to do, and never reveal physical names, policy
text or values the caller may not see (ARCHITECTURE.md §4.6). What only an operator may read
(a source's own error text, its name, hosts and paths) goes in `detail`: it is part of
`str(error)` for logs and the CLI, and front ends log it under an error id instead of showing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

# The one refusal of anything that is not a read: the parser's and the Flight endpoint's.
READ_ONLY = (
    "meshgate only runs read-only queries (SELECT, WITH ... SELECT, VALUES, "
    "or EXPLAIN of one of them) and DESCRIBE, SHOW TABLES and SHOW SCHEMAS"
)


class Status(Enum):
    """The gRPC status family an error maps to at the Flight boundary."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    CANCELLED = "CANCELLED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"


class MeshgateError(Exception):
    """Base of every error meshgate reports to a caller."""

    status: Status = Status.INTERNAL
    # The id under which the server log holds this error's details, once one is given
    # (meshgate.audit.error_id_of); the caller's message and the audit record quote the same.
    error_id: str | None = None

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message if detail is None else f"{message} [detail: {detail}]")
        self.message = message
        self.detail = detail


class ConfigError(MeshgateError):
    """The deployment's configuration is invalid; the server refuses to start on it."""

    status = Status.INVALID_ARGUMENT


class SqlSyntaxError(MeshgateError):
    """The SQL text does not parse; the message carries line and column."""

    status = Status.INVALID_ARGUMENT

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")
        self.line = line
        self.column = column


class ForbiddenStatement(MeshgateError):
    """Anything but one read-only query: DDL, DML, session commands, disallowed functions."""

    status = Status.INVALID_ARGUMENT


class ReadOnlyError(ForbiddenStatement):
    """A Flight SQL update or ingest command: meshgate never writes."""

    def __init__(self) -> None:
        super().__init__(f"updates and bulk ingestion are not accepted: {READ_ONLY}")


class UnsupportedQuery(MeshgateError):
    """A valid read-only query using a construct meshgate cannot run yet."""

    status = Status.INVALID_ARGUMENT


class ProductNotFound(MeshgateError):
    """An unknown product, or one the caller is not granted: both answer the same."""

    status = Status.NOT_FOUND

    def __init__(self, name: str, near: Sequence[str] = ()) -> None:
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        super().__init__(
            f"data product {name!r} does not exist or you are not allowed to read it; {hint}"
            "list the products you can read with `SELECT * FROM meshgate.products`"
        )
        self.name = name


class ColumnNotFound(MeshgateError):
    """A column the query names is not in the product (or hidden from the caller)."""

    status = Status.INVALID_ARGUMENT


class AuthenticationFailed(MeshgateError):
    """Missing or wrong credentials, or an expired token."""

    status = Status.UNAUTHENTICATED


class SourceUnavailable(MeshgateError):
    """A source could not be reached or failed while answering; `detail` says how.

    `source` is the configured name of the source, when known: admins are told it, nobody
    else (which sources a query calls is physical).
    """

    status = Status.UNAVAILABLE

    def __init__(self, message: str, detail: str | None = None, *,
                 source: str | None = None) -> None:  # fmt: skip
        super().__init__(message, detail)
        self.source = source


class QueryCancelled(MeshgateError):
    """The client cancelled, or the server shut the query down."""

    status = Status.CANCELLED


class QueryTimeout(MeshgateError):
    """The query ran past its deadline."""

    status = Status.DEADLINE_EXCEEDED


class SqlTooLarge(MeshgateError):
    """SQL text past one of `server.limits`' size limits (length, nesting, IN list, AND/OR
    chain), refused before the optimiser spends minutes or the stack on it."""

    status = Status.INVALID_ARGUMENT


class ResourceExhausted(MeshgateError):
    """A configured limit (`server.limits`) was reached: rows or bytes returned, queries at
    once, the merge's memory. The message names the limit and what to do."""

    status = Status.RESOURCE_EXHAUSTED

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit  # the config key, e.g. "max_result_rows"


class QueryValueError(MeshgateError):
    """A value the query computes cannot be computed (a failed cast, a value out of range),
    at a source or in the merge; `detail` keeps the engine's own text, which may quote it."""

    status = Status.INVALID_ARGUMENT


class ParameterError(MeshgateError):
    """Client parameter values that do not fit the statement."""

    status = Status.INVALID_ARGUMENT


class PushdownRequired(MeshgateError):
    """Strict pushdown mode: work the user expected at a source would run in the merge layer."""

    status = Status.INVALID_ARGUMENT


class StatementOutdated(MeshgateError):
    """A prepared statement whose result columns a configuration reload changed."""

    status = Status.INVALID_ARGUMENT


class HandleNotFoundError(MeshgateError):
    """A statement or ticket handle that is unknown, expired, closed or someone else's."""

    status = Status.NOT_FOUND


class BadRequestError(MeshgateError):
    """A request that is not well-formed Flight SQL."""

    status = Status.INVALID_ARGUMENT


class UnsupportedCommandError(MeshgateError):
    """A Flight SQL command or action meshgate does not offer (clients read "feature absent")."""

    status = Status.UNIMPLEMENTED
