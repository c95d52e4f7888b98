"""SQL types of product columns <-> the Arrow types meshgate puts on the wire.

Wire rules (flightsql-clients.md P15-P17): no view, large or dictionary types; timestamps in
microseconds, time-zone aware ones in UTC; decimals as decimal128 with precision <= 38.
"""

from __future__ import annotations

import difflib
from functools import cache

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from meshgate.errors import ConfigError

UNBOUNDED_DECIMAL = pa.decimal128(38, 9)

_SIMPLE: dict[exp.DType, pa.DataType] = {
    exp.DataType.Type.BOOLEAN: pa.bool_(),
    exp.DataType.Type.TINYINT: pa.int8(),
    exp.DataType.Type.SMALLINT: pa.int16(),
    exp.DataType.Type.INT: pa.int32(),
    exp.DataType.Type.BIGINT: pa.int64(),
    exp.DataType.Type.UTINYINT: pa.uint8(),
    exp.DataType.Type.USMALLINT: pa.uint16(),
    exp.DataType.Type.UINT: pa.uint32(),
    exp.DataType.Type.UBIGINT: pa.uint64(),
    exp.DataType.Type.FLOAT: pa.float32(),
    exp.DataType.Type.DOUBLE: pa.float64(),
    exp.DataType.Type.VARCHAR: pa.string(),
    exp.DataType.Type.CHAR: pa.string(),
    exp.DataType.Type.TEXT: pa.string(),
    exp.DataType.Type.NVARCHAR: pa.string(),
    exp.DataType.Type.BLOB: pa.binary(),
    exp.DataType.Type.VARBINARY: pa.binary(),
    exp.DataType.Type.BINARY: pa.binary(),
    exp.DataType.Type.DATE: pa.date32(),
    exp.DataType.Type.TIME: pa.time64("us"),
    # One unit on the wire, microseconds (flightsql-clients.md P16: JDBC and BI tools read it
    # everywhere): TIMESTAMP_S and _MS widen exactly, TIMESTAMP_NS is cut to microseconds.
    exp.DataType.Type.TIMESTAMP: pa.timestamp("us"),
    exp.DataType.Type.TIMESTAMPNTZ: pa.timestamp("us"),
    exp.DataType.Type.TIMESTAMP_S: pa.timestamp("us"),
    exp.DataType.Type.TIMESTAMP_MS: pa.timestamp("us"),
    exp.DataType.Type.TIMESTAMP_NS: pa.timestamp("us"),
    exp.DataType.Type.DATETIME: pa.timestamp("us"),
    exp.DataType.Type.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    exp.DataType.Type.INTERVAL: pa.month_day_nano_interval(),
    exp.DataType.Type.UUID: pa.string(),
    exp.DataType.Type.JSON: pa.string(),
}


# The column types a product may declare, as the config reference lists them.
SUPPORTED_TYPES = (
    "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL(p,s)", "VARCHAR", "BLOB", "DATE", "TIME", "TIMESTAMP",
    "TIMESTAMPTZ", "INTERVAL", "UUID", "JSON", "<type>[]", "STRUCT(name type, ...)",
)
# Other spellings DuckDB accepts for them: candidates for "did you mean".
_TYPE_SPELLINGS = (
    *SUPPORTED_TYPES, "DECIMAL", "NUMERIC", "INT", "BOOL", "REAL", "TEXT", "STRING", "CHAR",
    "BYTEA", "VARBINARY",
)


def parse_sql_type(text: str) -> exp.DataType:
    """Parse a declared column type (DuckDB spelling) or raise a ConfigError saying why."""
    try:
        return exp.DataType.build(text, dialect="duckdb")
    except (sqlglot.errors.ParseError, ValueError):
        raise ConfigError(f"unknown column type {text!r}{_type_hint(text)}") from None


