"""PostgreSQL column types -> Arrow types, and the cast of driver batches to a planned schema.

NUMERIC is the trap: the ADBC driver hands it back as an opaque extension type over strings
(decoded from the binary wire format in C, slower than PostgreSQL's own text output). So
decimal columns are rounded to the planned scale by PostgreSQL itself (its rounding, its
overflow error) and sent as a number the driver decodes cheaply: a decimal of at most 18
digits as its unscaled BIGINT (`CAST(CAST(x AS NUMERIC(p,s)) * 10^s AS BIGINT)`, exact: the
product is whole and below 10^18), whose 8 bytes become the decimal128's value without any
parsing; wider decimals as text, which Arrow parses exactly. Measured in benchmarks/README.md
(the full scan: the server's CPU per scan and the driver's text decoding).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from meshgate.errors import SourceUnavailable, UnsupportedQuery

UNBOUNDED_NUMERIC = pa.decimal128(38, 9)
MAX_DECIMAL_PRECISION = 38
MAX_SCALED_PRECISION = 18  # 10^18 - 1 < 2^63: every such unscaled value fits a BIGINT

_SCALARS: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "oid": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "char": pa.string(),
    "name": pa.string(),
    "citext": pa.string(),
    "json": pa.string(),
    "jsonb": pa.string(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "interval": pa.month_day_nano_interval(),
}


def numeric_type(typmod: int) -> pa.DataType:
    """The decimal for NUMERIC with an `atttypmod`: exact where it fits in 38 digits.

    PostgreSQL 15 allows a negative scale (NUMERIC(5,-2) holds 1234500) and a scale above the
    precision (NUMERIC(3,5) holds 0.00123); DuckDB allows neither, so both widen to the
    smallest decimal holding every value: (p - s, 0) and (s, s).
    """
    if typmod < 4:
        return UNBOUNDED_NUMERIC
    packed = typmod - 4
    precision = (packed >> 16) & 0xFFFF
    scale = ((packed & 0x7FF) ^ 0x400) - 0x400
    if scale < 0:
        precision, scale = precision - scale, 0
    precision = max(precision, scale)
    if precision > MAX_DECIMAL_PRECISION:
        return pa.decimal128(MAX_DECIMAL_PRECISION, min(scale, MAX_DECIMAL_PRECISION))
    return pa.decimal128(precision, scale)


def arrow_type_of(typname: str, typmod: int, element: str | None = None) -> pa.DataType:
    """The Arrow type meshgate reads a column of this PostgreSQL type as.

    `element` is the element type name of an array type (`typname` then starts with `_`).
    Types without an exact Arrow counterpart (uuid, inet, money, ranges, xml, ...) are read
    as PostgreSQL's text output.
    """
    if element is not None:
        return pa.list_(arrow_type_of(element, typmod))
    if typname == "numeric":
        return numeric_type(typmod)
    return _SCALARS.get(typname, pa.string())


def is_native(typname: str, element: str | None = None) -> bool:
    """Whether the driver decodes this type to the Arrow type `arrow_type_of` gives it.

    Other types (inet, money, ranges, enums, ...) come back as opaque bytes or locale-dependent
    numbers, so meshgate reads them as PostgreSQL's text output instead.
    """
    return (element or typname) in _SCALARS or (element or typname) == "numeric"


def travels_scaled(target: pa.DataType) -> bool:
    """Whether a result column of this type is sent as its unscaled BIGINT (see above)."""
    if not pa.types.is_decimal128(target):
        return False
    return bool(0 <= target.scale <= target.precision <= MAX_SCALED_PRECISION)


def sql_cast_for(target: pa.DataType) -> str | None:
    """The PostgreSQL type a result column is cast to (then to text) to reach `target` exactly.

    Decimals only: PostgreSQL rounds to the planned scale and raises on overflow.
    """
    if pa.types.is_decimal(target):
        return f"NUMERIC({target.precision},{target.scale})"
    if pa.types.is_list(target) and pa.types.is_decimal(target.value_type):
        return f"NUMERIC({target.value_type.precision},{target.value_type.scale})[]"
    return None


@dataclass(frozen=True)
class BoundaryCast:
    """Turns each driver batch into a batch of exactly `schema` (names, types, order);
    the columns at `scaled` arrive as unscaled BIGINTs of their decimal type."""

    schema: pa.Schema
    scaled: frozenset[int] = frozenset()

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if batch.num_columns != len(self.schema):
            raise SourceUnavailable(
                f"PostgreSQL returned {batch.num_columns} columns where {len(self.schema)} "
                "were planned; the source table changed: run `meshgate check`"
            )
        columns = [
            unscaled_to_decimal(batch.column(i), field.type, field.name)
            if i in self.scaled
            else cast_column(batch.column(i), field.type, field.name)
            for i, field in enumerate(self.schema)
        ]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


def unscaled_to_decimal(values: pa.Array, target: pa.DataType, name: str) -> pa.Array:
    """BIGINT unscaled values as `target` (decimal128, p <= 18): each widened to 16 bytes
    (a cast to DECIMAL(19,0), which copies the integer), then read with the planned scale."""
    if not pa.types.is_int64(values.type):
        raise SourceUnavailable(
            f"PostgreSQL returned {values.type} for the scaled decimal column {name!r}; the "
            "source table changed: run `meshgate check`"
        )
    return pc.cast(values, pa.decimal128(MAX_SCALED_PRECISION + 1, 0)).view(target)


def cast_column(values: pa.Array, target: pa.DataType, name: str) -> pa.Array:
    """Cast one driver column to its planned type, exactly or with a clear error."""
    if isinstance(values.type, pa.BaseExtensionType):
        values = values.storage
    if values.type == target:
        return values
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if pa.types.is_decimal(target) and pa.types.is_string(values.type):
            special = pc.filter(
                values,
                pc.invert(
                    pc.utf8_is_numeric(
                        pc.replace_substring(pc.replace_substring(values, ".", ""), "-", "")
                    )
                ),
            )
            shown = ", ".join(sorted({str(v) for v in special.to_pylist() if v is not None})[:3])
            raise UnsupportedQuery(
                f"column {name!r} holds NUMERIC values ({shown}) that have no exact "
                f"{target} representation; filter them out or cast them in the product"
            ) from None
        raise UnsupportedQuery(
            f"column {name!r}: PostgreSQL returned {values.type}, which does not convert to "
            f"the planned {target} ({exc}); declare the product column with a matching type"
        ) from None
