"""Comparable rows from Arrow results of the server and of the oracle."""

from __future__ import annotations

import math
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import pyarrow as pa


def query(connection: adbc.Connection, sql: str, parameters: tuple[Any, ...] = ()) -> pa.Table:
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters or None)
        return cursor.fetch_arrow_table()


def values(array: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Python values of a column; structs as tuples of their fields (names may repeat)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_struct(array.type):
        fields = [values(array.field(i)) for i in range(array.type.num_fields)]
        valid = array.is_valid().to_pylist()
        return [tuple(f[i] for f in fields) if valid[i] else None for i in range(len(array))]
    return [_comparable(v) for v in array.to_pylist()]


def _comparable(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, list):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _comparable(v)) for k, v in value.items())
    return value


def rows(table: pa.Table, ordered: bool) -> list[tuple[Any, ...]]:
    """The table's rows as tuples, sorted unless the query's order is part of its answer."""
    result = list(zip(*(values(c) for c in table.columns), strict=True))
    if table.num_columns == 0:
        result = [()] * table.num_rows
    return result if ordered else sorted(result, key=repr)
