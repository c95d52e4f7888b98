"""Resolve every product reference of a query against what the caller may see.

Names are `domain.product`, `catalog.domain.product`, or a bare `product` when the session
has a default domain. Anything unknown or not granted answers `ProductNotFound`, the same
for both (ARCHITECTURE.md §4.4). CTE names shadow products, as in any SQL engine.
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from meshgate.catalog.catalog import CatalogView, DataProduct
from meshgate.catalog.system import SYSTEM_SCHEMA, SYSTEM_TABLES, system_table
from meshgate.errors import ProductNotFound, UnsupportedQuery
from meshgate.query.model import BoundQuery
from meshgate.query.names import PRODUCT_META, local_table


def bind(tree: exp.Query, view: CatalogView, default_domain: str | None = None) -> BoundQuery:
    """Resolve product references on a copy of `tree`."""
    bound = tree.copy()
    # `current_user` is the caller, not whatever account an engine or source runs as.
    for node in list(bound.find_all(exp.CurrentUser)):
        node.replace(exp.Literal.string(view.principal.name))
    cte_names = {cte.alias_or_name for cte in bound.find_all(exp.CTE)}
    products: dict[str, DataProduct] = {}
    local_tables: dict[str, pa.Table] = {}
    for table in list(bound.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            raise UnsupportedQuery(
                f"table expression {table.sql('duckdb')} is not a data product; "
                "reference products as domain.product"
            )
        if not table.db and table.name in cte_names:
            continue
        if table.db == SYSTEM_SCHEMA and table.catalog in ("", view.name):
            if table.name not in SYSTEM_TABLES:
                raise ProductNotFound(f"{SYSTEM_SCHEMA}.{table.name}")
            name = f"system_{table.name}"
            local_tables[name] = system_table(table.name, view)
            table.replace(local_table(name, table.alias_or_name))
            continue
        product = _resolve(table, view, default_domain)
        table.meta[PRODUCT_META] = product
        products[product.qualified_name] = product
    return BoundQuery(bound, tuple(products.values()), local_tables)


def _resolve(table: exp.Table, view: CatalogView, default_domain: str | None) -> DataProduct:
    written = ".".join(p for p in (table.catalog, table.db, table.name) if p)
    if table.catalog and table.catalog != view.name:
        raise ProductNotFound(written)
    domain = table.db or default_domain
    if not domain:
        raise ProductNotFound(written)
    return view.product(domain, table.name)
