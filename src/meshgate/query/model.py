"""The values that travel between stages: each stage takes one and returns the next.

They are immutable; a stage that rewrites a tree copies it first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
from sqlglot import exp

from meshgate.catalog.catalog import DataProduct
from meshgate.query.names import PhysicalTable, TableKey


@dataclass(frozen=True)
class Statement:
    """One gated query: the stages after parsing receive this, never raw text.

    ``tree`` is freshly parsed for this call and owned by the caller (later stages copy it
    before rewriting). ``sql`` is the text exactly as the client sent it, for the audit record;
    nothing downstream may execute it. ``parameter_count`` is the number of values the client
    must bind (``?`` placeholders, or the highest ``$n``).
    """

    tree: exp.Query
    explain: bool
    parameter_count: int
    sql: str


CatalogCommandKind = Literal["describe", "show_tables", "show_schemas"]


@dataclass(frozen=True)
class CatalogCommand:
    """A gated DESCRIBE or SHOW: answered by a query over `information_schema` that the
    service writes (sql.catalog_commands), so it binds and is audited like any query.

    ``kind`` is ``describe`` (``name`` is the described relation), ``show_tables`` (``name``
    is the FROM's schema, optionally catalog-qualified; empty for the session's tables) or
    ``show_schemas``. Each name part is ``(text, quoted)`` as the user wrote it.
    """

    kind: CatalogCommandKind
    name: tuple[tuple[str, bool], ...]
    sql: str


@dataclass(frozen=True)
class BoundQuery:
    """A query whose product references are resolved; `tree` is never shared with callers.

    Each product reference is an `exp.Table` whose `meta[PRODUCT_META]` holds the product.
    """

    tree: exp.Query
    products: tuple[DataProduct, ...]
    local_tables: Mapping[str, pa.Table] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyBarrier:
    """A product's policy relation for one caller, standing in the tree as an opaque table.

    `body` is `SELECT <masked columns> FROM <source> WHERE <row filter>`. Rewrite rules and the
    planner see only the barrier table (`names.barrier_table`), so they can neither merge the
    body into the user's query nor move the user's predicates into it; one rule
    (rewrite.barrier) moves in conjuncts that cannot fail or leak, and the planner runs the
    body as its own fragment or stage (ARCHITECTURE.md §4.9).
    """

    name: str
    product: str
    body: exp.Query
    columns: tuple[tuple[str, exp.DataType], ...]  # output columns with their declared types
    masked: frozenset[str]
    policies: tuple[str, ...]


@dataclass(frozen=True)
class SecuredQuery:
    """A bound query whose product references are replaced by their policy relations."""

    tree: exp.Query
    tables: Mapping[TableKey, PhysicalTable]
    local_tables: Mapping[str, pa.Table]
    barriers: Mapping[str, PolicyBarrier] = field(default_factory=dict)

    @property
    def policies(self) -> tuple[str, ...]:
        """Names of every policy applied, for the audit record and EXPLAIN."""
        names = (n for b in self.barriers.values() for n in b.policies)
        return tuple(dict.fromkeys(names))
