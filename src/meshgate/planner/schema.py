"""The exact result schema of a residual query, computed before anything runs at a source."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
from sqlglot import exp

from meshgate.spi import CANONICAL_DIALECT
from meshgate.spi.parameters import without_placeholders
from meshgate.sqlconnector.sandbox import engine_cursor
from meshgate.types import wire_schema


def residual_schema(residual: exp.Query, fragments: Mapping[str, pa.Schema]) -> pa.Schema:
    """Run the residual over empty fragment tables in DuckDB and read the result's schema."""
    connection = engine_cursor()
    try:
        for name, schema in fragments.items():
            connection.register(name, schema.empty_table())
        sql = without_placeholders(residual).sql(dialect=CANONICAL_DIALECT, comments=False)
        result = connection.execute(f"SELECT * FROM ({sql}) AS result LIMIT 0").arrow()
        if isinstance(result, pa.RecordBatchReader):
            result = result.read_all()
        return wire_schema(result.schema)
    finally:
        connection.close()
