"""Normalise a secured query before planning: the one place sqlglot's optimizer rules run over a
whole query (the binder only folds the names a user wrote, `query.names.folded`).

The rule list is curated (sqlglot-notes.md): qualify against the physical tables' typed
schema, inline CTEs and product relations into their users where that is safe, decorrelate,
move predicates towards the scans, and simplify. Each call uses keyword arguments because the
optimizer's signatures drift between versions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.eliminate_ctes import eliminate_ctes
from sqlglot.optimizer.merge_subqueries import merge_subqueries
from sqlglot.optimizer.normalize import normalize
from sqlglot.optimizer.pushdown_predicates import pushdown_predicates
from sqlglot.optimizer.pushdown_projections import pushdown_projections
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.simplify import simplify
from sqlglot.optimizer.unnest_subqueries import unnest_subqueries
from sqlglot.schema import MappingSchema

from meshgate.errors import ColumnNotFound, UnsupportedQuery
from meshgate.query.model import PolicyBarrier
from meshgate.query.names import (
    BARRIER_CATALOG,
    DEFAULT_SCHEMA,
    LOCAL_CATALOG,
    LOCAL_SCHEMA,
    SOURCE_PREFIX,
    PhysicalTable,
    TableKey,
)
from meshgate.rewrite.outer_joins import inner_null_rejected
from meshgate.spi import CANONICAL_DIALECT
from meshgate.spi.parameters import parameter_position
from meshgate.types import wire_sql_text


def physical_schema(
    tables: Mapping[TableKey, PhysicalTable],
    local_tables: Mapping[str, pa.Table],
    barriers: Mapping[str, PolicyBarrier] | None = None,
) -> MappingSchema:
    """The typed schema of every physical, local and barrier table, by three-part name."""
    nested: dict[str, Any] = {}
    for name, barrier in (barriers or {}).items():
        nested.setdefault(BARRIER_CATALOG, {}).setdefault(DEFAULT_SCHEMA, {})[name] = {
            column: sql_type.sql(CANONICAL_DIALECT) for column, sql_type in barrier.columns
        }
    for name, table in local_tables.items():
        nested.setdefault(LOCAL_CATALOG, {}).setdefault(LOCAL_SCHEMA, {})[name] = {
            f.name: wire_sql_text(f.type) for f in table.schema
        }
    for (source, schema, name), table in tables.items():
        columns = {c.name: wire_sql_text(c.type) for c in table.columns}
        nested.setdefault(SOURCE_PREFIX + source, {}).setdefault(schema or DEFAULT_SCHEMA, {})[
            name
        ] = columns
    return MappingSchema(nested, dialect=CANONICAL_DIALECT, normalize=False)


# How qualify() normalises names: unquoted ones fold to lower case, quoted ones stay exact.
# DuckDB's own strategy folds quoted names too, which would turn a source's `"Ledger Entries"`
# into a table no source has and lose the case of a quoted alias.
_NAMES = f"{CANONICAL_DIALECT}, normalization_strategy=lowercase"


def qualify_query(tree: exp.Query, schema: MappingSchema) -> exp.Query:
    """Qualify every column and expand stars; unknown columns are the caller's error."""
    try:
        qualified = qualify(
            name_values_columns(tree.copy()),
            dialect=_NAMES,
            schema=schema,
            expand_stars=True,
            qualify_columns=True,
            validate_qualify_columns=True,
            quote_identifiers=True,
            identify=True,
            isolate_tables=False,
        )
    except OptimizeError as exc:
        raise ColumnNotFound(_column_message(str(exc))) from None
    except AssertionError:  # sqlglot's assert_is, e.g. ORDER BY 1 over a scalar subquery
        raise UnsupportedQuery(
            "meshgate cannot resolve a positional reference (GROUP BY or ORDER BY <number>) "
            "to this select item; give the item an alias and refer to it by that name"
        ) from None
    assert isinstance(qualified, exp.Query)
    return qualified


