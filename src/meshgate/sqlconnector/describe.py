"""The Arrow schema a pushed SELECT has under engine (DuckDB) semantics.

A fragment's result types must not depend on the source that ran it: `SUM` over integers is
HUGEINT in DuckDB whatever SQLite says, `7 / 2` is a DOUBLE. So the schema of every handle is
what DuckDB gives the same SELECT over empty tables shaped like the handle's inputs, and
sources' batches are cast to it at the boundary.

This typing is the connectors' (and the planner's, when it offers a whole query): DuckDB
semantics by definition of the canonical dialect, on a sandboxed database of this module's
own. It is not the residual engine (`meshgate.execution.engine`), which the service owns.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshgate.spi import CANONICAL_DIALECT, ScanInput, SourceColumn, SourceTable
from meshgate.sqlconnector.sandbox import sandboxed_duckdb
from meshgate.types import wire_schema

_EMPTY_PREFIX = "__meshgate_input_"
_database: list[duckdb.DuckDBPyConnection] = []  # opened on first use (~20 ms), then cursors
_database_lock = threading.Lock()


def engine_schema(select: exp.Select, inputs: Sequence[ScanInput]) -> pa.Schema:
    """The wire schema DuckDB gives `select` over empty tables shaped like `inputs`.

    e.g. `SELECT SUM(o.qty) AS n FROM shop.orders AS o` with `qty INTEGER` gives
    `n: decimal128(38, 0)` (DuckDB sums integers as HUGEINT) whatever the source would say.

    Raises `duckdb.Error` when DuckDB cannot bind the SELECT (callers treat it as "cannot push").
    """
    probe = _bind_to_empty_inputs(select, inputs)
    sql = probe.sql(dialect=CANONICAL_DIALECT, comments=False, copy=False)  # probe: our copy
    return _describe(sql, tuple(inputs))


def scan_schema(columns: Sequence[SourceColumn]) -> pa.Schema:
    """The wire schema DuckDB gives a plain read of `columns` (what `engine_schema` says of
    `SELECT t.c1 AS c1, ... FROM table AS t`), made once per list of columns: the planner
    scans each table of a query at least once per candidate it weighs."""
    return _columns_schema(tuple(columns))


@lru_cache(maxsize=1024)
def _columns_schema(columns: tuple[SourceColumn, ...]) -> pa.Schema:
    table = SourceTable(schema=None, name="scanned")
    return _describe(f'SELECT * FROM "{_EMPTY_PREFIX}0"', (ScanInput("t", table, columns),))


def _bind_to_empty_inputs(select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
    """A copy of `select` whose physical tables read the registered empty inputs instead."""
    by_alias = {item.alias: index for index, item in enumerate(inputs)}

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder):
            return exp.null()  # planned parameters sit in a CAST: the type stays
        if isinstance(node, exp.Table) and node.alias_or_name in by_alias and node.name:
            index = by_alias[node.alias_or_name]
            return exp.Table(
                this=exp.to_identifier(f"{_EMPTY_PREFIX}{index}", quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(inputs[index].alias, quoted=True)),
            )
        return node

    renamed = select.transform(rename, copy=True)
    assert isinstance(renamed, exp.Select)
    return renamed


@lru_cache(maxsize=4096)
def _describe(sql: str, inputs: tuple[ScanInput, ...]) -> pa.Schema:
    cursor = _cursor()  # its own registrations, on this module's sandboxed database
    try:
        for index, item in enumerate(inputs):
            empty = pa.schema([pa.field(c.name, c.type) for c in item.columns]).empty_table()
            cursor.register(f"{_EMPTY_PREFIX}{index}", empty)
        result = cursor.execute(f"SELECT * FROM ({sql}) AS described LIMIT 0").to_arrow_table()
        return wire_schema(result.schema)
    finally:
        cursor.close()


def _cursor() -> duckdb.DuckDBPyConnection:
    with _database_lock:
        if not _database:
            _database.append(sandboxed_duckdb())
        return _database[0].cursor()
