"""The rewrite of a secured query, and the one rule that may cross a policy barrier.

The user's tree and each barrier's body are normalised separately: the body holds only the
policy's own expressions over the source, the tree sees each barrier as a table. Then
`move_safe_predicates` moves into a barrier body the user's conjuncts that cannot fail or
leak, so a filtered product still moves only the rows the user asked for (ARCHITECTURE.md §4.9).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlglot import exp

from meshgate.query.model import PolicyBarrier, SecuredQuery
from meshgate.query.names import barrier_of
from meshgate.rewrite.rules import (
    RULES,
    Rule,
    decorrelate,
    merge_derived_tables,
    normalise,
    physical_schema,
    qualify_query,
    type_parameters,
    without_annotations,
)
from meshgate.rewrite.subqueries import (
    Decorrelation,
    correlated_last,
    decorrelate_where,
    restrict_group_keys,
)

_TEXT = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR,
         exp.DataType.Type.NVARCHAR, exp.DataType.Type.NCHAR}  # fmt: skip
_TEMPORAL = {exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ,
             exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.DATETIME}  # fmt: skip
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)


@dataclass(frozen=True)
class RewrittenQuery:
    """The normalised user tree and the barriers it references, ready for the planner."""

    tree: exp.Query
    barriers: Mapping[str, PolicyBarrier]


def rewrite(
    secured: SecuredQuery,
    parameter_types: Sequence[exp.DataType | None] = (),
    decorrelation: Decorrelation | None = None,
) -> RewrittenQuery:
    """Qualify the tree, type its parameters (`parameter_types` by client position), and
    normalise it and every barrier body; then move safe predicates. `decorrelation` says
    which subqueries become joins (rewrite/subqueries.py); None: all that sqlglot can."""
    schema = physical_schema(secured.tables, secured.local_tables, secured.barriers)
    qualified = qualify_query(secured.tree, schema)
    if parameter_types:
        qualified = type_parameters(qualified, schema, parameter_types)
    # qualify_query copied the trees: the rules may change them in place
    tree = without_annotations(
        normalise(qualified, _rules(decorrelation, secured.barriers), copy=False))
    barriers = {
        name: replace(barrier, body=without_annotations(normalise(
            qualify_query(barrier.body, schema), _rules(decorrelation, {}), copy=False)))
        for name, barrier in secured.barriers.items()
    }  # fmt: skip
    return move_safe_predicates(RewrittenQuery(tree, barriers))


def _rules(
    decorrelation: Decorrelation | None, barriers: Mapping[str, PolicyBarrier]
) -> tuple[Rule, ...]:
    """The rewrite's rules with decorrelation limited to where `decorrelation` wants it."""
    if decorrelation is None:
        return RULES
    decide = decorrelation

    def selective(tree: exp.Query) -> exp.Query:
        return decorrelate_where(tree, decide, barriers)

    def group_keys(tree: exp.Query) -> exp.Query:
        return restrict_group_keys(tree, decide, barriers)

    rules: list[Rule] = []
    for rule in RULES:
        rules.append(selective if rule is decorrelate else rule)
        if rule is merge_derived_tables:
            rules.append(group_keys)
    return (*rules, correlated_last)


def move_safe_predicates(query: RewrittenQuery) -> RewrittenQuery:
    """WHERE conjuncts on one barrier's unmasked columns that cannot fail or leak go inside.

    `SELECT e.name FROM "$barrier".b1 AS e WHERE e.region = 'EU' AND 100 / (e.id - 7) > 1`
    moves `region = 'EU'` into b1's body; the division stays above the barrier.
    """
    tree = query.tree.copy()
    barriers = dict(query.barriers)
    for select in list(tree.find_all(exp.Select)):
        where = select.args.get("where")
        if where is None or not _joins_are_inner(select):
            continue
        refs = _barrier_refs(select)
        kept: list[exp.Expr] = []
        for conjunct in _conjuncts(where.this):
            tables = {c.table for c in conjunct.find_all(exp.Column)}
            alias = next(iter(tables)) if len(tables) == 1 else None
            barrier = barriers.get(refs.get(alias, "")) if alias is not None else None
            moved = barrier is not None and _try_move(conjunct, barrier, barriers)
            if not moved:
                kept.append(conjunct)
        if not kept:
            select.set("where", None)
        elif len(kept) < len(list(_conjuncts(where.this))):
            select.set("where", exp.Where(this=exp.and_(*kept)))
    return RewrittenQuery(tree, barriers)