def name_values_columns(tree: exp.Query) -> exp.Query:
    """Name every VALUES list's columns as DuckDB does, `col0, col1, ...`, after the names
    the user gave, and a one-list UNNEST's `unnest`: qualify() can then expand `*` over them,
    and the result carries DuckDB's names.

    `SELECT * FROM (VALUES (1, 'a')) AS v(n)` -> `... AS v(n, col1)`.
    """
    for values in list(tree.find_all(exp.Values)):
        wrapper = values.parent
        if isinstance(wrapper, exp.Subquery) and isinstance(wrapper.parent, (exp.From, exp.Join)):
            # `FROM ((VALUES ...) AS v)`: the alias on the VALUES itself, where qualify() reads it
            alias = wrapper.args.get("alias")
            wrapper.replace(values)
            values.set("alias", alias)
        if not isinstance(values.parent, (exp.From, exp.Join)) or not values.expressions:
            continue
        first = values.expressions[0]
        width = len(first.expressions) if isinstance(first, exp.Tuple) else 1
        alias = values.args.get("alias")
        if not isinstance(alias, exp.TableAlias):
            alias = exp.TableAlias(this=exp.to_identifier("values", quoted=True))
            values.set("alias", alias)
        named = list(alias.columns)
        named += [exp.to_identifier(f"col{i}", quoted=True) for i in range(len(named), width)]
        alias.set("columns", named)
    for unnest in tree.find_all(exp.Unnest):
        # `FROM unnest([1, 2])`: DuckDB names its one column `unnest`
        if isinstance(unnest.parent, (exp.From, exp.Join)) and len(unnest.expressions) == 1:
            alias = unnest.args.get("alias")
            if not isinstance(alias, exp.TableAlias):
                alias = exp.TableAlias(this=exp.to_identifier("unnest", quoted=True))
                unnest.set("alias", alias)
            if not alias.columns:
                alias.set("columns", [exp.to_identifier("unnest", quoted=True)])
    return tree


_COMPARED = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)
_UNTYPED = {exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL}


def type_parameters(
    tree: exp.Query, schema: MappingSchema, value_types: Sequence[exp.DataType | None]
) -> exp.Query:
    """Each placeholder `$k` as `CAST($k AS T)`: the plan then has one type per parameter, so
    it serves every value of those types, and every source binds the value as a driver
    parameter. `value_types` (by client position, from `value_type`) give T; UNKNOWN (text)
    takes its type from its use as a literal's would: text compared with a DATE column is a
    DATE, else VARCHAR; None (a NULL value) becomes a plain NULL.

    `WHERE o.orderdate > ?` bound to '1995-03-15' -> `o.orderdate > CAST($1 AS DATE)`.
    """
    typed = tree.copy()
    if any(t is not None and t.this == exp.DataType.Type.UNKNOWN for t in value_types):
        annotate_types(typed, schema=schema, dialect=CANONICAL_DIALECT)  # text takes its use's
    for node in list(typed.find_all(exp.Placeholder)):
        position = parameter_position(node)
        declared = value_types[position] if position < len(value_types) else None
        if declared is None:
            node.replace(exp.null())
            continue
        target = declared
        if declared.this == exp.DataType.Type.UNKNOWN:
            target = _context_type(node) or exp.DataType.build("VARCHAR")
        node.replace(exp.cast(node.copy(), target.copy()))
    return typed


def _context_type(node: exp.Placeholder) -> exp.DataType | None:
    """The type a literal in `node`'s place would take from what it is compared with."""
    parent = node.parent
    others: list[exp.Expr] = []
    if isinstance(parent, _COMPARED):
        others = [parent.this if parent.expression is node else parent.expression]
    elif isinstance(parent, exp.Between):
        others = [parent.this] if parent.this is not node else []
    elif isinstance(parent, exp.In) and parent.this is not node:
        others = [parent.this]
    for other in others:
        found = other.type
        if isinstance(found, exp.DataType) and found.this not in _UNTYPED:
            return found
    return None


def _column_message(detail: str) -> str:
    first = detail.splitlines()[0] if detail else "a column could not be resolved"
    return (
        f"{first}; list a product's columns with DESCRIBE domain.product "
        "(or SELECT column_name FROM information_schema.columns)"
    )


def normalise_conditions(tree: exp.Query) -> exp.Query:
    """`NOT (a AND b)` -> `NOT a OR NOT b` and friends, without exploding into DNF."""
    return _query(normalize(tree, dnf=False, max_distance=128))


def decorrelate(tree: exp.Query) -> exp.Query:
    """IN / EXISTS / scalar subqueries into joins where sqlglot can (`unnest_subqueries`)."""
    return _query(unnest_subqueries(tree))


