"""Replace every bound product reference with the relation the caller is allowed to read.

A table-mapped product becomes `(SELECT <source column> AS <product column>, ... FROM
<physical table>) AS <alias>`; a SQL-defined product becomes its own query under the same
alias, secured with its definer's rights (like a Trino view). Where the caller's policies
restrict a product (policies.PolicySet.for_caller), the reference becomes a policy barrier
instead: the row filter evaluated on raw values, then the masks as the projection, standing in
the tree as an opaque table that nothing the user wrote can reach into (ARCHITECTURE.md §4).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlglot import exp

from meshgate.catalog.catalog import DataProduct, QueryDefinition, TableDefinition
from meshgate.errors import UnsupportedQuery
from meshgate.policy.policies import EffectivePolicy, PolicySet
from meshgate.principal import Principal
from meshgate.query.model import BoundQuery, PolicyBarrier, SecuredQuery
from meshgate.query.names import (
    PRODUCT_META,
    PhysicalTable,
    TableKey,
    barrier_table,
    physical_table,
)
from meshgate.spi import SourceColumn

MAX_DEFINITION_DEPTH = 16
RAW = "raw"  # alias of the unrestricted relation inside a barrier body


DefinitionBinder = Callable[[str], BoundQuery]


@dataclass
class _Securing:
    """What one secure() call collects while it walks the tree and product definitions."""

    bind_definition: DefinitionBinder
    principal: Principal
    policies: PolicySet | None
    tables: dict[TableKey, PhysicalTable] = field(default_factory=dict)
    barriers: dict[str, PolicyBarrier] = field(default_factory=dict)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))


def secure(
    bound: BoundQuery,
    bind_definition: DefinitionBinder,
    principal: Principal,
    policies: PolicySet | None = None,
) -> SecuredQuery:
    """Swap each product reference for its relation, under `principal`'s policies.

    `bind_definition` binds product SQL (with definer's rights). Products read inside a
    definition are not restricted by the caller's policies; the definition's own columns are.
    """
    state = _Securing(bind_definition, principal, policies)
    tree = _secure_tree(bound.tree, state, depth=0)
    return SecuredQuery(tree, state.tables, bound.local_tables, state.barriers)


def _secure_tree(tree: exp.Query, state: _Securing, depth: int) -> exp.Query:
    if depth > MAX_DEFINITION_DEPTH:
        raise UnsupportedQuery("product definitions nest too deeply (a cycle between products?)")

    def replace(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Table) or PRODUCT_META not in node.meta:
            return node
        product: DataProduct = node.meta[PRODUCT_META]
        alias = node.alias_or_name
        if isinstance(product.definition, TableDefinition):
            relation = _table_relation(product, product.definition, alias, state.tables)
        else:
            relation = _query_relation(product, product.definition, state, depth)
        # The caller's policies apply to what the caller named; inside a definition the
        # definer's rights hold (depth > 0).
        if state.policies is not None and depth == 0:
            policy = state.policies.for_caller(product, state.principal)
            if policy.restricts:
                return _barrier(product, relation, policy, state.policies.hash_key, alias, state)
        return exp.Subquery(this=relation, alias=exp.TableAlias(this=exp.to_identifier(alias)))

    secured = tree.transform(replace)
    assert isinstance(secured, exp.Query)
    return secured


def _barrier(
    product: DataProduct,
    relation: exp.Select,
    policy: EffectivePolicy,
    hash_key: bytes | None,
    alias: str,
    state: _Securing,
) -> exp.Table:
    """`SELECT masks FROM (relation) raw WHERE filter` as a barrier named `b<n>`.

    Policy text names the product's columns bare, and so does this projection: `raw` is the
    body's only relation, and the rewrite qualifies the body before any rule sees it. Product
    and column names are lower-case identifiers (config), so they need no quotes.
    """
    projections = []
    for column in product.columns:
        value: exp.Expr = exp.column(column.name)
        for mask in policy.masks.get(column.name, ()):
            value = mask.apply(value, column, hash_key)
        projections.append(exp.alias_(value, column.name))
    body = exp.select(*projections).from_(exp.alias_(exp.Subquery(this=relation), RAW, table=True))
    if policy.row_filter is not None:
        body = body.where(policy.row_filter.copy())
    name = f"b{next(state.counter)}"
    state.barriers[name] = PolicyBarrier(
        name,
        product.qualified_name,
        body,
        tuple((c.name, c.sql_type) for c in product.columns),
        frozenset(policy.masks),
        policy.names,
    )
    return barrier_table(name, alias)


def _table_relation(
    product: DataProduct,
    definition: TableDefinition,
    alias: str,
    tables: dict[TableKey, PhysicalTable],
) -> exp.Select:
    key = (definition.source, definition.table.schema, definition.table.name)
    pairs = list(zip(definition.source_columns, product.columns, strict=True))
    columns = tuple(
        SourceColumn(name, column.arrow_type, column.nullable) for name, column in pairs
    )
    known = tables.get(key)
    if known is not None:
        merged = {c.name: c for c in known.columns} | {c.name: c for c in columns}
        columns = tuple(merged.values())
    renames = {column.name: name for name, column in pairs}
    primary_key = tuple(renames[k] for k in product.primary_key)
    tables[key] = PhysicalTable(definition.source, definition.table, columns, primary_key)
    physical = physical_table(definition.source, definition.table, alias)
    # Source names are quoted (they keep their case and may hold any character); product
    # names need no quotes. The table is the select's only relation: names need no qualifier.
    projections = [exp.alias_(exp.column(name, quoted=True), column.name) for name, column in pairs]
    return exp.select(*projections).from_(physical, copy=False)


def _query_relation(
    product: DataProduct, definition: QueryDefinition, state: _Securing, depth: int
) -> exp.Select:
    bound = state.bind_definition(definition.sql)
    inner = _secure_tree(bound.tree, state, depth + 1)
    # Project exactly the declared columns, cast to their declared types: the contract.
    projections = [
        exp.alias_(exp.cast(exp.column(c.name), c.sql_type), c.name) for c in product.columns
    ]
    return exp.select(*projections).from_(exp.alias_(exp.Subquery(this=inner), "d", table=True))
