"""Replace every bound product reference with the relation the caller is allowed to read.

A table-mapped product becomes `(SELECT <source column> AS <product column>, ... FROM
<physical table>) AS <alias>`; a SQL-defined product becomes its own (recursively secured)
query under the same alias. This is the single place where the governance issue will wrap
the product's row filter (on raw values) and column masks (as the projection), so that
everything the user wrote sees only the policy relation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from meshgate.catalog.catalog import DataProduct, QueryDefinition, TableDefinition
from meshgate.errors import UnsupportedQuery
from meshgate.spi import SourceColumn, SourceTable
from meshgate.sql.bind import PRODUCT_META, BoundQuery

SOURCE_PREFIX = "$source:"
# Physical tables always have three name parts; sources without schemas get this one.
DEFAULT_SCHEMA = "$default"
MAX_DEFINITION_DEPTH = 16


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


def physical_key(table: exp.Table) -> tuple[str, str | None, str]:
    source = source_of(table)
    assert source is not None
    return source, None if table.db == DEFAULT_SCHEMA else table.db, table.name


@dataclass(frozen=True)
class SecuredQuery:
    tree: exp.Query
    products: tuple[DataProduct, ...]
    tables: dict[tuple[str, str | None, str], PhysicalTable]
    local_tables: Mapping[str, pa.Table]


DefinitionBinder = Callable[[str], BoundQuery]


def secure(bound: BoundQuery, bind_definition: DefinitionBinder) -> SecuredQuery:
    """Swap each product reference for its relation; `bind_definition` binds product SQL."""
    tables: dict[tuple[str, str | None, str], PhysicalTable] = {}
    products: dict[str, DataProduct] = {p.qualified_name: p for p in bound.products}
    tree = _secure_tree(bound.tree, bind_definition, tables, products, depth=0)
    return SecuredQuery(tree, tuple(products.values()), tables, bound.local_tables)


def _secure_tree(
    tree: exp.Query,
    bind_definition: DefinitionBinder,
    tables: dict[tuple[str, str | None, str], PhysicalTable],
    products: dict[str, DataProduct],
    depth: int,
) -> exp.Query:
    if depth > MAX_DEFINITION_DEPTH:
        raise UnsupportedQuery("product definitions nest too deeply (a cycle between products?)")

    def replace(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Table) or PRODUCT_META not in node.meta:
            return node
        product: DataProduct = node.meta[PRODUCT_META]
        alias = node.alias_or_name
        if isinstance(product.definition, TableDefinition):
            relation = _table_relation(product, product.definition, alias, tables)
        else:
            relation = _query_relation(
                product, product.definition, bind_definition, tables, products, depth
            )
        return exp.Subquery(this=relation, alias=exp.TableAlias(this=exp.to_identifier(alias)))

    secured = tree.transform(replace, copy=True)
    assert isinstance(secured, exp.Query)
    return secured


def _table_relation(
    product: DataProduct,
    definition: TableDefinition,
    alias: str,
    tables: dict[tuple[str, str | None, str], PhysicalTable],
) -> exp.Select:
    key = (definition.source, definition.table.schema, definition.table.name)
    columns = tuple(
        SourceColumn(source_name, column.arrow_type, column.nullable)
        for source_name, column in zip(definition.source_columns, product.columns, strict=True)
    )
    known = tables.get(key)
    if known is not None:
        merged = {c.name: c for c in known.columns} | {c.name: c for c in columns}
        columns = tuple(merged.values())
    renames = dict(zip((c.name for c in product.columns), definition.source_columns, strict=True))
    primary_key = tuple(renames[k] for k in product.primary_key)
    tables[key] = PhysicalTable(definition.source, definition.table, columns, primary_key)
    physical = exp.Table(
        this=exp.to_identifier(definition.table.name, quoted=True),
        db=exp.to_identifier(definition.table.schema or DEFAULT_SCHEMA, quoted=True),
        catalog=exp.to_identifier(SOURCE_PREFIX + definition.source, quoted=True),
        alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
    )
    projections = [
        exp.alias_(exp.column(source_name, alias, quoted=True), column.name, quoted=True)
        for source_name, column in zip(definition.source_columns, product.columns, strict=True)
    ]
    return exp.select(*projections).from_(physical)


def _query_relation(
    product: DataProduct,
    definition: QueryDefinition,
    bind_definition: DefinitionBinder,
    tables: dict[tuple[str, str | None, str], PhysicalTable],
    products: dict[str, DataProduct],
    depth: int,
) -> exp.Select:
    bound = bind_definition(definition.sql)
    for used in bound.products:
        products.setdefault(used.qualified_name, used)
    inner = _secure_tree(bound.tree, bind_definition, tables, products, depth + 1)
    # Project exactly the declared columns, cast to their declared types: the contract.
    projections = [
        exp.alias_(exp.cast(exp.column(c.name, "d", quoted=True), c.sql_type), c.name, quoted=True)
        for c in product.columns
    ]
    return exp.select(*projections).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("d", quoted=True)))
    )
