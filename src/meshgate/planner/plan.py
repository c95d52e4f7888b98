"""The planner's output: what each source runs, and what DuckDB merges."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa
from sqlglot import exp

from meshgate.planner.cost import MAX_LISTED_KEYS
from meshgate.spi import CANONICAL_DIALECT, PushedQuery
from meshgate.spi.parameters import renumbered


@dataclass(frozen=True)
class DynamicFilter:
    """Restrict a fragment at run time to the join keys another fragment produced.

    The build fragment runs first; if its distinct keys are few enough, the probe fragment is
    re-negotiated with `probe_column IN (<keys>)` before it starts. Only planned for inner
    equi-joins, where rows without a matching key cannot reach the result.
    """

    build: str  # fragment name
    build_column: str  # output column of the build fragment
    probe_column: exp.Column  # the probe's source-level column, qualified by its scan alias
    # Worth only as an IN list (a range would pass nearly every probe row): the probe starts
    # unfiltered once the build side shows more than `max_keys` distinct keys.
    listed_only: bool = False
    # Keys listed at most: MAX_LISTED_KEYS in the SQL (`IN (...)`), or up to MAX_KEY_SET for
    # a probe whose source takes a key set (`Connector.restrict_to_keys`).
    max_keys: int = MAX_LISTED_KEYS


@dataclass(frozen=True)
class Fragment:
    """One query sent to one source; the residual reads it as the relation `name`."""

    name: str
    source: str
    handle: PushedQuery
    sql: str
    pushed: tuple[str, ...]  # what the source absorbed, for EXPLAIN ("filter ...", "join ...")
    dynamic_filter: DynamicFilter | None = None
    policies: tuple[str, ...] = ()  # set when the fragment is a whole policy barrier


@dataclass(frozen=True)
class MergeScan:
    """A table the merge DuckDB reads itself (a connector's `LocalScan`), for EXPLAIN: the
    relation is inline in the residual, so no fragment runs for it."""

    name: str
    source: str
    sql: str  # the FROM item as the merge runs it: physical paths, admins only


@dataclass(frozen=True)
class PolicyStage:
    """A policy barrier the sources could not run whole, planned and run as its own query.

    The outer merge reads its output as the relation `name`. Running it as a separate DuckDB
    query is the fence: the merge's optimizer cannot move the user's predicates below the
    barrier's row filter or masks (ARCHITECTURE.md §4.9).
    """

    name: str
    product: str
    policies: tuple[str, ...]
    plan: FederatedPlan


@dataclass(frozen=True)
class FederatedPlan:
    """Fragments plus the residual DuckDB runs over them (None: the one fragment is the result)."""

    fragments: tuple[Fragment, ...]
    residual: exp.Query | None
    schema: pa.Schema
    local_work: tuple[str, ...]  # work that stayed in the merge layer although a source had it
    local_tables: Mapping[str, pa.Table] = field(default_factory=dict)  # system tables
    stages: tuple[PolicyStage, ...] = ()
    merge_scans: tuple[MergeScan, ...] = ()
    engine: str = "duckdb"  # which residual engine runs the residual: "duckdb" or "spark"
    engine_reason: str = ""  # why (EXPLAIN): the option that asked, or auto's estimate

    @property
    def residual_sql(self) -> str | None:
        """The merge's SQL (EXPLAIN), its client parameters numbered `$1..$m` as it binds them."""
        if self.residual is None:
            return None
        numbered, _ = renumbered(self.residual)
        return numbered.sql(dialect=CANONICAL_DIALECT, comments=False)
