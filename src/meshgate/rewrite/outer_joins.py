"""A LEFT JOIN whose null-supplied side the WHERE requires non-null is an inner join.

Decorrelating `x IN (SELECT k ...)` leaves `LEFT JOIN (SELECT k ...) AS _u_0 ON x = _u_0.k
WHERE NOT _u_0.k IS NULL` (TPC-H Q18's HAVING subquery, 57 keys). The WHERE drops every row
the LEFT JOIN null-extended, so the join is inner, and the answer the same: the rows an inner
join returns, each as often. As inner, the planner lets that side's keys restrict the other
fragments (dynamic filters).

Only for a joined side that is a grouped derived table with a HAVING, the one kind of derived
table the planner takes keys from: elsewhere the inner form bought nothing and the merge ran
slower (TPC-H Q4's EXISTS, 1.56x: DuckDB orders the join itself, without statistics on
fragment streams, where the LEFT JOIN fixed its build side).
"""

from __future__ import annotations

from sqlglot import exp

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def inner_null_rejected(tree: exp.Query) -> exp.Query:
    """Each plain LEFT JOIN of a grouped, HAVING-filtered derived table whose WHERE rejects
    NULL on that table -> JOIN.

    Only in SELECTs whose joins are inner, cross or LEFT (no RIGHT or FULL), and only for a
    conjunct that is `NOT c IS NULL` or a comparison with the column `c` itself as an operand,
    `c` of the joined alias: each is NULL or false on a null-extended row.

    `FROM a LEFT JOIN (SELECT x FROM b GROUP BY x HAVING ...) AS u ON a.x = u.x
    WHERE NOT u.x IS NULL` -> `FROM a JOIN (...) AS u ON a.x = u.x WHERE NOT u.x IS NULL`.
    """
    for select in tree.find_all(exp.Select):
        joins: list[exp.Join] = list(select.args.get("joins") or [])
        where = select.args.get("where")
        if where is None or not joins or not all(_plain(j) for j in joins):
            continue
        rejected = _null_rejected_aliases(where.this)
        for join in joins:
            if (
                join.args.get("side") == "LEFT"
                and join.this.alias_or_name in rejected
                and _grouped_having(join.this)
            ):
                join.set("side", None)
                join.set("kind", None)
    return tree


def _grouped_having(item: exp.Expr) -> bool:
    query = item.this if isinstance(item, exp.Subquery) else None
    return (
        isinstance(query, exp.Select)
        and query.args.get("group") is not None
        and query.args.get("having") is not None
    )


def _plain(join: exp.Join) -> bool:
    side = join.args.get("side")
    kind = (join.args.get("kind") or "").upper()
    return side in (None, "", "LEFT") and kind in ("", "INNER", "CROSS", "OUTER")


def _null_rejected_aliases(condition: exp.Expr) -> set[str]:
    conjuncts = condition.flatten() if isinstance(condition, exp.And) else [condition]
    aliases: set[str] = set()
    for conjunct in conjuncts:
        if (
            isinstance(conjunct, exp.Not)
            and isinstance(conjunct.this, exp.Is)
            and isinstance(conjunct.this.expression, exp.Null)
            and isinstance(conjunct.this.this, exp.Column)
        ):
            aliases.add(conjunct.this.this.table)
        elif isinstance(conjunct, _COMPARISONS):
            aliases.update(
                side.table
                for side in (conjunct.this, conjunct.expression)
                if isinstance(side, exp.Column)
            )
    aliases.discard("")
    return aliases