def push_predicates(tree: exp.Query) -> exp.Query:
    """WHERE conjuncts towards the tables they use; barrier tables are opaque to it."""
    return _query(pushdown_predicates(tree, dialect=CANONICAL_DIALECT))


def merge_derived_tables(tree: exp.Query) -> exp.Query:
    """Product relations and derived tables into their users; never into a barrier."""
    return _query(merge_subqueries(tree, leave_tables_isolated=False))


def drop_unused_ctes(tree: exp.Query) -> exp.Query:
    return _query(eliminate_ctes(tree))


def prune_projections(tree: exp.Query) -> exp.Query:
    """Derived tables project only the columns their users read.

    An optimisation only: where sqlglot cannot trace a projection (a `*` it could not expand),
    the tree stays as it is.
    """
    try:
        return _query(pushdown_projections(tree))
    except OptimizeError:
        return tree


def simplify_expressions(tree: exp.Query) -> exp.Query:
    return _query(simplify(tree, dialect=CANONICAL_DIALECT))


def _query(result: exp.Expr) -> exp.Query:
    assert isinstance(result, exp.Query)
    return result


Rule = Callable[[exp.Query], exp.Query]


def normalise(
    tree: exp.Query, rules: Sequence[Rule] | None = None, *, copy: bool = True
) -> exp.Query:
    """Apply `RULES` in order to a qualified tree: a copy of it, or (`copy=False`, for a tree
    the caller owns) the tree itself."""
    result = tree.copy() if copy else tree
    for rule in RULES if rules is None else rules:
        result = rule(result)
    return result


def without_annotations(tree: exp.Query) -> exp.Query:
    """`tree` (changed in place) without the types and not-null marks the rules' type
    annotation left on its nodes.

    Nothing after the rewrite reads them (rendering annotates its own copy afresh, as
    sqlglot's annotate_types overwrites types), and every copy of a tree deep-copies each
    node's type and meta: the planner copies the rewritten tree and its parts many times.
    """
    for node in tree.walk():
        node._type = None
        meta = node._meta
        if meta is not None:
            meta.pop("nonnull", None)
            if not meta:
                node._meta = None
    return tree


def qualify_order_references(tree: exp.Query) -> exp.Query:
    """A select alias of a plain column used inside an ORDER BY expression -> that column.

    qualify() leaves such a name unqualified (it may be the alias), and DuckDB and PostgreSQL
    read a name inside an expression as a FROM column: once decorrelation joins `_u_0`, which
    has a column of the same name, the name would be ambiguous. A bare `ORDER BY region` stays:
    both read it as the alias.

    `SELECT e.region AS region ... ORDER BY lower(region)` -> `... ORDER BY LOWER(e.region)`.
    """
    for select in tree.find_all(exp.Select):
        order = select.args.get("order")
        if not isinstance(order, exp.Order):
            continue
        columns = {
            projection.alias: projection.this
            for projection in select.expressions
            if isinstance(projection, exp.Alias)
            and isinstance(projection.this, exp.Column)
            and projection.this.table
        }
        for ordered in order.expressions:
            for column in list(ordered.this.find_all(exp.Column)):
                named = columns.get(column.name)
                if column is ordered.this or column.table or named is None:
                    continue
                if column.find_ancestor(exp.Select) is select:
                    column.replace(named.copy())
    return tree


def explicit_cross_joins(tree: exp.Query) -> exp.Query:
    """`FROM a, b JOIN c ON a.x = c.y` -> `FROM a CROSS JOIN b JOIN c ...`.

    A comma binds looser than JOIN, so once predicates move into ON clauses a comma join would
    make `a` invisible to `c`'s condition; an explicit CROSS JOIN keeps left-to-right scoping.
    """
    for join in tree.find_all(exp.Join):
        if (
            not join.args.get("kind")
            and not join.args.get("side")
            and not join.args.get("on")
            and not join.args.get("using")
        ):
            join.set("kind", "CROSS")
    return tree


# The rewrite, in order (sqlglot-notes.md). Every rule sees barrier tables only as tables.
RULES: tuple[Rule, ...] = (
    qualify_order_references,
    explicit_cross_joins,
    normalise_conditions,
    decorrelate,
    inner_null_rejected,
    push_predicates,
    merge_derived_tables,
    drop_unused_ctes,
    prune_projections,
    simplify_expressions,
)
