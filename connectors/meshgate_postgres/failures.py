"""What a PostgreSQL error means for the caller: cancelled, a value error, or the source failing.

The SQLSTATE says it: class 22 (data exception) is the query computing a bad value, which the
caller must fix (INVALID_ARGUMENT); 57014 a cancel; anything else, names or privileges
included (class 42: the source no longer matches its configuration), the source's problem
(UNAVAILABLE). Errors met while the COPY streams arrive as OSError without a SQLSTATE, so the
server's primary message stands in for it. The caller's message is built from the kind only:
the server's text quotes values and physical names and goes to the detail.
"""

from __future__ import annotations

import re

from meshgate.errors import MeshgateError, QueryCancelled, UnsupportedQuery
from meshgate.sqlconnector import ValueFailure, ValueFault

from .pool import ConnectionPool, unavailable

QUERY_CANCELED = "57014"

# SQLSTATEs of class 22 by the kind of computation that failed; the rest of the class is OTHER.
_FAULTS = {
    "22P02": ValueFault.CONVERSION,  # invalid_text_representation
    "22018": ValueFault.CONVERSION,  # invalid_character_value_for_cast
    "22021": ValueFault.CONVERSION,  # character_not_in_repertoire
    "22P05": ValueFault.CONVERSION,  # untranslatable_character
    "22007": ValueFault.DATETIME,  # invalid_datetime_format
    "22009": ValueFault.DATETIME,  # invalid_time_zone_displacement_value
    "22008": ValueFault.OUT_OF_RANGE,  # datetime_field_overflow
    "22003": ValueFault.OUT_OF_RANGE,  # numeric_value_out_of_range
    "22015": ValueFault.OUT_OF_RANGE,  # interval_field_overflow
    "22P01": ValueFault.OUT_OF_RANGE,  # floating_point_exception
    "22012": ValueFault.DIVISION_BY_ZERO,
    "22001": ValueFault.TOO_LONG,  # string_data_right_truncation
    "2201B": ValueFault.INVALID_PATTERN,  # invalid_regular_expression
    "22025": ValueFault.INVALID_PATTERN,  # invalid_escape_sequence
    "22019": ValueFault.INVALID_PATTERN,  # invalid_escape_character
    "22023": ValueFault.INVALID_ARGUMENT,  # invalid_parameter_value
    "2201E": ValueFault.INVALID_ARGUMENT,  # invalid_argument_for_logarithm
    "2201F": ValueFault.INVALID_ARGUMENT,  # invalid_argument_for_power_function
    "2201G": ValueFault.INVALID_ARGUMENT,  # invalid_argument_for_width_bucket_function
    "22011": ValueFault.INVALID_ARGUMENT,  # substring_error
    "2202E": ValueFault.INVALID_ARGUMENT,  # array_subscript_error
}
# Not the query's fault although in class 22: the driver's own COPY stream is malformed.
_NOT_VALUE_ERRORS = frozenset({"22P04"})  # bad_copy_file_format

# Primary messages of class 22 a row can raise while the COPY streams (no SQLSTATE then).
_STREAMED = (
    ("invalid input syntax for type", "22P02"),
    ("date/time field value out of range", "22008"),
    ("out of range", "22003"),
    ("overflow", "22003"),
    ("division by zero", "22012"),
    ("value too long", "22001"),
    ("invalid regular expression", "2201B"),
    ("invalid value", "22023"),
)

# NUMERIC's NaN and infinities, which have no BIGINT (nor decimal128) form (SQLSTATE 0A000).
_SPECIAL_NUMERIC = re.compile(r"cannot convert (NaN|infinity|-infinity) to bigint$")

