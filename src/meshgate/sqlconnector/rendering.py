"""From a handle's canonical SELECT to the SQL text a source receives.

Transpiling is not semantic (integer division, casts): types are annotated before SQL is
generated for another dialect, and a construct the dialect cannot say raises instead of being
dropped, so the base refuses to push it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.schema import MappingSchema

from meshgate.spi import CANONICAL_DIALECT, ScanInput, SourceTable
from meshgate.types import wire_sql_text


def source_sql(select: exp.Select, inputs: Sequence[ScanInput], dialect: str) -> str:
    """`select` in `dialect`, identifiers quoted; raises SqlglotError where it cannot say it.

    e.g. `SELECT t.qty / 2 AS half FROM items AS t` for postgres keeps DuckDB's float
    division: `SELECT CAST("t"."qty" AS DOUBLE PRECISION) / 2 AS "half" ...`.
    """
    copied = dialect != CANONICAL_DIALECT
    if copied:
        select = typed(select, inputs)
    return select.sql(  # generating copies the tree first, unless it is our own copy
        dialect=dialect, identify=True, comments=False, unsupported_level=ErrorLevel.RAISE,
        copy=not copied,
    )


def typed(select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
    """A copy of `select` with types annotated from the inputs' columns."""
    schema = _input_schema(tuple(inputs))
    annotated = annotate_types(select.copy(), schema=schema, dialect=CANONICAL_DIALECT)
    assert isinstance(annotated, exp.Select)
    return annotated


@lru_cache(maxsize=1024)
def _input_schema(inputs: tuple[ScanInput, ...]) -> MappingSchema | None:
    """The typed schema of `inputs`' tables, made once per set of inputs: building one
    parses every column's type (a millisecond each time a fragment was rendered)."""
    mapping: dict[str, Any] = {}
    for item in inputs:
        columns = {c.name: wire_sql_text(c.type) for c in item.columns}
        if item.table.schema:
            mapping.setdefault(item.table.schema, {})[item.table.name] = columns
        else:
            mapping[item.table.name] = columns
    try:
        return MappingSchema(mapping, dialect=CANONICAL_DIALECT)
    except SqlglotError:
        return None


def physical_table(table: SourceTable, alias: str) -> exp.Table:
    """`schema.table AS alias` as an exp.Table node."""
    return exp.Table(
        this=exp.to_identifier(table.name),
        db=exp.to_identifier(table.schema) if table.schema else None,
        alias=exp.TableAlias(this=exp.to_identifier(alias)),
    )
