"""Resolve every table reference of a query, by SQL's scoping rules (ARCHITECTURE.md §4.8).

A reference resolves to exactly one of: a CTE in scope, a product the caller may read, a table
of the ``meshgate`` system schema or of ``information_schema`` (both built from meshgate's
catalog for this caller), or ``ProductNotFound`` (the same answer for unknown and ungranted
products, §4.4). Nothing else the user writes, such as an engine's catalog
(``duckdb_settings``, ``pg_catalog.pg_tables``) or meshgate's internal names (fragment
streams, ``"$source:..."`` tables), can reach the merge engine or a source.

A CTE is visible in its own WITH only: the query the WITH belongs to, the CTEs after it in the
same WITH and, under WITH RECURSIVE, its own body. Names compare case-insensitively, as in
DuckDB. Each CTE and each reference to it is renamed to one name unique in the tree, so every
later stage (and the merge engine) sees the same binding, whatever its own shadowing rules.

Product names are `domain.product`, `catalog.domain.product`, or a bare `product` when the
session has a default domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import count

import pyarrow as pa
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from meshgate.catalog.catalog import CatalogView, DataProduct
from meshgate.catalog.information_schema import (
    INFORMATION_SCHEMA,
    INFORMATION_SCHEMA_TABLES,
    information_schema_table,
)
from meshgate.catalog.system import SYSTEM_SCHEMA, SYSTEM_TABLES, system_table
from meshgate.errors import ProductNotFound, UnsupportedQuery
from meshgate.principal import Principal
from meshgate.query.model import BoundQuery
from meshgate.query.names import PRODUCT_META, folded, local_table
from meshgate.sql.principal_functions import substitute_principal

# What a table reference may carry: anything else on the node (TABLESAMPLE, PIVOT, a
# parenthesised join, time travel, ...) would be dropped when the reference is replaced by its
# policy relation, so it is refused rather than lost.
_PLAIN_TABLE_ARGS = frozenset({"this", "db", "catalog", "alias"})
_TABLE_MODIFIERS: Mapping[str, tuple[str, str]] = {
    "sample": ("TABLESAMPLE", "take a sample with ORDER BY random() LIMIT n"),
    "pivots": ("PIVOT or UNPIVOT", "aggregate with GROUP BY and CASE or FILTER (WHERE ...)"),
    "joins": ("a parenthesised join such as (a JOIN b ON ...)", "remove the parentheses"),
    "laterals": ("LATERAL VIEW", "use CROSS JOIN LATERAL (SELECT ...) or UNNEST"),
    "when": ("time travel (AT, BEFORE)", "query the product as it is now"),
    "version": ("time travel (FOR ... AS OF)", "query the product as it is now"),
    "system_time": ("time travel (FOR SYSTEM_TIME)", "query the product as it is now"),
    "changes": ("CHANGES", "query the product as it is now"),
    "only": ("ONLY", "reference the product by its name"),
    "ordinality": ("WITH ORDINALITY", "number rows with row_number() OVER ()"),
}
_CTE_SUFFIX = "$cte"


def bind(
    tree: exp.Query,
    view: CatalogView,
    principal: Principal,
    default_domain: str | None = None,
) -> BoundQuery:
    """Resolve every table reference on a copy of `tree`, or raise.

    `view` is what may be read (the caller's products, or every product when binding a
    product's definition); `principal` is who is asking, whose values replace
    ``current_user``, ``current_roles()`` and ``user_attribute(...)``.
    """
    bound = folded(substitute_principal(tree, principal))
    assert isinstance(bound, exp.Query)
    _qualify_columns_by_table(bound)
    binder = _Binder(view, default_domain)
    binder.visit(bound, {})
    binder.require_total(bound)
    return BoundQuery(bound, tuple(binder.products.values()), binder.local_tables)


class _Binder:
    """One walk over a query tree, carrying the CTE names visible at each node."""

    def __init__(self, view: CatalogView, default_domain: str | None) -> None:
        self.view = view
        self.default_domain = default_domain
        self.products: dict[str, DataProduct] = {}
        self.local_tables: dict[str, pa.Table] = {}
        self._resolved: set[int] = set()
        self._cte_numbers = count(1)

    def visit(self, node: exp.Expr, ctes: Mapping[str, str]) -> None:
        """Bind `node` and everything below it; `ctes` maps visible CTE names to new names."""
        if isinstance(node, exp.Table):
            self._bind_table(node, ctes)
            return
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            ctes = self._bind_with(with_, ctes)
        for child in list(node.iter_expressions()):
            if child is not with_:
                self.visit(child, ctes)

    def require_total(self, tree: exp.Expr) -> None:
        """Fail closed should any table reference have escaped the walk."""
        for table in tree.find_all(exp.Table):
            if id(table) not in self._resolved:
                raise UnsupportedQuery(
                    f"meshgate could not resolve the table reference {table.sql('duckdb')}; "
                    "reference products as domain.product"
                )

    def _bind_with(self, with_: exp.With, outer: Mapping[str, str]) -> dict[str, str]:
        """Bind each CTE body in its scope; return the names the WITH's query sees."""
        scope = dict(outer)
        recursive = bool(with_.args.get("recursive"))
        for cte in with_.expressions:
            assert isinstance(cte, exp.CTE)
            written = cte.alias_or_name
            renamed = f"{written.lower()}{_CTE_SUFFIX}{next(self._cte_numbers)}"
            if recursive:
                scope[written.lower()] = renamed
            self.visit(cte.this, dict(scope))
            scope[written.lower()] = renamed
            alias = cte.args.get("alias")
            assert isinstance(alias, exp.TableAlias)
            alias.set("this", exp.to_identifier(renamed, quoted=True))
        return scope

    def _bind_table(self, table: exp.Table, ctes: Mapping[str, str]) -> None:
        _require_plain(table)
        if not table.db and not table.catalog and table.name.lower() in ctes:
            if not table.args.get("alias"):
                table.set("alias", exp.TableAlias(this=table.this.copy()))
            table.set("this", exp.to_identifier(ctes[table.name.lower()], quoted=True))
            self._resolved.add(id(table))
            return
        relation = _catalog_relation(table, self.view)
        if relation is not None:
            schema, name = relation
            local_name = f"{'system' if schema == SYSTEM_SCHEMA else schema}_{name}"
            self.local_tables[local_name] = (
                system_table(name, self.view)
                if schema == SYSTEM_SCHEMA
                else information_schema_table(name, self.view)
            )
            local = local_table(local_name, table.alias_or_name)
            table.replace(local)
            self._resolved.add(id(local))
            return
        product = _resolve(table, self.view, self.default_domain)
        table.meta[PRODUCT_META] = product
        self.products[product.qualified_name] = product
        self._resolved.add(id(table))


def _qualify_columns_by_table(tree: exp.Query) -> None:
    """`hr.employees.id` (as SQLAlchemy and BI tools write it) -> `employees.id` where the
    scope reads `hr.employees` unaliased: once a table is bound its domain is gone, and
    column references must name what the FROM clause calls it. Three-part names that match no
    such table are left alone (`t.address.city` is a struct field of alias `t`)."""
    for scope in traverse_scope(tree):
        for column in scope.columns:
            if not column.args.get("db"):
                continue
            if _names_unaliased_table(scope, column):
                column.set("db", None)
                column.set("catalog", None)


def _names_unaliased_table(scope: Scope, column: exp.Column) -> bool:
    current: Scope | None = scope
    while current is not None:
        source = current.sources.get(column.table) or next(
            (s for name, s in current.sources.items() if name.lower() == column.table.lower()),
            None)
        if source is not None:
            return (isinstance(source, exp.Table) and not source.args.get("alias")
                    and source.db.lower() == column.db.lower()
                    and column.catalog.lower() in ("", source.catalog.lower()))
        current = current.parent
    return False


def _require_plain(table: exp.Table) -> None:
    """A table reference is a name and an optional alias; anything else is refused."""
    if not isinstance(table.this, exp.Identifier):
        raise UnsupportedQuery(
            f"table expression {table.sql('duckdb')} is not a data product; "
            "reference products as domain.product"
        )
    for key, value in table.args.items():
        if value and key not in _PLAIN_TABLE_ARGS:
            feature, advice = _TABLE_MODIFIERS.get(
                key, (f"{key.upper()} on a table reference", "reference the table plainly")
            )
            raise UnsupportedQuery(f"{feature} is not supported yet; {advice}")
    alias = table.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        raise UnsupportedQuery(
            "column aliases on a table reference (FROM t AS x(a, b)) are not supported yet; "
            "rename the columns in the SELECT list"
        )


def _catalog_relation(table: exp.Table, view: CatalogView) -> tuple[str, str] | None:
    """(schema, table) when `table` names a relation of meshgate's own catalog (the `meshgate`
    system schema or `information_schema`), None when it names no such schema; an unknown
    table in those schemas answers like a missing product."""
    if table.catalog not in ("", view.name):
        return None
    relations = {SYSTEM_SCHEMA: SYSTEM_TABLES, INFORMATION_SCHEMA: INFORMATION_SCHEMA_TABLES}
    names = relations.get(table.db)
    if names is None:
        return None
    if table.name not in names:
        raise ProductNotFound(f"{table.db}.{table.name}")
    return table.db, table.name


def resolve_relation(
    table: exp.Table, view: CatalogView, default_domain: str | None = None
) -> tuple[str, str]:
    """(schema, table) of what a reference such as DESCRIBE's target names, by the rules a
    query's FROM follows: a catalog relation or a product the caller may read, else
    ProductNotFound with the text a query would get."""
    named = folded(table)
    assert isinstance(named, exp.Table)
    relation = _catalog_relation(named, view)
    if relation is not None:
        return relation
    product = _resolve(named, view, default_domain)
    return product.domain, product.name


def _resolve(table: exp.Table, view: CatalogView, default_domain: str | None) -> DataProduct:
    written = ".".join(p for p in (table.catalog, table.db, table.name) if p)
    if table.catalog and table.catalog != view.name:
        raise view.not_found(written, table.name)
    domain = table.db or default_domain
    if not domain:
        raise view.not_found(written, table.name)
    return view.product(domain, table.name)
