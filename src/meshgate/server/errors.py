"""MeshgateError -> the exception pyarrow turns into the right gRPC status, with no traceback.

What pyarrow 26 does with an exception raised in a server method (measured with a raw grpcio
client and with pyarrow/ADBC clients, see tests/server/test_errors.py):

* `FlightError` subclasses become a status with a Flight status detail: UNAUTHENTICATED,
  PERMISSION_DENIED, UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, INTERNAL, UNKNOWN
  (`FlightServerError`). The message is `<message>. Detail: <Flight code name>`; no traceback.
* Every other exception goes through `arrow::py::ConvertPyError`: `ValueError`/`ArrowInvalid`
  -> INVALID_ARGUMENT, `KeyError`/`ArrowKeyError` -> NOT_FOUND, `NotImplementedError` ->
  UNIMPLEMENTED, anything else UNKNOWN; and the gRPC message is
  `<message>. Detail: Python exception: Traceback (most recent call last): ...` because the
  status detail is formatted with `traceback.format_exception`. No FlightError subclass gives
  INVALID_ARGUMENT or NOT_FOUND, and `extra_info` only travels in a separate trailer.
* No exception gives RESOURCE_EXHAUSTED: Arrow's transport status codes have none (its server
  can send only the codes above). A limit reached (`ResourceExhausted`) therefore travels as
  UNAVAILABLE, its message starting with "resource exhausted:", which names the limit.
* When that formatting raises, pyarrow falls back to `Python exception: <type name>`. The
  exception types below make it raise (their `__notes__` refuses to be read), so clients see
  `<message>. Detail: Python exception: InvalidArgument` with the right code. These types exist
  only to be raised into pyarrow at the RPC boundary; never log or re-raise them elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, NoReturn, ParamSpec, TypeVar

import pyarrow as pa
from pyarrow import flight

from meshgate.audit import error_id_of
from meshgate.errors import MeshgateError, Status

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class _WithoutTraceback:
    """Makes pyarrow's status-detail formatting fall back to the bare type name."""

    @property
    def __notes__(self) -> list[str]:
        raise LookupError("client-facing error: no traceback in the gRPC message")

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # type: ignore[attr-defined]


class InvalidArgument(_WithoutTraceback, pa.ArrowInvalid):  # type: ignore[misc]
    """Raised into pyarrow for gRPC INVALID_ARGUMENT."""


class NotFound(_WithoutTraceback, pa.ArrowKeyError):  # type: ignore[misc]
    """Raised into pyarrow for gRPC NOT_FOUND."""


class Unimplemented(_WithoutTraceback, pa.ArrowNotImplementedError):  # type: ignore[misc]
    """Raised into pyarrow for gRPC UNIMPLEMENTED (clients read it as "feature absent")."""


_BY_STATUS: dict[Status, Callable[[str], Exception]] = {
    Status.INVALID_ARGUMENT: InvalidArgument,
    Status.NOT_FOUND: NotFound,
    Status.UNIMPLEMENTED: Unimplemented,
    Status.PERMISSION_DENIED: flight.FlightUnauthorizedError,
    Status.UNAUTHENTICATED: flight.FlightUnauthenticatedError,
    Status.UNAVAILABLE: flight.FlightUnavailableError,
    Status.DEADLINE_EXCEEDED: flight.FlightTimedOutError,
    Status.RESOURCE_EXHAUSTED: lambda message: flight.FlightUnavailableError(
        f"resource exhausted: {message}"),
    Status.CANCELLED: flight.FlightCancelledError,
    Status.INTERNAL: flight.FlightInternalError,
}

_PASS_THROUGH = (flight.FlightError, InvalidArgument, NotFound, Unimplemented)


def client_error(exc: BaseException, *, admin: bool = False) -> BaseException:
    """The exception to raise into pyarrow for `exc`; unexpected ones are logged with an id.

    `admin`: the caller holds an admin role, and may be told which source failed.
    """
    if isinstance(exc, _PASS_THROUGH):
        return exc
    if isinstance(exc, MeshgateError) and exc.status is Status.UNAVAILABLE:
        # A source's message names hosts, databases and users: physical names the caller
        # must not learn (ARCHITECTURE.md §4.6). The operator finds them by the error id;
        # an admin is told the source's configured name, never its address or credentials.
        error_id = error_id_of(exc)
        log.warning("source unavailable (error id %s): %s", error_id, exc, extra=_of_query(exc))
        source = getattr(exc, "source", None) if admin else None
        which = f"source {source!r}, which this query reads," if source else \
            "a source this query reads"
        unavailable: BaseException = flight.FlightUnavailableError(
            f"{which} is unavailable right now (error id {error_id}); retry later, or ask "
            "the administrator: the server log has the details under this id"
        )
        return unavailable
    if isinstance(exc, MeshgateError) and exc.detail is not None:
        # The engine's own text (it may quote a row's value) is for the operator's eyes only.
        error_id = error_id_of(exc)
        log.warning("%s (error id %s): %s", exc.status.value, error_id, exc,
                    extra=_of_query(exc))
        return _BY_STATUS[exc.status](
            f"{exc.message} (error id {error_id}; the server log has the details under this id)"
        )
    if isinstance(exc, MeshgateError):
        return _BY_STATUS[exc.status](exc.message)
    error_id = error_id_of(exc)
    log.error("internal error %s", error_id, exc_info=exc, extra=_of_query(exc))
    internal: BaseException = flight.FlightInternalError(
        f"internal error {error_id}; the server log has the details under this id"
    )
    return internal


def _of_query(exc: BaseException) -> dict[str, str | None]:
    """The log record's `query_id`: the query's the error ended (its error id then)."""
    return {"query_id": getattr(exc, "query_id", None)}


def raise_client_error(exc: BaseException, *, admin: bool = False) -> NoReturn:
    raise client_error(exc, admin=admin) from None


def _caller_is_admin(args: tuple[Any, ...]) -> bool:
    """Whether a server method's caller (`self`, `context`, ...) is an admin: the server
    says so through its `caller_is_admin(context)`; anything else is not."""
    if len(args) < 2 or not isinstance(args[1], flight.ServerCallContext):
        return False
    check = getattr(args[0], "caller_is_admin", None)
    try:
        return callable(check) and bool(check(args[1]))
    except Exception:  # an unauthenticated call: certainly no admin
        return False


def at_boundary(method: Callable[P, R]) -> Callable[P, R]:
    """Decorate a FlightServerBase method so every error leaves it as a clean gRPC status."""

    @wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            raise_client_error(exc, admin=_caller_is_admin(args))

    return wrapper


def guarded(items: Iterator[Any], *, admin: bool = False) -> Iterator[Any]:
    """Map errors raised while pyarrow pulls a lazy stream (DoGet, DoAction results)."""
    try:
        yield from items
    except Exception as exc:
        raise_client_error(exc, admin=admin)
