"""The shared machinery of SQL connectors (Trino's base-jdbc beside its SPI).

One generic pushdown implementation (`SqlConnector`) and a strategy per database. By
responsibility: `capabilities` (the sets capability tables are built from), `collation` (text
comparisons the source answers like the engine), `negotiation` (what may still be pushed on a
handle), `rendering` (handle -> source SQL), `streaming` (driver batches -> one cast, cancellable
reader), `statistics` (which table statistics describe a handle), `describe` (a SELECT's type
under engine semantics), `sandbox` (DuckDB connections that see only what is registered) and
`duckdb_backed` (sources read through an in-process DuckDB), `failures` (a driver's error as the
caller may read it). Imports only the SPI, types and errors; connectors import it; the planner
types whole-query offers with `describe`, and the residual engine (`meshgate.execution.engine`)
opens its database with `sandbox`.
"""

from __future__ import annotations

from meshgate.sqlconnector.capabilities import (
    ARITHMETIC,
    BOOLEAN_LOGIC,
    CANONICAL_AGGREGATES,
    CANONICAL_EXPRESSIONS,
    COMPARISONS,
    ENGINE_CAPABILITIES,
    STRUCTURAL,
)
from meshgate.sqlconnector.collation import (
    collated_text_columns,
    column_type,
    column_types,
    has_text_operand,
    on_filter_path,
)
from meshgate.sqlconnector.connector import SqlConnector
from meshgate.sqlconnector.duckdb_backed import DuckDBBackedConnector
from meshgate.sqlconnector.failures import ValueFailure, ValueFault, source_failed
from meshgate.sqlconnector.negotiation import is_row_level
from meshgate.sqlconnector.rendering import physical_table

__all__ = [
    "ARITHMETIC",
    "BOOLEAN_LOGIC",
    "CANONICAL_AGGREGATES",
    "CANONICAL_EXPRESSIONS",
    "COMPARISONS",
    "ENGINE_CAPABILITIES",
    "STRUCTURAL",
    "DuckDBBackedConnector",
    "SqlConnector",
    "ValueFailure",
    "ValueFault",
    "collated_text_columns",
    "column_type",
    "column_types",
    "has_text_operand",
    "is_row_level",
    "on_filter_path",
    "physical_table",
    "source_failed",
]