def _type_hint(text: str) -> str:
    close = difflib.get_close_matches(text.upper(), _TYPE_SPELLINGS, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; supported types: {', '.join(SUPPORTED_TYPES)}"


def arrow_type(sql_type: exp.DataType) -> pa.DataType:
    """The wire type for a SQL type."""
    kind = sql_type.this
    if kind in (exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL):
        params = [
            int(p.this.this) for p in sql_type.expressions if isinstance(p, exp.DataTypeParam)
        ]
        if not params:
            return UNBOUNDED_DECIMAL
        precision = params[0]
        scale = params[1] if len(params) > 1 else 0
        return pa.decimal128(min(precision, 38), scale)
    if kind == exp.DataType.Type.ARRAY and sql_type.expressions:
        inner = sql_type.expressions[0]
        assert isinstance(inner, exp.DataType)
        return pa.list_(arrow_type(inner))
    if kind == exp.DataType.Type.STRUCT and sql_type.expressions:
        fields = []
        for member in sql_type.expressions:
            if not isinstance(member, exp.ColumnDef) or not isinstance(member.kind, exp.DataType):
                raise ConfigError(f"column type {sql_type.sql('duckdb')}: each STRUCT member "
                                  "needs a name and a type, e.g. STRUCT(city VARCHAR, zip INTEGER)")
            fields.append(pa.field(member.name, arrow_type(member.kind)))
        return pa.struct(fields)
    try:
        return _SIMPLE[kind]
    except KeyError:
        raise ConfigError(
            f"column type {sql_type.sql('duckdb')} is not supported yet; "
            f"supported types: {', '.join(SUPPORTED_TYPES)}"
        ) from None


@cache
def sql_type_name(arrow: pa.DataType) -> str:
    """The SQL name of an Arrow type as DuckDB's DESCRIBE and information_schema spell it
    (VARCHAR, INTEGER, DECIMAL(12,2), TIMESTAMP WITH TIME ZONE): the dialect users write, and
    one spelling on every surface (Flight metadata, meshgate.columns, information_schema,
    DESCRIBE, config checks) rather than sqlglot's aliases (TEXT, INT, TIMESTAMPTZ)."""
    return str(duckdb.sqltype(wire_sql_type(arrow).sql("duckdb")))


@cache
def wire_sql_text(arrow: pa.DataType) -> str:
    """`wire_sql_type(arrow)` as DuckDB SQL text, made once per type: schemas for the
    optimizer are built from it for every query planned."""
    return wire_sql_type(arrow).sql("duckdb")


def wire_sql_type(arrow: pa.DataType) -> exp.DataType:
    """The DuckDB SQL type that produces `arrow` (used for casts at the merge)."""
    if pa.types.is_decimal(arrow):
        return exp.DataType.build(f"DECIMAL({arrow.precision},{arrow.scale})", dialect="duckdb")
    if pa.types.is_timestamp(arrow):
        return exp.DataType.build("TIMESTAMPTZ" if arrow.tz else "TIMESTAMP", dialect="duckdb")
    if pa.types.is_list(arrow):
        return exp.DataType.build(f"{sql_type_name(arrow.value_type)}[]", dialect="duckdb")
    if pa.types.is_struct(arrow):
        members = ", ".join(
            f"{exp.to_identifier(f.name, quoted=True).sql('duckdb')} {sql_type_name(f.type)}"
            for f in arrow
        )
        return exp.DataType.build(f"STRUCT({members})", dialect="duckdb")
    for kind, candidate in _SIMPLE.items():
        if candidate == arrow:
            return exp.DataType(this=kind)
    if (
        pa.types.is_string(arrow)
        or pa.types.is_large_string(arrow)
        or pa.types.is_string_view(arrow)
    ):
        return exp.DataType.build("VARCHAR")
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
        return exp.DataType.build("BLOB")
    raise ValueError(f"no SQL type for Arrow type {arrow}")


def wire_type(arrow: pa.DataType) -> pa.DataType:
    """Normalise a type as a source produced it to what clients may receive."""
    if pa.types.is_dictionary(arrow) or pa.types.is_run_end_encoded(arrow):
        return wire_type(arrow.value_type)
    if pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow):
        return pa.string()
    if pa.types.is_large_binary(arrow) or pa.types.is_binary_view(arrow):
        return pa.binary()
    if pa.types.is_timestamp(arrow):
        return pa.timestamp("us", tz="UTC" if arrow.tz else None)
    if pa.types.is_decimal(arrow) and (arrow.precision > 38 or pa.types.is_decimal256(arrow)):
        return pa.decimal128(min(arrow.precision, 38), min(arrow.scale, 38))
    if pa.types.is_large_list(arrow) or pa.types.is_list_view(arrow):
        return pa.list_(wire_type(arrow.value_type))
    if pa.types.is_list(arrow):
        return pa.list_(wire_type(arrow.value_type))
    if pa.types.is_struct(arrow):
        return pa.struct([pa.field(f.name, wire_type(f.type), f.nullable) for f in arrow])
    return arrow


def wire_schema(schema: pa.Schema) -> pa.Schema:
    """Normalise every field of a schema (nullability kept, metadata dropped)."""
    return pa.schema([pa.field(f.name, wire_type(f.type), f.nullable) for f in schema])
