"""Session options `catalog`, `schema`, `strict_pushdown`, the session's own lower limits
`max_result_rows`, `max_result_bytes` and `query_timeout_seconds`, `result_endpoints`
(server/endpoints.py) and `residual_engine` (server/residual.py), per bearer token (P25).

The Flight-level session actions carry raw (not Any-wrapped) Flight.proto messages and answer
exactly one Result. JDBC sets `catalog` at connect and fails the connection on any error in the
result, so only names the caller cannot see are refused.

Both options are always reported, so ADBC's current catalog and schema calls answer. Until a
client sets `schema` it is `NO_SCHEMA` (empty: no current domain, so product names are written
`domain.product`, and SHOW TABLES lists every domain); setting it to the empty text clears it.
"""

from __future__ import annotations

import math
import threading

from meshgate.catalog.catalog import CatalogView
from meshgate.execution.limits import ResultLimits
from meshgate.server.proto import flight_pb2 as pb
from meshgate.server.residual import CHOICES as RESIDUAL_CHOICES
from meshgate.server.residual import OPTION as RESIDUAL
from meshgate.service import QueryOptions

SetError = pb.SetSessionOptionsResult.ErrorValue

NO_SCHEMA = ""


class SessionStore:
    """Current catalog and schema of each session (keyed by the session's bearer token)."""

    def __init__(self, ceilings: ResultLimits | None = None, max_endpoints: int = 1) -> None:
        # The configured limits a session may lower and never raise.
        self._ceilings = ceilings if ceilings is not None else ResultLimits()
        self._max_endpoints = max_endpoints
        self._options: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def set_options(self, token: str, view: CatalogView,
                    request: pb.SetSessionOptionsRequest) -> bytes:
        result = pb.SetSessionOptionsResult()
        accepted: dict[str, str] = {}
        for name, value in request.session_options.items():
            if name in _LIMITS:
                error = _check_limit(name, value, self._ceilings)
            elif name == ENDPOINTS:
                error = _check_endpoints(value, self._max_endpoints)
            elif name == RESIDUAL:
                error = None if value.WhichOneof("option_value") == "string_value" and \
                    value.string_value in RESIDUAL_CHOICES else SetError.INVALID_VALUE
            else:
                error = _check(name, value, view)
            if error is None:
                accepted[name] = _text(value)
            else:
                result.errors[name].value = error
        with self._lock:
            self._options.setdefault(token, {}).update(accepted)
        return result.SerializeToString()

    def get_options(self, token: str, view: CatalogView) -> bytes:
        result = pb.GetSessionOptionsResult()
        with self._lock:
            current = {"catalog": view.name, "schema": NO_SCHEMA,
                       **self._options.get(token, {})}
        for name, value in current.items():
            result.session_options[name].string_value = value
        return result.SerializeToString()

    def close(self, token: str) -> bytes:
        self.forget(token)
        return pb.CloseSessionResult(status=pb.CloseSessionResult.CLOSED).SerializeToString()

    def options(self, token: str) -> QueryOptions:
        """What the session's statements run with: current domain and strict pushdown."""
        with self._lock:
            current = dict(self._options.get(token, {}))
        strict = current.get("strict_pushdown")
        rows, size, timeout = (current.get(name) for name in _LIMITS)
        limits = None if rows is None and size is None and timeout is None else ResultLimits(
            None if rows is None else int(float(rows)), None if size is None else int(float(size)),
            None if timeout is None else float(timeout))
        return QueryOptions(
            default_domain=current.get("schema") or None,
            strict=None if strict is None else strict == "true",
            limits=limits,
            residual_engine=current.get(RESIDUAL),
        )

    def result_endpoints(self, token: str) -> int | None:
        """The endpoint count the session asked for, if it did."""
        with self._lock:
            text = self._options.get(token, {}).get(ENDPOINTS)
        return None if text is None else int(float(text))

    def forget(self, token: str) -> None:
        with self._lock:
            self._options.pop(token, None)


_LIMITS = ("max_result_rows", "max_result_bytes", "query_timeout_seconds")
ENDPOINTS = "result_endpoints"


def _check_endpoints(value: pb.SessionOptionValue,
                     most: int) -> pb.SetSessionOptionsResult.ErrorValue | None:  # fmt: skip
    """A whole number from 1 to `server.result_endpoints.max`."""
    number = _number(value)
    if number is None or number != int(number) or not 1 <= number <= most:
        return SetError.INVALID_VALUE
    return None


def _check_limit(name: str, value: pb.SessionOptionValue,
                 ceilings: ResultLimits) -> pb.SetSessionOptionsResult.ErrorValue | None:
    """A positive number (integral for rows and bytes) no higher than the configured limit."""
    number = _number(value)
    integral = name != "query_timeout_seconds"
    if number is None or not number > 0 or (integral and number != int(number)):
        return SetError.INVALID_VALUE
    ceiling = {"max_result_rows": ceilings.max_rows, "max_result_bytes": ceilings.max_bytes,
               "query_timeout_seconds": ceilings.timeout_seconds}[name]  # fmt: skip
    if ceiling is not None and number > ceiling:
        return SetError.INVALID_VALUE  # a session may lower a limit, never raise it
    return None


def _number(value: pb.SessionOptionValue) -> float | None:
    kind = value.WhichOneof("option_value")
    if kind == "int64_value":
        return float(value.int64_value)
    if kind == "double_value":
        number = value.double_value
    elif kind == "string_value":
        try:
            number = float(value.string_value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _text(value: pb.SessionOptionValue) -> str:
    """Options are kept as text; booleans (strict_pushdown) as 'true' / 'false'."""
    kind = value.WhichOneof("option_value")
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int64_value":
        return str(value.int64_value)
    if kind == "double_value":
        return repr(value.double_value)
    return value.string_value


def _check(name: str, value: pb.SessionOptionValue,
           view: CatalogView) -> pb.SetSessionOptionsResult.ErrorValue | None:
    if name == "strict_pushdown":
        kind = value.WhichOneof("option_value")
        if kind == "bool_value" or (kind == "string_value"
                                    and value.string_value in ("true", "false")):
            return None
        return SetError.INVALID_VALUE
    if name not in ("catalog", "schema"):
        return SetError.INVALID_NAME
    if value.WhichOneof("option_value") != "string_value":
        return SetError.INVALID_VALUE
    if name == "catalog" and value.string_value != view.name:
        return SetError.INVALID_VALUE
    if name == "schema" and value.string_value not in {NO_SCHEMA} | {
            d.name for d in view.domains()}:
        return SetError.INVALID_VALUE
    return None
