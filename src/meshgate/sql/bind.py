"""Resolve every product reference of a query against what the caller may see.

Names are `domain.product`, `catalog.domain.product`, or a bare `product` when the session
has a default domain. Anything unknown or not granted answers `ProductNotFound`, the same
for both (ARCHITECTURE.md §4.4). CTE names shadow products, as in any SQL engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from meshgate.catalog.catalog import CatalogView, DataProduct
from meshgate.errors import ProductNotFound, UnsupportedQuery

PRODUCT_META = "meshgate_product"


@dataclass(frozen=True)
class BoundQuery:
    """A query whose product references are resolved; `tree` is never shared with callers.

    Each product reference is an `exp.Table` whose `meta[PRODUCT_META]` holds the product.
    """

    tree: exp.Query
    products: tuple[DataProduct, ...]


def bind(tree: exp.Query, view: CatalogView, default_domain: str | None = None) -> BoundQuery:
    """Resolve product references on a copy of `tree`."""
    bound = tree.copy()
    cte_names = {cte.alias_or_name for cte in bound.find_all(exp.CTE)}
    products: dict[str, DataProduct] = {}
    for table in list(bound.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            raise UnsupportedQuery(
                f"table expression {table.sql('duckdb')} is not a data product; "
                "reference products as domain.product"
            )
        if not table.db and table.name in cte_names:
            continue
        product = _resolve(table, view, default_domain)
        table.meta[PRODUCT_META] = product
        products[product.qualified_name] = product
    return BoundQuery(bound, tuple(products.values()))


def _resolve(table: exp.Table, view: CatalogView, default_domain: str | None) -> DataProduct:
    written = ".".join(p for p in (table.catalog, table.db, table.name) if p)
    if table.catalog and table.catalog != view.name:
        raise ProductNotFound(written)
    domain = table.db or default_domain
    if not domain:
        raise ProductNotFound(written)
    return view.product(domain, table.name)