def _try_move(
    conjunct: exp.Expr, barrier: PolicyBarrier, barriers: dict[str, PolicyBarrier]
) -> bool:
    body = barrier.body
    if not isinstance(body, exp.Select) or _computes(body):
        return False
    types = dict(barrier.columns)
    if not _is_safe(conjunct, types, barrier.masked):
        return False
    sources = {
        projection.alias_or_name: projection.this if isinstance(projection, exp.Alias)
        else projection
        for projection in body.expressions
    }  # fmt: skip

    def inner(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            source: exp.Expr = sources[node.name].copy()
            return source
        return node

    moved = conjunct.transform(inner, copy=True)
    barriers[barrier.name] = replace(barrier, body=body.copy().where(moved, copy=False))
    return True


def _computes(body: exp.Select) -> bool:
    """Bodies whose rows are not one-to-one with their source rows take no predicates."""
    if any(body.args.get(k) for k in ("group", "having", "qualify", "distinct", "limit",
                                      "offset", "windows")):  # fmt: skip
        return True
    return any(p.find(exp.AggFunc, exp.Window) for p in body.expressions)


def _is_safe(node: exp.Expr, types: Mapping[str, exp.DataType], masked: frozenset[str]) -> bool:
    """Comparisons of same-typed columns and constants, IS NULL, IN lists, AND/OR/NOT."""
    if isinstance(node, (exp.And, exp.Or)):
        return _is_safe(node.left, types, masked) and _is_safe(node.right, types, masked)
    if isinstance(node, (exp.Not, exp.Paren)):
        return _is_safe(node.this, types, masked)
    if isinstance(node, exp.Boolean):
        return True
    if isinstance(node, exp.Column):
        return _column_class(node, types, masked) == "boolean"
    if isinstance(node, exp.Is):
        return _column_class(node.this, types, masked) is not None and isinstance(
            node.expression, exp.Null
        )
    if isinstance(node, _COMPARISONS):
        return _same_class(node.this, node.expression, types, masked)
    if isinstance(node, exp.Between):
        return _same_class(node.this, node.args["low"], types, masked) and _same_class(
            node.this, node.args["high"], types, masked
        )
    if isinstance(node, exp.In):
        if node.args.get("query") is not None or node.args.get("unnest") is not None:
            return False
        return all(_same_class(node.this, value, types, masked) for value in node.expressions)
    return False


def _same_class(
    left: exp.Expr, right: exp.Expr, types: Mapping[str, exp.DataType], masked: frozenset[str]
) -> bool:
    classes = [_column_class(left, types, masked), _column_class(right, types, masked)]
    constants = [_constant_class(left), _constant_class(right)]
    if classes[0] is not None and classes[1] is not None:
        return classes[0] == classes[1]
    for column_class, constant in ((classes[0], constants[1]), (classes[1], constants[0])):
        if column_class is None or constant is None:
            continue
        if constant in ("null", column_class):
            return True
        # A string literal compared with a date is cast once, whatever the rows hold.
        if column_class == "temporal" and constant == "text":
            return True
    return False


def _column_class(
    node: exp.Expr, types: Mapping[str, exp.DataType], masked: frozenset[str]
) -> str | None:
    if not isinstance(node, exp.Column) or node.name in masked or node.name not in types:
        return None
    return _type_class(types[node.name])


def _type_class(data_type: exp.DataType) -> str | None:
    kind = data_type.this
    if kind in _TEXT:
        return "text"
    if kind in _TEMPORAL:
        return "temporal"
    if kind == exp.DataType.Type.BOOLEAN:
        return "boolean"
    if kind in exp.DataType.NUMERIC_TYPES:
        return "number"
    return None


def _constant_class(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Placeholder):
        # A client parameter, typed once by the plan: a constant of its type.
        return _type_class(node.to)
    if isinstance(node, exp.Neg):
        node = node.this
        return "number" if isinstance(node, exp.Literal) and not node.is_string else None
    if isinstance(node, exp.Literal):
        return "text" if node.is_string else "number"
    if isinstance(node, exp.Boolean):
        return "boolean"
    if isinstance(node, exp.Null):
        return "null"
    return None


def _barrier_refs(select: exp.Select) -> dict[str, str]:
    """alias -> barrier name, for the barrier tables this SELECT reads directly."""
    items = [select.args.get("from_"), *(select.args.get("joins") or [])]
    refs = {}
    for item in items:
        if item is not None and isinstance(item.this, exp.Table):
            name = barrier_of(item.this)
            if name is not None:
                refs[item.this.alias_or_name] = name
    return refs


def _joins_are_inner(select: exp.Select) -> bool:
    """Outer joins null-supply sides; predicates are moved only where every join is inner."""
    joins = select.args.get("joins") or []
    return all(not j.side and j.kind in ("", "INNER", "CROSS") for j in joins)


def _conjuncts(condition: exp.Expr) -> list[exp.Expr]:
    if isinstance(condition, exp.And):
        return [c for part in condition.flatten() for c in _conjuncts(part)]
    if isinstance(condition, exp.Paren) and isinstance(condition.this, exp.And):
        return _conjuncts(condition.this)
    return [condition]
