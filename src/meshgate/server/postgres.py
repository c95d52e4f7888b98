"""The PostgreSQL wire-protocol front end (`server.postgres_port`): psql, psycopg and BI tools.

The protocol's framing, startup, simple and extended query messages come from buenavista 0.5.0
(PyPI, Apache-2.0, pure Python, runs on 3.11; one maintainer, releases are rare). riffq 0.1.11
(Rust pgwire bindings, with TLS and an auth callback) would be the stronger base, but it ships
no wheel for this platform and Python: installing it means compiling a Rust crate tree, which
no deployment step here does. buenavista's gaps are closed here, in small overrides, because
each one touches governance or correctness:

* authentication: buenavista offers only MD5 against clear-text passwords it holds (no SCRAM,
  no TLS); here the default is SCRAM-SHA-256 (`server/scram.py`, against the SCRAM verifiers
  users' hashes can be), and `server.postgres_auth: password` asks for a clear-text password
  checked with `QueryService.authenticate`; both have Flight SQL's users, back-off and audit;
* errors: buenavista sends only a message; here every error carries severity and a SQLSTATE,
  and its text is the one Flight SQL clients see (`server.errors.client_error`);
* describing a prepared statement: buenavista runs the query with made-up parameters; here the
  columns come from `QueryService.prepare`, and statements without rows answer NoData;
* parameters: psycopg sends text with type OID 0, which buenavista would parse as a date, and
  booleans and dates in binary, which it cannot read; booleans go out as `true`/`false`, which
  psycopg reads as False (PostgreSQL's text is `t`/`f`).

Every statement goes through the same `QueryService.prepare`/`execute` as Flight SQL, so grants,
row filters, masks and audit apply unchanged. Only client session chatter (SET, SHOW, BEGIN,
version()) is answered here from constants, psql's `\\d TABLE` queries by their shapes from
information_schema asked through the QueryService, and every other `pg_catalog` query
(psql's `\\dt`, SQLAlchemy's reflection, BI schema browsers) on the caller's own catalog
tables (`server/pg_catalog.py`); both hold only what the caller may read, and no pg_catalog query
ever reaches a source. A query's warnings (a deprecated product it reads) go
out as WARNING notices before its rows. TLS (`server.tls`) is added here as well: buenavista
answers every SSL request with 'N'; here the socket is wrapped when a certificate is
configured, and plaintext stays limited to loopback clients (buenavista's own rule).
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import json
import logging
import re
import secrets
import ssl
import struct
import tempfile
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from buenavista import core as bv  # type: ignore[import-untyped]
from buenavista import postgres as bvpg

from meshgate.catalog.tls import TlsMaterial
from meshgate.errors import (
    READ_ONLY,
    AuthenticationFailed,
    ColumnNotFound,
    ForbiddenStatement,
    MeshgateError,
    ParameterError,
    ProductNotFound,
    QueryValueError,
    ReadOnlyError,
    SqlSyntaxError,
    Status,
    UnsupportedCommandError,
)
from meshgate.principal import Principal
from meshgate.server.errors import client_error
from meshgate.server.pg_catalog import (
    CatalogQueries,
    is_catalog_query,
    relation_oid,
    relation_position,
)
from meshgate.server.scram import ScramExchange, end_point_binding
from meshgate.service import QueryService
from meshgate.spi import CancelToken

log = logging.getLogger(__name__)

# buenavista writes booleans as `true`/`false`; PostgreSQL's text format (which psycopg and
# psql read) is `t`/`f`, and psycopg reads anything but `t` as False.
_BOOL_OID, _, _bool_binary = bvpg.BVTYPE_TO_PGTYPE[bv.BVType.BOOL]
bvpg.BVTYPE_TO_PGTYPE[bv.BVType.BOOL] = (_BOOL_OID, lambda v: "t" if v else "f", _bool_binary)
# Binary parameters buenavista cannot unpack, which psycopg sends for bool and date (days since
# 2000-01-01, turned into a date by `_Handler.handle_bind`).
bvpg.TYPE_OIDS.setdefault(16, ("BOOLOID", "!?", True))
bvpg.TYPE_OIDS.setdefault(1082, ("DATEOID", "!i", 0))
_PG_EPOCH = dt.date(2000, 1, 1)
# buenavista knows only timestamps without time zone; a zoned one would reach psycopg naive.
# Its type table is keyed by anything, so timestamptz (OID 1184) gets a key of its own.
_TIMESTAMPTZ = "timestamptz"
_timestamp_text = bvpg.BVTYPE_TO_PGTYPE[bv.BVType.TIMESTAMP][1:]
bvpg.BVTYPE_TO_PGTYPE[_TIMESTAMPTZ] = (1184, *_timestamp_text)
# What PostgreSQL has no plain counterpart for goes as PostgreSQL's text forms, never in
# binary: intervals as `interval`, lists of numbers, text or booleans as arrays of them, and
# structs, maps and other lists as `json` (psycopg reads them as timedelta, list and dict).
_TEXT_ONLY = "text only"
bvpg.BVTYPE_TO_PGTYPE[_TEXT_ONLY] = (25, str)


def _interval_text(value: Any) -> str:
    """An Arrow interval (months, days, nanoseconds) or duration in PostgreSQL's own form."""
    if isinstance(value, dt.timedelta):
        months, days, nanoseconds = 0, value.days, (value.seconds * 10**6
                                                    + value.microseconds) * 1000
    else:
        months, days, nanoseconds = value.months, value.days, value.nanoseconds
    sign = "-" if nanoseconds < 0 else ""
    micro = abs(nanoseconds) // 1000
    hours, rest = divmod(micro, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micro = divmod(rest, 1_000_000)
    return (f"{months} mons {days} days {sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
            f".{micro:06d}")


def _array_text(values: Sequence[Any]) -> str:
    items = []
    for item in values:
        if item is None:
            items.append("NULL")
        elif isinstance(item, bool):
            items.append("t" if item else "f")
        elif isinstance(item, str):
            items.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            items.append(str(item))
    return "{" + ",".join(items) + "}"


def _json_text(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        value = dict(value)  # a map's (key, value) pairs
    return json.dumps(value, default=str)


_INTERVAL, _JSON = "interval", "json"
bvpg.BVTYPE_TO_PGTYPE[_INTERVAL] = (1186, _interval_text)
bvpg.BVTYPE_TO_PGTYPE[_JSON] = (114, _json_text)
# Element type -> the OID of PostgreSQL's array of it.
_ARRAYS = {pa.int16(): 1005, pa.int32(): 1007, pa.int64(): 1016, pa.float32(): 1021,
           pa.float64(): 1022, pa.bool_(): 1000, pa.string(): 1009, pa.large_string(): 1009}
for _element, _oid in _ARRAYS.items():
    bvpg.BVTYPE_TO_PGTYPE[f"array {_oid}"] = (_oid, _array_text)
# Catalog answers' arrays (`conkey`, `indkey`, ...) in PostgreSQL's text form, as text[], so
# that clients read them as lists (SQLAlchemy's key reflection does).
_TEXT_ARRAY = "text array"
bvpg.BVTYPE_TO_PGTYPE[_TEXT_ARRAY] = (
    1009, lambda v: "{" + ",".join('"' + str(x).replace('"', '\\"') + '"' for x in v) + "}")

SERVER_VERSION = "15.0 (meshgate)"

# Session chatter clients send at connect; answered from these, never planned.
_SETTINGS = {
    "server_version": SERVER_VERSION,
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "standard_conforming_strings": "on",
    "datestyle": "ISO, MDY",
    "timezone": "UTC",
    "integer_datetimes": "on",
    "transaction_isolation": "read committed",
    "transaction isolation level": "read committed",
    "is_superuser": "off",
}
_NO_OP = re.compile(
    r"^\s*(SET|RESET|BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|DISCARD|DEALLOCATE)\b",
    re.IGNORECASE,
)
_SHOW = re.compile(r"^\s*SHOW\s+(.+?)\s*;?\s*$", re.IGNORECASE)
_CONSTANT = re.compile(
    r"^\s*SELECT\s+(pg_catalog\.)?(version|current_schema|current_database)\s*\(\s*\)\s*;?\s*$",
    re.IGNORECASE,
)

# By status, then by kind where PostgreSQL tells them apart.
_SQLSTATE_BY_STATUS = {
    Status.INVALID_ARGUMENT: "42601",
    Status.NOT_FOUND: "42P01",
    Status.PERMISSION_DENIED: "42501",
    Status.UNAUTHENTICATED: "28P01",
    Status.UNAVAILABLE: "08006",
    Status.DEADLINE_EXCEEDED: "57014",
    Status.RESOURCE_EXHAUSTED: "53000",  # insufficient_resources
    Status.CANCELLED: "57014",
    Status.UNIMPLEMENTED: "0A000",
    Status.INTERNAL: "XX000",
}
_SQLSTATE_BY_KIND: tuple[tuple[type[MeshgateError], str], ...] = (
    (ReadOnlyError, "25006"),
    (ParameterError, "22023"),
    (QueryValueError, "22023"),
    (ColumnNotFound, "42703"),
    (ProductNotFound, "42P01"),
    (SqlSyntaxError, "42601"),
    (ForbiddenStatement, "42601"),
)

# psql's `\d TABLE` name patterns (anchored regular expressions on the names).
_PSQL_NAME_FILTER = re.compile(
    r"\b(n\.nspname|c\.relname)\s+OPERATOR\(pg_catalog\.~\)\s+'((?:[^']|'')*)'")
# Asked through the QueryService, so the list holds only what the caller may read.
_VISIBLE_TABLES = ("SELECT table_schema, table_name FROM information_schema.tables "
                   "WHERE table_type = 'BASE TABLE' ORDER BY 1, 2")

# psql's `\d TABLE`: a lookup of the name, then the relation's flags and columns by the OID the
# lookup gave, then its indexes, policies, statistics, publications and inheritance (none here).
_PSQL_FIND_RELATION = re.compile(
    r"^\s*SELECT\s+c\.oid,\s*n\.nspname,\s*c\.relname\s+FROM\s+pg_catalog\.pg_class\s+c\b")
_PSQL_BY_OID = re.compile(r"\b(?:c\.oid|a\.attrelid)\s*=\s*'(\d+)'")
_PSQL_RELATION_FLAGS = re.compile(r"^\s*SELECT\s+c\.relchecks,")
_PSQL_COLUMNS = re.compile(r"FROM\s+pg_catalog\.pg_attribute\s+a\s+WHERE\s+a\.attrelid\s*=")
# (the shape, how many columns psql reads): answered with no rows.
_PSQL_NOTHING = (
    (re.compile(r"FROM\s+pg_catalog\.pg_class\s+c,\s*pg_catalog\.pg_class\s+c2,\s*"
                r"pg_catalog\.pg_index\s+i"), 12),
    (re.compile(r"FROM\s+pg_catalog\.pg_policy\s+pol"), 6),
    (re.compile(r"FROM\s+pg_catalog\.pg_statistic_ext\b"), 9),
    (re.compile(r"FROM\s+pg_catalog\.pg_publication\s+p\b"), 3),
    (re.compile(r"^\s*SELECT\s+c\.oid::pg_catalog\.regclass\s+FROM\s+pg_catalog\.pg_class\s+c,"
                r"\s*pg_catalog\.pg_inherits"), 1),
    (re.compile(r"^\s*SELECT\s+c\.oid::pg_catalog\.regclass,\s*c\.relkind,\s*inhdetachpending"), 4),
)
_RELATION_FLAGS = pa.schema([(name, kind) for name, kind in (
    ("relchecks", pa.int64()), ("relkind", pa.string()), ("relhasindex", pa.bool_()),
    ("relhasrules", pa.bool_()), ("relhastriggers", pa.bool_()), ("relrowsecurity", pa.bool_()),
    ("relforcerowsecurity", pa.bool_()), ("relhasoids", pa.bool_()),
    ("relispartition", pa.bool_()), ("reloptions", pa.string()), ("reltablespace", pa.int64()),
    ("reloftype", pa.string()), ("relpersistence", pa.string()), ("relreplident", pa.string()),
    ("amname", pa.string()))])  # fmt: skip
_PG_TYPE_NAMES = {"BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint",
                  "TINYINT": "smallint", "DOUBLE": "double precision", "FLOAT": "real",
                  "REAL": "real", "VARCHAR": "character varying", "BOOLEAN": "boolean",
                  "DATE": "date", "BLOB": "bytea", "TIME": "time without time zone",
                  "TIMESTAMP": "timestamp without time zone", "UUID": "uuid", "JSON": "json",
                  "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
                  "INTERVAL": "interval"}  # fmt: skip


def pg_type_name(meshgate_type: str) -> str:
    """How psql's `format_type` would name one of meshgate's column types."""
    if meshgate_type.endswith("[]"):
        return pg_type_name(meshgate_type[:-2]) + "[]"
    if meshgate_type.startswith("DECIMAL"):
        return "numeric" + meshgate_type[len("DECIMAL"):].replace(" ", "")
    return _PG_TYPE_NAMES.get(meshgate_type, meshgate_type.lower())


_TEXT_OID, _UNKNOWN_OID = 25, 0
_FROM_TEXT: dict[int, Any] = {16: lambda v: v.lower() in ("t", "true", "1", "on", "yes"),
                              20: int, 21: int, 23: int, 700: float, 701: float,
                              1700: Decimal, 1082: dt.date.fromisoformat}  # fmt: skip


def _typed(value: Any, oid: int) -> Any:
    """A bound parameter as the Python value its type OID says (text or binary format)."""
    if isinstance(value, str) and oid in _FROM_TEXT:
        return _FROM_TEXT[oid](value)
    if oid == 1082 and isinstance(value, int):
        return _PG_EPOCH + dt.timedelta(days=value)
    return value


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE a PostgreSQL client reads for one of meshgate's errors."""
    if isinstance(exc, ForbiddenStatement) and READ_ONLY in exc.message:
        return "25006"  # read_only_sql_transaction: a write, DDL or lock on a read-only server
    for kind, code in _SQLSTATE_BY_KIND:
        if isinstance(exc, kind):
            return code
    if isinstance(exc, MeshgateError):
        return _SQLSTATE_BY_STATUS[exc.status]
    return "XX000"


def _bv_type(arrow: pa.DataType) -> Any:
    """The buenavista column type (and so the PostgreSQL type OID) for an Arrow type."""
    if pa.types.is_int64(arrow) or pa.types.is_uint32(arrow):
        return bv.BVType.BIGINT
    if pa.types.is_uint64(arrow):  # up to 2^64 - 1: beyond bigint, so numeric
        return bv.BVType.DECIMAL
    if pa.types.is_integer(arrow):
        return bv.BVType.INTEGER
    if pa.types.is_floating(arrow):
        return bv.BVType.FLOAT
    if pa.types.is_decimal(arrow):
        return bv.BVType.DECIMAL
    if pa.types.is_boolean(arrow):
        return bv.BVType.BOOL
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
        return bv.BVType.BYTES
    if pa.types.is_date(arrow):
        return bv.BVType.DATE
    if pa.types.is_time(arrow):
        return bv.BVType.TIME
    if pa.types.is_timestamp(arrow):
        return _TIMESTAMPTZ if arrow.tz is not None else bv.BVType.TIMESTAMP
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return bv.BVType.TEXT
    if pa.types.is_interval(arrow) or pa.types.is_duration(arrow):
        return _INTERVAL
    if (pa.types.is_list(arrow) or pa.types.is_large_list(arrow)) and \
            arrow.value_type in _ARRAYS:
        return f"array {_ARRAYS[arrow.value_type]}"
    if pa.types.is_nested(arrow):
        return _JSON
    return _TEXT_ONLY


class _Result(bv.QueryResult):  # type: ignore[misc]
    """Rows (or only the columns, for Describe) of one statement, or a command tag."""

    def __init__(self, schema: pa.Schema | None, rows: Sequence[Sequence[Any]] = (),
                 tag: str = "", warnings: Sequence[str] = ()) -> None:  # fmt: skip
        self._formats: list[int] | None = None
        self.warnings = list(warnings)  # sent once, as notices, before the first row
        self._columns = [] if schema is None else [(f.name, _bv_type(f.type)) for f in schema]
        super().__init__()
        self._has_rows = schema is not None
        self.schema = schema
        self._rows = rows
        self._tag = tag

    def as_text_arrays(self) -> None:
        """List columns go out as PostgreSQL text arrays rather than Python's text."""
        if self.schema is not None:
            self._columns = [(name, _TEXT_ARRAY if pa.types.is_list(field.type) else kind)
                             for (name, kind), field in zip(self._columns, self.schema,
                                                            strict=True)]  # fmt: skip

    @property
    def result_format(self) -> list[int] | None:
        return self._formats

    @result_format.setter
    def result_format(self, formats: list[int] | None) -> None:
        """Set by buenavista from the client's Bind; binary only where it can write it."""
        for (name, kind), code in zip(self._columns, formats or (), strict=False):
            if code == 1 and len(bvpg.BVTYPE_TO_PGTYPE.get(kind, ())) < 3:
                raise UnsupportedCommandError(
                    f"column {name!r} cannot be sent in binary format yet; ask for text "
                    "results (psycopg: a cursor without binary=True)")
        self._formats = formats

    def has_results(self) -> bool:
        return self._has_rows

    def column_count(self) -> int:
        return len(self._columns)

    def column(self, index: int) -> tuple[str, Any]:
        return self._columns[index]

    def rows(self) -> Iterator[Sequence[Any]]:
        return iter(self._rows)

    def status(self) -> str:
        return self._tag


def _text(name: str, value: str) -> _Result:
    return _Result(pa.schema([(name, pa.string())]), [[value]])


class _Session(bv.Session):  # type: ignore[misc]
    """One client connection: its principal once signed in, and the shared QueryService."""

    def __init__(self, service: QueryService, catalog_queries: CatalogQueries) -> None:
        super().__init__()
        self.service = service
        self.catalog_queries = catalog_queries
        self.principal: Principal | None = None
        self.client: str | None = None
        self._running: CancelToken | None = None

    def close(self) -> None:
        self.cancel()

    def cancel(self) -> None:
        """A client's cancel request (psql's Ctrl-C): stop the running query at its sources;
        the connection stays open and the query ends with 57014."""
        running = self._running
        if running is not None:
            running.cancel()

    def in_transaction(self) -> bool:
        return False

    def _signed_in(self) -> Principal:
        if self.principal is None:
            raise AuthenticationFailed("sign in first")
        return self.principal

    def chatter(self, sql: str) -> _Result | None:
        """The answer to a session-setup statement or to psql's `\\d`, or None for a query to
        plan (or for the catalog)."""
        if (relation := self.psql_describe(sql)) is not None:
            return relation
        if match := _NO_OP.match(sql):
            return _Result(None, tag=match.group(1).split()[0].upper())
        if match := _SHOW.match(sql):
            name = match.group(1).strip().lower()
            if name not in _SETTINGS:
                raise ForbiddenStatement(f"unrecognized configuration parameter {name!r}")
            return _text(name, _SETTINGS[name])
        if match := _CONSTANT.match(sql):
            function = match.group(2).lower()
            value = {"version": f"PostgreSQL {SERVER_VERSION}", "current_schema": "public",
                     "current_database": "meshgate"}[function]  # fmt: skip
            return _text(function, value)
        return None

    def _visible_tables(self) -> list[tuple[str, str]]:
        prepared = self.service.prepare(_VISIBLE_TABLES, self._signed_in(), client=self.client)
        return [(row["table_schema"], row["table_name"])
                for row in self.service.execute(prepared).read_all().to_pylist()]  # fmt: skip

    def psql_describe(self, sql: str) -> _Result | None:
        """psql's `\\d TABLE` queries, answered from the products the caller may read: a
        product's OID is its place in that list, so it names nothing the caller cannot see."""
        if _PSQL_FIND_RELATION.search(sql):
            filters = {column: re.compile(pattern.replace("''", "'"))
                       for column, pattern in _PSQL_NAME_FILTER.findall(sql)}  # fmt: skip
            key = {"n.nspname": 0, "c.relname": 1}
            rows = [[relation_oid(i), schema, name]
                    for i, (schema, name) in enumerate(self._visible_tables())
                    if all(p.fullmatch((schema, name)[key[c]]) for c, p in filters.items())]
            return _Result(pa.schema([("oid", pa.int64()), ("nspname", pa.string()),
                                      ("relname", pa.string())]), rows)  # fmt: skip
        for shape, width in _PSQL_NOTHING:
            if shape.search(sql):
                return _Result(pa.schema([(f"column{i}", pa.string()) for i in range(width)]))
        by_oid = _PSQL_BY_OID.search(sql)
        if by_oid is None or not (_PSQL_RELATION_FLAGS.search(sql) or _PSQL_COLUMNS.search(sql)):
            return None
        tables = self._visible_tables()
        index = relation_position(int(by_oid.group(1)))
        found = tables[index] if index is not None and index < len(tables) else None
        if _PSQL_RELATION_FLAGS.search(sql):
            flags = [0, "r", False, False, False, False, False, False, False, "", 0, "", "p", "d",
                     "heap"]  # fmt: skip
            return _Result(_RELATION_FLAGS, [flags] if found else [])
        schema = pa.schema([("attname", pa.string()), ("format_type", pa.string()),
                            ("default", pa.string()), ("attnotnull", pa.bool_()),
                            ("attcollation", pa.string()), ("attidentity", pa.string()),
                            ("attgenerated", pa.string())])  # fmt: skip
        if found is None:
            return _Result(schema)
        prepared = self.service.prepare(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            self._signed_in(), client=self.client)  # fmt: skip
        columns = self.service.execute(prepared, found).read_all().to_pylist()
        return _Result(schema, [[c["column_name"], pg_type_name(c["data_type"]), None,
                                 c["is_nullable"] == "NO", None, "", ""] for c in columns])

    def catalog(self, sql: str, params: Sequence[Any]) -> _Result | None:
        """A `pg_catalog` query (SQLAlchemy's reflection, BI tools' schema browsers) answered
        from the caller's own catalog, or None for any other statement."""
        if not is_catalog_query(sql):
            return None
        table = self.catalog_queries.run(self.service.current_principal(self._signed_in()),
                                         sql, params)  # fmt: skip
        result = _Result(table.schema, [list(row.values()) for row in table.to_pylist()])
        result.as_text_arrays()
        return result

    def describe(self, sql: str, parameters: int = 0) -> _Result:
        """The columns a statement returns, planned but not run."""
        answer = self.chatter(sql)
        if answer is not None:
            return answer
        if (catalog := self.catalog(sql, [None] * parameters)) is not None:
            return _Result(catalog.schema)
        prepared = self.service.prepare(sql, self._signed_in(), client=self.client)
        return _Result(prepared.schema)

    def execute_sql(self, sql: str, params: Sequence[Any] | None = None) -> _Result:
        answer = self.chatter(sql)
        if answer is not None:
            return answer
        if not sql.strip().rstrip(";").strip():
            return _Result(None, tag="EMPTY")
        if (catalog := self.catalog(sql, list(params or ()))) is not None:
            return catalog
        prepared = self.service.prepare(sql, self._signed_in(), client=self.client)
        self._running = token = CancelToken()
        try:
            table = self.service.execute(prepared, tuple(params or ()), cancel=token).read_all()
        finally:
            self._running = None
        rows = [list(row.values()) for row in table.to_pylist()]
        return _Result(table.schema, rows, warnings=prepared.warnings)


class _Connection(bv.Connection):  # type: ignore[misc]
    def __init__(self, service: QueryService) -> None:
        super().__init__()
        self.service = service
        self.catalog_queries = CatalogQueries(service)

    def new_session(self) -> _Session:
        return _Session(self.service, self.catalog_queries)

    def parameters(self) -> dict[str, str]:
        return {name: _SETTINGS[name] for name in (
            "server_version", "server_encoding", "client_encoding",
            "standard_conforming_strings", "integer_datetimes")} | {"DateStyle": "ISO, MDY",
                                                                     "TimeZone": "UTC"}  # fmt: skip


def _cstring_at(payload: bytes, start: int = 0) -> tuple[str, int]:
    end = payload.index(b"\x00", start)
    return payload[start:end].decode(), end + 1


_SSL_REQUEST = 80877103  # the startup code a client sends to ask for TLS first
_CANCEL_REQUEST = 80877102  # ... and to cancel the query of another connection


class _Replayed(io.RawIOBase):
    """A stream that gives back bytes already read from `rest` before reading on."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            taken, self._head = self._head[:size], self._head[size:]
            return taken if len(taken) == size else taken + self._rest.read(size - len(taken))
        data: bytes = self._rest.read(size)
        return data


class _SocketWriter(io.RawIOBase):
    """Unbuffered writes that always send everything (TLS sockets may write partially)."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sock.sendall(data)
        return len(data)


class _Handler(bvpg.BuenaVistaHandler):  # type: ignore[misc]
    """buenavista's protocol loop with meshgate's sign-in, errors, Describe and parameters."""

    server: _PostgresServer
    encrypted = False
    request: Any  # socketserver's socket (an SSLSocket once TLS is on)
    wfile: Any
    r: Any  # buenavista's reader

    def handle_startup(self, conn: Any) -> Any:
        """TLS first when the client asks (SSLRequest) and `server.tls` is set; otherwise 'N'
        and plaintext, as PostgreSQL answers. Plaintext is for loopback clients only."""
        head = self.r.read_bytes(8)
        if len(head) == 8 and struct.unpack("!II", head)[1] == _SSL_REQUEST:
            context = self.server.tls
            if context is None or self.encrypted:
                self.wfile.write(b"N")
            else:
                self.wfile.write(b"S")
                try:
                    self.request = context.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError) as exc:  # no or an untrusted client certificate
                    log.info("PostgreSQL client %s: TLS handshake failed (%s)",
                             self.client_address[0], exc)
                    return None
                self.encrypted = True
                self.rfile = self.request.makefile("rb")
                self.wfile = _SocketWriter(self.request)
            self.r = bvpg.BVBuffer(self.rfile)
            return self.handle_startup(conn)
        if len(head) == 8 and struct.unpack("!II", head)[1] == _CANCEL_REQUEST:
            # Sent on a connection of its own, never encrypted by libpq; it carries only the
            # key a connection was given, so it needs no sign-in.
            process_id, key = struct.unpack("!II", self.r.read_bytes(8))
            target = self.server.ctxts.get(process_id)
            if target is not None and secrets.compare_digest(
                    target.secret_key.to_bytes(4, "big"), key.to_bytes(4, "big")):
                target.session.cancel()
            return None
        if not self.encrypted and not _loopback(self.client_address[0]):
            self.send_error(AuthenticationFailed(
                "this server accepts clients of other hosts over TLS only; connect with "
                "sslmode=require (or verify-full with the server's CA)"))
            return None
        self.r = bvpg.BVBuffer(_Replayed(head, self.rfile))
        ctx = super().handle_startup(conn)
        if ctx is not None:  # buenavista draws the cancel key with `random`: not a secret
            ctx.process_id, ctx.secret_key = secrets.randbits(31), secrets.randbits(32)
        return ctx

    scram: ScramExchange | None = None

    def send_auth_request(self, ctx: Any) -> None:
        # Audit records name the connection as Flight SQL's do (gRPC's peer format).
        ctx.session.client = f"ipv4:{self.client_address[0]}:{self.client_address[1]}"
        if self.server.auth == "password":
            self.wfile.write(struct.pack("!cii", b"R", 8, 3))  # AuthenticationCleartextPassword
            return
        # The login back-off counts failures per user and address: the host, not the
        # connection's port, or every new connection would start a fresh count.
        binding = self.server.binding if self.encrypted else None
        self.scram = ScramExchange(self.server.service, ctx.params.get("user", ""),
                                   self.client_address[0], binding)  # fmt: skip
        mechanisms = b"".join(m.encode() + b"\x00" for m in self.scram.mechanisms) + b"\x00"
        self.wfile.write(struct.pack("!cii", b"R", 8 + len(mechanisms), 10) + mechanisms)

    def handle_md5_password(self, ctx: Any, payload: bytes) -> None:
        """A PasswordMessage: the clear-text password, or one step of the SASL exchange."""
        try:
            if self.scram is not None:
                reply = self.scram.step(payload)
                if isinstance(reply, bytes):  # AuthenticationSASLContinue
                    self.wfile.write(struct.pack("!cii", b"R", 8 + len(reply), 11) + reply)
                    return
                ctx.session.principal, final = reply
                self.wfile.write(struct.pack("!cii", b"R", 8 + len(final), 12) + final)
            else:
                ctx.session.principal = self.server.service.authenticate(
                    ctx.params.get("user", ""), payload.rstrip(b"\x00").decode(),
                    self.client_address[0])  # fmt: skip
        except Exception as exc:  # the client closes the connection after this error
            self.send_error(exc)
            return
        self.send_authentication_ok()
        self.handle_post_auth(ctx)

    def send_error(self, exception: Any, ctx: Any = None) -> None:
        if isinstance(exception, BaseException):
            code = sqlstate(exception)
            message = str(client_error(exception))
            message = message.split(". Detail:", 1)[0]
        else:
            code, message = "XX000", str(exception)
        body = b"".join(field + value.encode() + b"\x00" for field, value in (
            (b"S", "ERROR"), (b"V", "ERROR"), (b"C", code), (b"M", message))) + b"\x00"
        self.wfile.write(struct.pack("!ci", b"E", len(body) + 4) + body)
        if ctx is not None:
            ctx.mark_error()

    def send_data_rows(self, query_result: Any, limit: int = 0) -> int:
        """The rows, after a WARNING notice (SQLSTATE 01P01, deprecated_feature) per warning
        of the query: psql prints them, psycopg hands them to its notice handlers."""
        warnings: list[str] = getattr(query_result, "warnings", [])
        for warning in warnings:
            body = b"".join(field + value.encode() + b"\x00" for field, value in (
                (b"S", "WARNING"), (b"V", "WARNING"), (b"C", "01P01"), (b"M", warning)))
            self.wfile.write(struct.pack("!ci", b"N", len(body) + 5) + body + b"\x00")
        warnings.clear()
        sent: int = super().send_data_rows(query_result, limit)
        return sent

    def handle_parse(self, ctx: Any, payload: bytes) -> None:
        super().handle_parse(ctx, payload)
        name, _ = _cstring_at(payload)
        sql, oids = ctx.stmts[name]
        # Untyped (OID 0) parameters arrive as text; buenavista would parse them as dates.
        ctx.stmts[name] = (sql, [_TEXT_OID if oid == _UNKNOWN_OID else oid for oid in oids])

    def handle_bind(self, ctx: Any, payload: bytes) -> None:
        portal, at = _cstring_at(payload)
        statement, _ = _cstring_at(payload, at)
        if ctx.has_error:
            return
        oids = ctx.stmts[statement][1]
        try:
            super().handle_bind(ctx, payload)
            _, params, formats = ctx.portals[portal]
            typed = [_typed(value, oid) for value, oid in zip(params, oids, strict=False)]
        except Exception as exc:  # buenavista reads binary only for integers and floats
            self.send_error(ParameterError(
                f"a bound parameter could not be read ({exc}); send it in text format, or as "
                "a string the query casts"), ctx)
            return
        ctx.portals[portal] = (statement, typed, formats)

    def handle_describe(self, ctx: Any, payload: bytes) -> None:
        if ctx.has_error:  # after an error, messages up to Sync are skipped
            return
        kind, name = payload[:1], payload[1:].rstrip(b"\x00").decode()
        try:
            if kind == b"S":
                sql, oids = ctx.stmts[name]
                result = ctx.session.describe(sql, len(oids))
                self.send_paramter_description(oids)
            else:
                result = ctx.describe_portal(name)
        except Exception as exc:
            self.send_error(exc, ctx)
            return
        if result.has_results():
            self.send_row_description(result)
        else:
            self.wfile.write(struct.pack("!ci", b"n", 4))  # NoData

    def handle_execute(self, ctx: Any, payload: bytes) -> None:
        portal, _ = _cstring_at(payload)
        cached = ctx.result_cache.get(portal)
        if cached is not None and not cached.has_results() and cached.status() == "EMPTY":
            self.wfile.write(struct.pack("!ci", b"I", 4))  # EmptyQueryResponse
            del ctx.result_cache[portal]
            return
        super().handle_execute(ctx, payload)


class _PostgresServer(bvpg.BuenaVistaServer):  # type: ignore[misc]
    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: QueryService,
                 tls: ssl.SSLContext | None, auth: str, binding: bytes | None) -> None:
        super().__init__(address, _Connection(service), auth={})
        self.RequestHandlerClass = _Handler
        self.service = service
        self.tls = tls
        self.auth = auth
        self.binding = binding  # the certificate's hash, for SCRAM's channel binding over TLS

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # With TLS, other hosts may connect; the handler then refuses them plaintext.
        return self.tls is not None or _loopback(client_address[0])


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def tls_context(material: TlsMaterial) -> ssl.SSLContext:
    """The server side of TLS from `server.tls`: TLS 1.2 or newer, client certificates
    required when a client CA is configured."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory() as directory:  # ssl loads a chain and key from files
        chain, key = Path(directory) / "chain.pem", Path(directory) / "key.pem"
        chain.write_bytes(material.cert_chain)
        key.touch(0o600)
        key.write_bytes(material.private_key)
        context.load_cert_chain(chain, key)
    if material.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=material.client_ca.decode())
    return context


class PostgresFrontEnd:
    """Serves the PostgreSQL wire protocol on its own threads; `.port` is the bound port."""

    def __init__(self, service: QueryService, host: str = "127.0.0.1", port: int = 0,
                 tls: TlsMaterial | None = None, *,
                 auth: Literal["scram-sha-256", "password"] = "scram-sha-256") -> None:
        context = tls_context(tls) if tls is not None else None
        binding = end_point_binding(tls.cert_chain) if tls is not None else None
        self._server = _PostgresServer((host, port), service, context, auth, binding)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="meshgate-postgres", daemon=True)  # fmt: skip

    def start(self) -> PostgresFrontEnd:
        self._thread.start()
        log.info("PostgreSQL wire protocol on port %d", self.port)
        return self

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.conn.catalog_queries.close()
