"""The connector SPI: the contract between the planner and a source, and nothing else.

The planner proposes, the connector accepts what it can and hands back the rest (Trino's
`apply*` negotiation); filters are answered per conjunct (DataFusion's Exact / Inexact /
Unsupported). Handles are immutable; "no change" is `None`. Expressions are sqlglot trees in
the canonical dialect (DuckDB) over the *source's* column names, qualified by table alias.
Shared machinery for SQL sources lives in `meshgate.sqlconnector`, not here.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from meshgate.spi.context import CancelToken, QueryContext, QueryLimits, ScanSlice

CANONICAL_DIALECT = "duckdb"


class FilterSupport(enum.Enum):
    """How a source handles one filter conjunct."""

    EXACT = "exact"  # the source evaluates it exactly; the engine drops it
    INEXACT = "inexact"  # the source may return a superset; the engine re-applies it
    UNSUPPORTED = "unsupported"  # the engine evaluates it


class JoinKind(enum.Enum):
    INNER = "inner"
    LEFT = "left"
    RIGHT = "right"
    FULL = "full"
    CROSS = "cross"


@dataclass(frozen=True)
class SourceIdentity:
    """Two tables may be pushed down together only if their identities are equal."""

    kind: str
    instance: str

    @staticmethod
    def of(kind: str, options: Mapping[str, Any]) -> SourceIdentity:
        digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode())
        return SourceIdentity(kind, digest.hexdigest()[:16])


@dataclass(frozen=True)
class Capabilities:
    """What a source evaluates exactly as the engine does; proven by tests/contract.

    `expressions` / `aggregates` are sqlglot classes that may appear in pushed SQL, `functions`
    lower-case function names, `join_kinds` the joins it may run.
    """

    dialect: str
    expressions: frozenset[type[exp.Expr]]
    functions: frozenset[str] = frozenset()
    aggregates: frozenset[type[exp.Expr]] = frozenset()
    join_kinds: frozenset[JoinKind] = frozenset()
    text_ordering_matches_engine: bool = False  # ORDER BY / < on text as DuckDB (bytes)
    text_equality_matches_engine: bool = True  # = on text as DuckDB (case, blanks)
    # A derived table with `OFFSET 0` is a fence: never merged into its user nor given its
    # user's predicates (PostgreSQL), so a policy barrier may go down inside a whole query.
    offset_fences_subqueries: bool = False
    # Plans correlated IN / EXISTS / scalar subqueries as joins itself (DuckDB): meshgate then
    # leaves them as written rather than decorrelating them into a form it runs slower.
    decorrelates_subqueries: bool = False
    # Plans a correlated EXISTS / NOT EXISTS as a semi / anti join itself, though not a
    # correlated scalar subquery (PostgreSQL): meshgate leaves EXISTS as written there, its
    # decorrelated form (a grouped derived table LEFT JOINed) costs PostgreSQL 10x more.
    semi_joins_exists: bool = False
    # Takes a dynamic filter's integer key set larger than an IN list (`restrict_to_keys`),
    # and looks keys up by index: a join with a selective side elsewhere reads only its keys.
    key_sets: bool = False


@dataclass(frozen=True)
class SourceTable:
    schema: str | None
    name: str

    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class SourceColumn:
    name: str
    type: pa.DataType
    nullable: bool = True


@dataclass(frozen=True)
class ScanInput:
    """One physical table a handle reads, under its alias, with the columns it may use."""

    alias: str
    table: SourceTable
    columns: tuple[SourceColumn, ...]


@dataclass(frozen=True)
class PushedQuery:
    """A handle: a canonical-dialect SELECT over tables of one source (aliased as in `inputs`)
    and the Arrow schema DuckDB would give it, which the source's rows are cast to. Client
    parameters appear in it as numbered placeholders (`meshgate.spi.parameters`)."""

    select: exp.Select
    schema: pa.Schema
    inputs: tuple[ScanInput, ...]
    has_inexact_filter: bool = False  # rows are a superset; the engine filters again
    has_limit: bool = False
    has_aggregate: bool = False


@dataclass(frozen=True)
class FilterApplication:
    """The new handle plus one answer per proposed conjunct, in order."""

    handle: PushedQuery
    support: tuple[FilterSupport, ...]


@dataclass(frozen=True)
class ColumnStatistics:
    """What the source knows of one output column; None where it does not know."""

    distinct_count: int | None = None
    null_fraction: float | None = None
    min: Any = None  # a Python value of the column's type
    max: Any = None


@dataclass(frozen=True)
class TableStatistics:
    """The source's estimate of what a handle returns, from its catalog or planner (cheap:
    never by reading the rows). `columns` is keyed by the handle's output names."""

    row_count: int | None
    columns: Mapping[str, ColumnStatistics] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalScan:
    """A table as a FROM item the merge DuckDB evaluates itself (`read_parquet([...])`).

    Read inside the merge, a table gets DuckDB's parallel scanner, its filter and projection
    pushdown and the join filters of the query's hash joins, and its rows never cross into
    Python. `relation` is unaliased and yields the table's columns under their source names,
    typed as the connector's handles would be; it reads nothing outside `directories`.
    """

    relation: exp.Expr
    directories: tuple[Path, ...]


@dataclass(frozen=True)
class PlanCost:
    """The source planner's estimate for running a handle, in the planner's own cost units
    (PostgreSQL: one sequential page read = 1.0), from the statistics it gathered."""

    rows: int
    cost: float


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector gets at construction: its name, options and where the config lives."""

    name: str
    options: Mapping[str, Any]
    config_dir: Path
    extra: Mapping[str, Any] = field(default_factory=dict)

    def path(self, value: str) -> Path:
        """Resolve a file option relative to the config directory."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (self.config_dir / candidate).resolve()


