"""Replace every bound product reference with the relation the caller is allowed to read.

A table-mapped product becomes `(SELECT <source column> AS <product column>, ... FROM
<physical table>) AS <alias>`; a SQL-defined product becomes its own (recursively secured)
query under the same alias. This is the single place where the governance issue will wrap
the product's row filter (on raw values) and column masks (as the projection), so that
everything the user wrote sees only the policy relation.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from meshgate.catalog.catalog import DataProduct, QueryDefinition, TableDefinition
from meshgate.errors import UnsupportedQuery
from meshgate.query.model import BoundQuery, SecuredQuery
from meshgate.query.names import PRODUCT_META, PhysicalTable, TableKey, physical_table
from meshgate.spi import SourceColumn

MAX_DEFINITION_DEPTH = 16


DefinitionBinder = Callable[[str], BoundQuery]


def secure(bound: BoundQuery, bind_definition: DefinitionBinder) -> SecuredQuery:
    """Swap each product reference for its relation; `bind_definition` binds product SQL."""
    tables: dict[TableKey, PhysicalTable] = {}
    products: dict[str, DataProduct] = {p.qualified_name: p for p in bound.products}
    tree = _secure_tree(bound.tree, bind_definition, tables, products, depth=0)
    return SecuredQuery(tree, tuple(products.values()), tables, bound.local_tables)


def _secure_tree(
    tree: exp.Query,
    bind_definition: DefinitionBinder,
    tables: dict[TableKey, PhysicalTable],
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
    tables: dict[TableKey, PhysicalTable],
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
    physical = physical_table(definition.source, definition.table, alias)
    projections = [
        exp.alias_(exp.column(source_name, alias, quoted=True), column.name, quoted=True)
        for source_name, column in zip(definition.source_columns, product.columns, strict=True)
    ]
    return exp.select(*projections).from_(physical)


def _query_relation(
    product: DataProduct,
    definition: QueryDefinition,
    bind_definition: DefinitionBinder,
    tables: dict[TableKey, PhysicalTable],
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