# PostgreSQL's type names as the standard names a message may carry.
_TYPES = {
    "smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT", "real": "REAL",
    "double precision": "DOUBLE", "numeric": "NUMERIC", "boolean": "BOOLEAN", "date": "DATE",
    "time": "TIME", "time without time zone": "TIME", "timestamp": "TIMESTAMP",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE", "interval": "INTERVAL",
    "uuid": "UUID", "json": "JSON", "jsonb": "JSON", "character varying": "VARCHAR",
    "text": "TEXT", "bytea": "BLOB",
}  # fmt: skip
# Where a primary message names the type; each anchored so a quoted value cannot pose as it.
_TYPE_IN = (
    re.compile(r"invalid input syntax for type ([a-z][a-z ]*[a-z]):"),
    re.compile(r'value ".*" is out of range for type ([a-z][a-z ]*[a-z])$'),
    re.compile(r"value too long for type ([a-z][a-z ]*[a-z])\(\d+\)$"),
    re.compile(r"(smallint|integer|bigint) out of range$"),
)
_DATETIMES = frozenset({"DATE", "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "INTERVAL"})


def source_error(pool: ConnectionPool, exc: BaseException, doing: str) -> MeshgateError:
    """Map a driver error: cancelled, a value error in the query, or the source unavailable."""
    kind = classify(exc)
    if kind == "cancelled":
        return QueryCancelled(
            "the query was cancelled while PostgreSQL ran it", detail=pool.label
        )
    failure = value_failure(exc)
    if failure is not None:
        return failure.error(f"{pool.label} while {doing}: {exc}")
    special = _SPECIAL_NUMERIC.match(_primary_message(exc))
    if special is not None:  # a decimal result column travels as its unscaled BIGINT
        return UnsupportedQuery(
            f"a NUMERIC result column holds {special.group(1)}, which has no exact decimal "
            "representation; filter such values out or cast them in the product",
            detail=f"{pool.label} while {doing}: {exc}",
        )
    return unavailable(pool.dsn, exc, doing, pool.label, pool.source)


def classify(exc: BaseException) -> str:
    """cancelled, value or unavailable."""
    if sqlstate_of(exc) == QUERY_CANCELED or "canceling statement" in str(exc):
        return "cancelled"
    return "value" if value_failure(exc) is not None else "unavailable"


def value_failure(exc: BaseException) -> ValueFailure | None:
    """The kind of value error a class-22 error reports, with the type it names; else None."""
    sqlstate = sqlstate_of(exc)
    primary = _primary_message(exc)
    if sqlstate is None and "ERROR:" in str(exc):
        sqlstate = next((code for hint, code in _STREAMED if hint in primary), None)
    if sqlstate is None or sqlstate[:2] != "22" or sqlstate in _NOT_VALUE_ERRORS:
        return None
    fault = _FAULTS.get(sqlstate, ValueFault.OTHER)
    type_name = _type_named(primary)
    if fault is ValueFault.CONVERSION and type_name in _DATETIMES:
        fault = ValueFault.DATETIME
    if sqlstate == "22008" and "field value out of range" in primary:
        fault = ValueFault.DATETIME
    return ValueFailure(fault, type_name)


def sqlstate_of(exc: BaseException) -> str | None:
    found = getattr(exc, "sqlstate", None)
    if isinstance(found, str) and found:
        return found
    match = re.search(r"SQLSTATE: ([0-9A-Z]{5})", str(exc))
    return match.group(1) if match else None


def _primary_message(exc: BaseException) -> str:
    """The server's primary message (`PG_DIAG_MESSAGE_PRIMARY`, else the text after ERROR:)."""
    for key, value in getattr(exc, "details", None) or ():
        if key == b"PG_DIAG_MESSAGE_PRIMARY" and isinstance(value, bytes):
            return value.decode("utf-8", "replace")
    text = str(exc)
    start = text.find("ERROR:")
    line = text[start + len("ERROR:"):] if start >= 0 else text
    return line.strip().splitlines()[0] if line.strip() else ""


def _type_named(primary: str) -> str | None:
    for pattern in _TYPE_IN:
        found = pattern.match(primary)
        if found:
            return _TYPES.get(found.group(1))
    return None