@dataclass(frozen=True)
class PoolUsage:
    """A connection pool's state: connections lent to running work, and kept idle."""

    in_use: int
    idle: int


class Connector(abc.ABC):
    """One configured source. Thread-safe: fragments of many queries run concurrently."""

    kind: str = ""
    # Its queries run inside meshgate's process (an embedded DuckDB or SQLite): their memory
    # is the server's. With an out-of-process residual (Spark) the planner gives such a
    # source only what it can stream (scans, filters, projections).
    in_process: bool = False

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    @property
    @abc.abstractmethod
    def identity(self) -> SourceIdentity: ...

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    def table_columns(self, table: SourceTable) -> list[SourceColumn]:
        """The table's columns as the source declares them (used by `meshgate check`)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Connect once and raise `SourceUnavailable` with a helpful message if that fails."""

    @abc.abstractmethod
    def scan(self, table: SourceTable, alias: str, columns: Sequence[SourceColumn]) -> PushedQuery:
        """A handle reading `columns` of `table` under `alias`, nothing else pushed."""

    def apply_filter(
        self, handle: PushedQuery, conjuncts: Sequence[exp.Expr]
    ) -> FilterApplication | None:
        return None

    def apply_projection(
        self, handle: PushedQuery, projections: Sequence[exp.Expr]
    ) -> PushedQuery | None:
        return None

    def restrict_to_keys(
        self, handle: PushedQuery, column: exp.Column, keys: pa.Array
    ) -> PushedQuery | None:
        """`handle` keeping only the rows whose `column` (as `apply_filter` names it) is one
        of `keys` (distinct, non-NULL integers), for sources whose capabilities declare
        `key_sets`: a dynamic filter with more keys than an IN list is worth. None: the
        source cannot, and the probe runs unfiltered."""
        return None

    def apply_query(
        self, query: exp.Query, schema: pa.Schema, inputs: Sequence[ScanInput] = ()
    ) -> PushedQuery | None:
        """Take a whole single-source subtree as is, if every node of it can be rendered.

        `inputs`, when given, type the tables it reads as the engine does; they win over the
        source's own declarations (an SQLite TEXT column the product declares DECIMAL).
        """
        return None

    def local_directories(self) -> tuple[Path, ...]:
        """The directories this connector's `local_scan`s read, for the merge's sandbox: the
        merge DuckDB may read below them and nothing else (empty: it offers no local scans)."""
        return ()

    def local_scan(self, table: SourceTable, columns: Sequence[SourceColumn]) -> LocalScan | None:
        """`table` as a FROM item the merge runs itself, or None to be read through `execute`.

        Offered by sources the merge DuckDB can read natively (Parquet, CSV); the planner
        then neither negotiates filters nor creates a fragment for the table.
        """
        return None

    def statistics(self, handle: PushedQuery) -> TableStatistics | None:
        """What the source estimates `handle` returns, or None if it keeps no statistics."""
        return None

    def estimate_rows(self, handle: PushedQuery) -> int | None:
        """The row count of `statistics(handle)`: EXPLAIN's `estimated_rows`."""
        statistics = self.statistics(handle)
        return None if statistics is None else statistics.row_count

    def estimate_cost(self, handle: PushedQuery) -> PlanCost | None:
        """What the source's planner expects `handle` to cost; None if it cannot say. The
        planner weighs pushing a join against pulling its inputs with it."""
        return None

    @abc.abstractmethod
    def render(self, handle: PushedQuery) -> str:
        """The exact SQL text the source receives for `handle` (shown by EXPLAIN)."""

    @abc.abstractmethod
    def execute(
        self, handle: PushedQuery, context: QueryContext | None = None
    ) -> pa.RecordBatchReader:
        """Stream the handle's rows, cast to `handle.schema`; `context` carries the run's
        parameter values, deadline and cancel token (None: a run of its own). Closing the
        reader or cancelling the context stops the source's work.

        The cast to `handle.schema` (source types to the handle's engine types) is the
        connector's side of the contract; the engine casts a plan's output to the client's
        wire schema itself, once, in execution."""

    def share_scan(self, handle: PushedQuery, parts: int,
                   hold_seconds: float) -> tuple[str, ...] | None:
        """`parts` tokens, one per disjoint slice of the plain scan `handle`, which together
        read exactly its rows as of one instant (a `ScanSlice` in the run's context names
        the slice `execute` reads), valid for at least `hold_seconds`; None where the source
        cannot split it so (then a result is split by key instead)."""
        return None

    def pool_usage(self) -> PoolUsage | None:
        """How many pooled connections are lent out and idle now (None: no pool), for
        the `/metrics` of `server.http_port`."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most connectors hold nothing
        """Release pooled connections."""


__all__ = [
    "CANONICAL_DIALECT",
    "CancelToken",
    "Capabilities",
    "ColumnStatistics",
    "Connector",
    "ConnectorContext",
    "FilterApplication",
    "FilterSupport",
    "JoinKind",
    "LocalScan",
    "PlanCost",
    "PoolUsage",
    "PushedQuery",
    "QueryContext",
    "QueryLimits",
    "ScanInput",
    "ScanSlice",
    "SourceColumn",
    "SourceIdentity",
    "SourceTable",
    "TableStatistics",
]
