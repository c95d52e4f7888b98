"""A source's error as its caller may read it: a value the query computes, or the source failing.

A driver's own text quotes the value it failed on (possibly from a row a policy hides) and the
physical table, column and file it read: none of it may reach the caller (ARCHITECTURE.md
§4.6). So each connector only *classifies* its driver's errors (`SqlConnector._value_failure`)
into the kinds below, and the caller's message is built from the kind and a standard SQL type
name; the driver's text travels as the error's operator-only `detail`. DuckDB's classification
lives here because the merge, the DuckDB and the files connectors share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import duckdb

from meshgate.errors import QueryValueError, SourceUnavailable, UnsupportedQuery


class ValueFault(Enum):
    """What kind of computation failed; each value says it in the caller's words."""

    CONVERSION = "a value could not be converted"
    DATETIME = "a text value is not a valid date or time"
    OUT_OF_RANGE = "a value is out of range"
    DIVISION_BY_ZERO = "a division by zero"
    TOO_LONG = "a text value is too long"
    INVALID_ARGUMENT = "a function was given an argument it cannot take"
    INVALID_PATTERN = "a regular expression or LIKE pattern is invalid"
    OTHER = "a value is invalid for the operation applied to it"


# The type names a message may name: standard SQL types, never a source's own (enum, domain).
STANDARD_TYPES = frozenset({
    "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "REAL", "DOUBLE",
    "DECIMAL", "NUMERIC", "VARCHAR", "TEXT", "BLOB", "DATE", "TIME", "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE", "INTERVAL", "UUID", "JSON",
})  # fmt: skip
_PRECISION = re.compile(r"^(DECIMAL|NUMERIC)\(\d+(,\s*\d+)?\)$")


@dataclass(frozen=True)
class ValueFailure:
    """A value error of the user's query: its kind and the type it was computed as."""

    fault: ValueFault
    type_name: str | None = None  # a standard SQL type name, or None

    def __post_init__(self) -> None:
        name = self.type_name
        if name is not None and name not in STANDARD_TYPES and not _PRECISION.match(name):
            object.__setattr__(self, "type_name", None)

    def description(self) -> str:
        """`a cast or comparison to INTEGER failed: a value could not be converted`."""
        what = self.fault.value
        if self.type_name is None:
            return what
        if self.fault in (ValueFault.CONVERSION, ValueFault.DATETIME):
            return f"a cast or comparison to {self.type_name} failed: {what}"
        if self.fault in (ValueFault.OUT_OF_RANGE, ValueFault.TOO_LONG):
            return f"{what} for {self.type_name}"
        return what

    def error(self, detail: str) -> QueryValueError:
        return QueryValueError(
            f"a value in this query cannot be computed ({self.description()}); check the "
            "casts, the literals compared with columns and the arithmetic in the query",
            detail=detail,
        )


def source_failed(kind: str, detail: str) -> SourceUnavailable:
    """A source's failure that is not the query's fault, its driver's text kept for the log."""
    return SourceUnavailable(
        f"a {kind} source this query reads failed while answering it; retry later, or ask "
        "the administrator to check that the source is reachable and still has the "
        "configured tables and columns",
        detail=detail,
    )


# DuckDB's names of the types it fails to produce (physical names, e.g. INT32) as SQL names.
_DUCKDB_TYPES = {
    "BOOL": "BOOLEAN", "INT8": "TINYINT", "INT16": "SMALLINT", "INT32": "INTEGER",
    "INT64": "BIGINT", "INT128": "HUGEINT", "FLOAT": "REAL",
}  # fmt: skip
_DUCKDB_TARGET = re.compile(
    r"(?:Could not convert string .* to|destination type|to type|Overflow in \w+ of|range for) "
    r"([A-Z][A-Z0-9_]*(?: WITH TIME ZONE)?(?:\(\d+,\s*\d+\))?)"
)
_DUCKDB_DATETIME = (
    ("invalid date field format", "DATE"), ("invalid timestamp field format", "TIMESTAMP"),
    ("time field value out of range", "TIME"), ("Could not parse string", None),
)
_DUCKDB_RANGE = (("Date out of range", "DATE"), ("Timestamp out of range", "TIMESTAMP"))
DUCKDB_VALUE_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException,
                       duckdb.InvalidInputException)  # fmt: skip


_EXTENSION = re.compile(r"exists in the (\w+) extension")


def duckdb_missing_extension(error: BaseException) -> UnsupportedQuery | None:
    """A type or function of a DuckDB extension: embedded DuckDBs install and load none
    (`sandbox.LOCKED_DOWN`), so the query is refused as using what meshgate does not offer."""
    found = _EXTENSION.search(str(error)) if isinstance(error, duckdb.Error) else None
    if found is None:
        return None
    return UnsupportedQuery(
        f"this query uses a type or function of DuckDB's {found.group(1)} extension, which "
        "meshgate does not load; write it with DuckDB's built-in types and functions"
    )


def duckdb_value_failure(error: BaseException) -> ValueFailure | None:
    """DuckDB's errors about the values a query computes (casts, overflow, bad input)."""
    if not isinstance(error, DUCKDB_VALUE_ERRORS):
        return None
    text = str(error).splitlines()[0] if str(error) else ""
    for marker, type_name in _DUCKDB_DATETIME:
        if marker in text:
            return ValueFailure(ValueFault.DATETIME, type_name)
    for marker, type_name in _DUCKDB_RANGE:
        if marker in text:
            return ValueFailure(ValueFault.OUT_OF_RANGE, type_name)
    if "Malformed JSON" in text:  # a cast to JSON or a JSON function's argument
        return ValueFailure(ValueFault.CONVERSION, "JSON")
    found = _DUCKDB_TARGET.search(text)
    type_name = _DUCKDB_TYPES.get(found.group(1), found.group(1)) if found else None
    if isinstance(error, duckdb.OutOfRangeException) or "out of range" in text:
        return ValueFailure(ValueFault.OUT_OF_RANGE, type_name)
    if isinstance(error, duckdb.ConversionException):
        return ValueFailure(ValueFault.CONVERSION, type_name)
    return ValueFailure(ValueFault.INVALID_ARGUMENT)
