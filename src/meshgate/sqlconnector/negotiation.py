"""Facts about a handle's SELECT that decide what may still be pushed on top of it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp


def is_row_level(select: exp.Select) -> bool:
    """No LIMIT, grouping, DISTINCT or window: a WHERE added now filters the same rows."""
    clauses = ("limit", "offset", "group", "having", "distinct", "order")
    return not any(select.args.get(k) for k in clauses) and not any(
        e.find(exp.AggFunc, exp.Window) for e in select.expressions
    )


def is_distinct(select: exp.Select) -> bool:
    return bool(select.args.get("distinct"))


def named(expressions: Sequence[exp.Expr]) -> list[exp.Expr] | None:
    """Each expression as `expr AS name` (a bare column keeps its name); None if unnamed or
    two outputs would share a name.

    e.g. [`t.id`, `t.qty * 2 AS twice`] -> [`t.id AS id`, `t.qty * 2 AS twice`].
    """
    outputs: list[exp.Expr] = []
    for expression in expressions:
        if isinstance(expression, exp.Alias):
            outputs.append(expression.copy())
        elif isinstance(expression, exp.Column):
            outputs.append(exp.alias_(expression.copy(), expression.name))
        else:
            return None
    names = [n.alias for n in outputs]
    return outputs if len(set(names)) == len(names) else None


def limit_of(select: exp.Select) -> int | None:
    limit = select.args.get("limit")
    if not isinstance(limit, exp.Limit):
        return None
    value = limit.expression
    return int(value.this) if isinstance(value, exp.Literal) and not value.is_string else None
