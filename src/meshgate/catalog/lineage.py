"""Column-level lineage of SQL-defined products, traced once per catalog with sqlglot.

For every output column of a product defined by `query:`, which product columns it is computed
from (`depth` 1), and, through products that are themselves SQL-defined, the columns those
derive from (depth 2, 3, ...), down to table-backed products, whose source table and column end
the chain. Only direct derivations count: a column that a value is copied or computed from, not
one that only filters, joins or groups rows (`COUNT(*)` derives from no column).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from sqlglot import exp
from sqlglot.lineage import lineage as trace_column

from meshgate.catalog.catalog import Catalog, DataProduct, QueryDefinition, TableDefinition

log = logging.getLogger(__name__)

ProductKey = tuple[str, str]


@dataclass(frozen=True)
class ColumnLineage:
    """`product.column` derives from `upstream_product.upstream_column`.

    `path` is every product between them, `product` first and `upstream_product` last: a row
    is shown only to a caller who may read all of them. `source`, `source_table` and
    `source_column` are the physical origin when the upstream product is table-backed.
    """

    product: str
    column: str
    upstream_product: str
    upstream_column: str
    depth: int
    path: tuple[str, ...]
    source: str | None = None
    source_table: str | None = None
    source_column: str | None = None


_TRACED: weakref.WeakKeyDictionary[Catalog, tuple[ColumnLineage, ...]] = weakref.WeakKeyDictionary()


def mesh_lineage(catalog: Catalog) -> tuple[ColumnLineage, ...]:
    """Every lineage entry of the mesh, traced on first use and kept with the catalog."""
    traced = _TRACED.get(catalog)
    if traced is None:
        traced = trace_products(catalog.products)
        _TRACED[catalog] = traced
    return traced


def trace_products(products: Mapping[ProductKey, DataProduct]) -> tuple[ColumnLineage, ...]:
    """The lineage of every column of every SQL-defined product in `products`, by product
    and then in column order."""
    tracer = _Tracer(products)
    entries = [
        entry
        for key in sorted(products)
        if isinstance(products[key].definition, QueryDefinition)
        for column in products[key].columns
        for entry in tracer.column(key, column.name, ())
    ]
    return tuple(entries)


class _Tracer:
    """Traces columns through chains of products, remembering each product's direct inputs."""

    def __init__(self, products: Mapping[ProductKey, DataProduct]) -> None:
        self.products = products
        self._direct: dict[tuple[ProductKey, str], tuple[tuple[ProductKey, str], ...]] = {}
        self._schema = _schema(products)

    def column(
        self, key: ProductKey, column: str, seen: tuple[ProductKey, ...]
    ) -> Iterator[ColumnLineage]:
        """The entries of `key.column` at every depth, each direct input before its own."""
        product = self.products[key]
        for upstream_key, upstream_column in self.direct(key, column):
            upstream = self.products[upstream_key]
            definition = upstream.definition
            path = (product.qualified_name, upstream.qualified_name)
            if isinstance(definition, TableDefinition):
                index = [c.name for c in upstream.columns].index(upstream_column)
                yield ColumnLineage(
                    product.qualified_name, column, upstream.qualified_name, upstream_column,
                    1, path, definition.source, _table_name(definition),
                    definition.source_columns[index],
                )  # fmt: skip
                continue
            yield ColumnLineage(product.qualified_name, column, upstream.qualified_name,
                                upstream_column, 1, path)  # fmt: skip
            if upstream_key in (*seen, key):  # a cycle: the loader refuses them anyway
                continue
            for deeper in self.column(upstream_key, upstream_column, (*seen, key)):
                yield replace(deeper, product=product.qualified_name, column=column,
                              depth=deeper.depth + 1,
                              path=(product.qualified_name, *deeper.path))  # fmt: skip

    def direct(self, key: ProductKey, column: str) -> tuple[tuple[ProductKey, str], ...]:
        """The (product, column) pairs `key.column` is computed from in its definition."""
        cached = self._direct.get((key, column))
        if cached is None:
            cached = self._trace(self.products[key], column)
            self._direct[(key, column)] = cached
        return cached

    def _trace(self, product: DataProduct, column: str) -> tuple[tuple[ProductKey, str], ...]:
        definition = product.definition
        assert isinstance(definition, QueryDefinition)
        try:
            root = trace_column(column, definition.sql, schema=self._schema,
                                dialect="duckdb", trim_selects=False)  # fmt: skip
        except Exception as exc:  # lineage informs; a definition it cannot trace must not
            # keep the server from starting (the definition itself was checked at load)
            log.warning("no lineage for %s.%s: %s", product.qualified_name, column, exc)
            return ()
        found: dict[tuple[ProductKey, str], None] = {}
        for node in root.walk():
            source = node.source
            if node.downstream or not isinstance(source, exp.Table):
                continue
            upstream = self.products.get((source.db.lower(), source.name.lower()))
            if upstream is None:
                continue
            name = node.name.split(".")[-1].lower()
            for declared in (c.name for c in upstream.columns if c.name.lower() == name):
                found[((upstream.domain, upstream.name), declared)] = None
        return tuple(sorted(found))


def _schema(products: Mapping[ProductKey, DataProduct]) -> dict[str, dict[str, dict[str, str]]]:
    """Every product's columns and types, as sqlglot qualifies a definition's columns."""
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for (domain, name), product in products.items():
        schema.setdefault(domain, {})[name] = {
            c.name: c.sql_type.sql("duckdb") for c in product.columns
        }
    return schema


def _table_name(definition: TableDefinition) -> str:
    table = definition.table
    return f"{table.schema}.{table.name}" if table.schema else table.name
