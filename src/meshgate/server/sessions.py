"""Session options `catalog`, `schema` and `strict_pushdown`, per bearer token (P25).

The Flight-level session actions carry raw (not Any-wrapped) Flight.proto messages and answer
exactly one Result. JDBC sets `catalog` at connect and fails the connection on any error in the
result, so only names the caller cannot see are refused.

Both options are always reported, so ADBC's current catalog and schema calls answer. Until a
client sets `schema` it is `NO_SCHEMA` (empty: no current domain, so product names are written
`domain.product`, and SHOW TABLES lists every domain); setting it to the empty text clears it.
"""

from __future__ import annotations

import threading

from meshgate.catalog.catalog import CatalogView
from meshgate.server.proto import flight_pb2 as pb
from meshgate.service import QueryOptions

SetError = pb.SetSessionOptionsResult.ErrorValue

NO_SCHEMA = ""


class SessionStore:
    """Current catalog and schema of each session (keyed by the session's bearer token)."""

    def __init__(self) -> None:
        self._options: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def set_options(self, token: str, view: CatalogView,
                    request: pb.SetSessionOptionsRequest) -> bytes:
        result = pb.SetSessionOptionsResult()
        accepted: dict[str, str] = {}
        for name, value in request.session_options.items():
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
        return QueryOptions(
            default_domain=current.get("schema") or None,
            strict=None if strict is None else strict == "true",
        )

    def forget(self, token: str) -> None:
        with self._lock:
            self._options.pop(token, None)


def _text(value: pb.SessionOptionValue) -> str:
    """Options are kept as text; booleans (strict_pushdown) as 'true' / 'false'."""
    if value.WhichOneof("option_value") == "bool_value":
        return "true" if value.bool_value else "false"
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
