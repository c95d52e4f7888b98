"""How physical and in-memory relations are named inside a query tree.

Only meshgate puts these names into a tree: binding resolves every table a user writes to a
product, a CTE in scope, a system table or an error (ARCHITECTURE.md §4.8).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from meshgate.spi import CANONICAL_DIALECT, SourceColumn, SourceTable

SOURCE_PREFIX = "$source:"
# Physical tables always have three name parts; sources without schemas get this one.
DEFAULT_SCHEMA = "$default"
# In-memory relations the merge layer holds (the system schema) are named in this catalog.
LOCAL_CATALOG = "$local"
LOCAL_SCHEMA = "$default"
# Policy barriers (model.PolicyBarrier) stand in the tree as tables of this catalog.
BARRIER_CATALOG = "$barrier"
# The binder marks each product reference: `table.meta[PRODUCT_META]` is its DataProduct.
PRODUCT_META = "meshgate_product"

TableKey = tuple[str, str | None, str]


@dataclass(frozen=True)
class PhysicalTable:
    """A source table a secured query reads, with the typed columns it may use."""

    source: str
    table: SourceTable
    columns: tuple[SourceColumn, ...]
    primary_key: tuple[str, ...] = ()


def source_of(table: exp.Table) -> str | None:
    """The source a physical table node belongs to, or None for anything else."""
    catalog = table.catalog
    return catalog[len(SOURCE_PREFIX) :] if catalog.startswith(SOURCE_PREFIX) else None


def physical_key(table: exp.Table) -> TableKey:
    """The (source, schema, table) identity of a physical table node."""
    source = source_of(table)
    assert source is not None
    return source, None if table.db == DEFAULT_SCHEMA else table.db, table.name


def folded(tree: exp.Expr) -> exp.Expr:
    """`tree` (a copy) with every name the user wrote folded to lower case, quoted or not: how
    DuckDB, whose SQL users write, matches names. Only user-written trees are folded (queries,
    product definitions, policy expressions); the physical names meshgate adds after binding
    stay exact, and later stages compare quoted names exactly.
    """
    result: exp.Expr = normalize_identifiers(tree.copy(), dialect=CANONICAL_DIALECT)
    return result


def _table(catalog: str, schema: str, name: str, alias: str) -> exp.Table:
    return exp.Table(
        this=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(schema, quoted=True),
        catalog=exp.to_identifier(catalog, quoted=True),
        alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
    )


def physical_table(source: str, table: SourceTable, alias: str) -> exp.Table:
    """A reference to a source table under `alias`, as the secured tree spells it."""
    return _table(SOURCE_PREFIX + source, table.schema or DEFAULT_SCHEMA, table.name, alias)


def local_table(name: str, alias: str) -> exp.Table:
    """A reference to an in-memory relation of the merge layer."""
    return _table(LOCAL_CATALOG, LOCAL_SCHEMA, name, alias)


def barrier_table(name: str, alias: str) -> exp.Table:
    """The opaque stand-in of a policy barrier under the user's alias."""
    return _table(BARRIER_CATALOG, DEFAULT_SCHEMA, name, alias)


def barrier_of(table: exp.Table) -> str | None:
    """The barrier a table node stands for, or None."""
    return table.name if table.catalog == BARRIER_CATALOG else None
