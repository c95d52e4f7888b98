"""The connector SPI: everything a connector package may import from meshgate.

The planner proposes, the connector accepts what it can and hands back the rest (Trino's
`apply*` negotiation); filters are answered per conjunct (DataFusion's Exact / Inexact /
Unsupported). Handles are immutable; "no change" is `None`.

Expressions exchanged here are sqlglot trees in meshgate's canonical dialect (DuckDB) whose
columns are the *source's* column names, qualified by the table alias of the handle.
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
    """What a source can evaluate, as declared by its connector and proven by the contract suite.

    `expressions` are sqlglot expression classes that may appear in pushed SQL; `functions` are
    the lower-case names of anonymous/named functions; `aggregates` the aggregate classes.
    """

    dialect: str
    expressions: frozenset[type[exp.Expr]]
    functions: frozenset[str] = frozenset()
    aggregates: frozenset[type[exp.Expr]] = frozenset()
    join_kinds: frozenset[JoinKind] = frozenset()
    supports_limit: bool = True
    supports_topn: bool = True
    # Whether ORDER BY / comparisons on text give the same answer as DuckDB (binary collation).
    text_ordering_matches_engine: bool = False
    # Whether the source evaluates text equality exactly as DuckDB (case/trailing blanks).
    text_equality_matches_engine: bool = True
    # Whether a derived table with `OFFSET 0` is a fence: never merged into its user, never
    # given its user's predicates (PostgreSQL), so a policy barrier may go down inside a query.
    offset_fences_subqueries: bool = False


@dataclass(frozen=True)
class SourceTable:
    """A physical table of a source, and its columns as the source reports them."""

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
    """An immutable handle: the SQL a source will run, as a canonical-dialect SELECT.

    `select` reads only tables of one source (`exp.Table` nodes carry the physical name, each
    aliased as in `inputs`); `schema` is the Arrow schema the fragment produces after the
    boundary cast: the types DuckDB would give the same SELECT over `inputs` (engine semantics,
    so a fragment's types do not depend on where it ran).
    """

    select: exp.Select
    schema: pa.Schema
    inputs: tuple[ScanInput, ...]
    # Properties the planner needs to decide what may still be pushed on top.
    has_inexact_filter: bool = False
    has_limit: bool = False
    has_aggregate: bool = False


@dataclass(frozen=True)
class FilterApplication:
    """The new handle plus one answer per proposed conjunct, in order."""

    handle: PushedQuery
    support: tuple[FilterSupport, ...]


@dataclass(frozen=True)
class LimitApplication:
    handle: PushedQuery
    limit_guaranteed: bool


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


class Connector(abc.ABC):
    """One configured source. Thread-safe: fragments of many queries run concurrently."""

    kind: str = ""

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    @property
    @abc.abstractmethod
    def identity(self) -> SourceIdentity: ...

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    # --- metadata -----------------------------------------------------------------------
    @abc.abstractmethod
    def table_columns(self, table: SourceTable) -> list[SourceColumn]:
        """The table's columns as the source declares them (used by `meshgate check`)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Connect once and raise `SourceUnavailable` with a helpful message if that fails."""

    # --- negotiation --------------------------------------------------------------------
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

    def apply_limit(self, handle: PushedQuery, limit: int) -> LimitApplication | None:
        return None

    def apply_topn(
        self, handle: PushedQuery, order_by: Sequence[exp.Ordered], limit: int
    ) -> PushedQuery | None:
        return None

    def apply_aggregation(
        self, handle: PushedQuery, group_by: Sequence[exp.Expr], aggregates: Sequence[exp.Expr]
    ) -> PushedQuery | None:
        return None

    def apply_join(
        self, left: PushedQuery, right: PushedQuery, kind: JoinKind, condition: exp.Expr | None
    ) -> PushedQuery | None:
        return None

    def estimate_rows(self, handle: PushedQuery) -> int | None:
        """The source's own row estimate for `handle` (EXPLAIN only), or None if it has none."""
        return None

    def apply_query(self, query: exp.Query, schema: pa.Schema) -> PushedQuery | None:
        """Take a whole single-source subtree as is, if every node of it can be rendered."""
        return None

    # --- execution ----------------------------------------------------------------------
    @abc.abstractmethod
    def render(self, handle: PushedQuery) -> str:
        """The exact SQL text the source receives for `handle` (shown by EXPLAIN)."""

    @abc.abstractmethod
    def execute(self, handle: PushedQuery, parameters: Sequence[Any] = ()) -> pa.RecordBatchReader:
        """Stream the handle's rows, cast to `handle.schema`. Closing the reader cancels."""

    def close(self) -> None:  # noqa: B027 - optional hook, most connectors hold nothing
        """Release pooled connections."""
