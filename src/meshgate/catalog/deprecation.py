"""Deprecated products: which of them a query reads, and what its caller is told.

A deprecated product keeps answering queries; the caller is warned (a Flight SQL header, the
server log) and the audit record lists it, so its owner can see who still depends on it. The
successor is named only to a caller who may read it: a product hidden from the caller stays
hidden, in a warning as everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable

from meshgate.catalog.catalog import Catalog, CatalogView, DataProduct


def deprecated_products(catalog: Catalog, names: Iterable[str]) -> tuple[DataProduct, ...]:
    """The deprecated ones among the products `names` (`<domain>.<product>`), in order."""
    found = []
    for name in names:
        domain, _, product_name = name.partition(".")
        product = catalog.products.get((domain, product_name))
        if product is not None and product.deprecated is not None:
            found.append(product)
    return tuple(found)


def visible_successor(product: DataProduct, view: CatalogView) -> str | None:
    """The product's successor, if the caller of `view` may read it."""
    successor = product.deprecated.successor if product.deprecated is not None else None
    return successor if successor is not None and view.readable(successor) else None


def deprecation_warning(product: DataProduct, view: CatalogView) -> str:
    """What the caller is told, e.g. "sales.orders is deprecated and may be removed after
    2027-01-31; use sales.orders_v2 instead (replaced by the order ledger)"."""
    deprecation = product.deprecated
    assert deprecation is not None
    text = (f"{product.qualified_name} is deprecated and may be removed after "
            f"{deprecation.sunset.isoformat()}")  # fmt: skip
    successor = visible_successor(product, view)
    if successor is not None:
        text += f"; use {successor} instead"
    if deprecation.reason:
        text += f" ({deprecation.reason})"
    return text
