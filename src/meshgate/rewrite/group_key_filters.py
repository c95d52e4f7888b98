"""A grouped derived table joined on its group key takes its partner's filters as a semi-join.

Decorrelating a correlated aggregate (TPC-H Q17's `l_quantity < (SELECT 0.2 * AVG(...) FROM
lineitem WHERE l_partkey = p_partkey)`) makes a derived table that groups the whole of
lineitem, joined back on `p_partkey`. PostgreSQL pushes no join condition into a grouped
subquery, so it aggregates all 6M rows for the 200 parts the outer query keeps (28 s); DuckDB
would read them all too. Where the joined table `p` is filtered in the outer WHERE, the groups
that can ever join are those whose key is among the filtered `p`'s keys, so

    ... JOIN p ... [LEFT] JOIN (SELECT agg, k FROM t GROUP BY k) AS u ON p.c = u.k WHERE f(p)

gets `k IN (SELECT p2.c FROM p AS p2 WHERE f(p2))` inside the derived table: PostgreSQL runs
it as a hash semi-join and aggregates 6,000 rows (Q17: 5.1 s -> about the peer's time).
A semi-join confining `p.c` counts as such a filter: `[LEFT] JOIN (SELECT k FROM q WHERE
g(q) ...) AS d ON p.c = d.k` (LEFT with `NOT d.k IS NULL` in the WHERE: a decorrelated
`p.c IN (...)`) gives `k' IN (SELECT q2.k FROM q AS q2 WHERE g(q2) ...)` (Q20: the year's
lineitem aggregated for the 2,000 `forest%` parts, not for all 540,000 part/supplier pairs).

Only where the answer cannot change: the filter is on a GROUP BY expression (it removes whole
groups, never rows of a kept group); `u` is inner-joined or the null-supplied side of a LEFT
JOIN (its unmatched groups never reach the result); `p` is never null-supplied (no RIGHT or
FULL join in the SELECT, and not the right side of a LEFT JOIN), so `f(p)` holds on every
result row; `f` reads only `p`, with no subquery, parameter or volatile function. `p` is a
physical table, never a policy barrier: a barrier's rows are read only through its body, and
the added subquery reads nothing the user's query did not already read. Applied only where
`placement` says the SELECT goes down whole to one source (the semi-join goes down with it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from sqlglot import exp

from meshgate.query.names import barrier_of, source_of

# Whether a SELECT (by the sources it reads) runs whole at one source that semi-joins IN.
RunsWhole = Callable[[exp.Select], bool]

_VOLATILE = ("random", "now", "current_timestamp", "gen_random_uuid", "uuid")


def filter_group_keys(tree: exp.Query, runs_whole: RunsWhole) -> exp.Query:
    """`tree` with each eligible grouped derived table restricted to its partner's keys."""
    for select in list(tree.find_all(exp.Select)):
        if not runs_whole(select):
            continue
        joins = list(select.args.get("joins") or [])
        if any(j.side in ("RIGHT", "FULL") for j in joins):
            continue
        tables = _physical_tables(select, joins)
        for join in joins:
            _restrict(select, join, tables, tree)
    return tree


def _physical_tables(select: exp.Select, joins: list[exp.Join]) -> dict[str, exp.Table]:
    """The physical tables of `select`'s FROM and inner joins by alias (never null-supplied)."""
    items: list[exp.Expr] = []
    from_ = select.args.get("from_")
    if from_ is not None:
        items.append(from_.this)
    items += [j.this for j in joins if not j.side and j.kind in ("", "INNER", "CROSS")]
    return {
        t.alias_or_name: t
        for t in items
        if isinstance(t, exp.Table) and source_of(t) is not None and barrier_of(t) is None
    }


def _restrict(
    select: exp.Select, join: exp.Join, tables: dict[str, exp.Table], root: exp.Expr
) -> None:
    derived = join.this
    if not isinstance(derived, exp.Subquery) or join.side not in ("", "LEFT"):
        return
    if join.kind not in ("", "INNER", "OUTER"):
        return
    body = derived.this
    if not isinstance(body, exp.Select) or not body.args.get("group"):
        return
    alias = derived.alias_or_name
    on = join.args.get("on")
    if on is None:
        return
    conditions = list(_flatten(select.args["where"].this)) if select.args.get("where") else []
    for other in select.args.get("joins") or []:
        if not other.side and other.args.get("on") is not None:
            conditions += _flatten(other.args["on"])
    where = list(_flatten(select.args["where"].this)) if select.args.get("where") else []
    for conjunct in _flatten(on):
        pair = _key_pair(conjunct, alias, tables)
        if pair is None:
            continue
        output, partner, column = pair
        key = _group_key(body, output)
        if key is None:
            continue
        filters = [c for c in conditions if _only_reads(c, partner)]
        restrictions = [_partner_keys(tables[partner], column, filters, root)] if filters else []
        restrictions += _semi_joined_keys(
            select, join, {partner: tables[partner]}, column, where, root
        )
        for keys in restrictions:
            body.where(exp.In(this=key.copy(), query=keys.subquery()), copy=False)
        if restrictions:
            return


def _semi_joined_keys(
    select: exp.Select, restricted: exp.Join, partner: dict[str, exp.Table], column: str,
    where: list[exp.Expr], root: exp.Expr,
) -> list[exp.Select]:  # fmt: skip
    """The key sets another derived table `d` of `select` confines `p.c` to (`partner`: p).

    `JOIN d ON p.c = d.k`, or `LEFT JOIN d ON p.c = d.k` with `NOT d.k IS NULL` in the
    WHERE (a decorrelated `p.c IN (SELECT k ...)`, TPC-H Q20's parts): every result row has
    `p.c` among d's `k`, so `SELECT k FROM <d's table> WHERE ...` is a filter on `p.c`.
    Only for a body over one physical table, never a barrier, that reads nothing outside it.
    """
    found = []
    for join in select.args.get("joins") or []:
        derived = join.this
        if join is restricted or not isinstance(derived, exp.Subquery):
            continue
        body = derived.this
        if join.side not in ("", "LEFT") or join.kind not in ("", "INNER", "OUTER"):
            continue
        if not isinstance(body, exp.Select) or join.args.get("on") is None:
            continue
        name = derived.alias_or_name
        for conjunct in _flatten(join.args["on"]):
            pair = _key_pair(conjunct, name, partner)
            if pair is None or pair[2] != column:
                continue
            output = pair[0]
            if join.side == "LEFT" and not any(_is_not_null(c, name, output) for c in where):
                continue
            keys = _derived_keys(body, output, root)
            if keys is not None:
                found.append(keys)
                break
    return found


def _is_not_null(conjunct: exp.Expr, alias: str, output: str) -> bool:
    """Whether `conjunct` is `NOT alias.output IS NULL`."""
    if not isinstance(conjunct, exp.Not) or not isinstance(conjunct.this, exp.Is):
        return False
    tested, null = conjunct.this.this, conjunct.this.expression
    return (
        isinstance(tested, exp.Column) and tested.table == alias and tested.name == output
        and isinstance(null, exp.Null)
    )  # fmt: skip


def _derived_keys(body: exp.Select, output: str, root: exp.Expr) -> exp.Select | None:
    """`body` projecting only its column `output`, its table under a fresh alias; None when
    `body` is not one physical table read alone (a join, a subquery, a correlation), or its
    rows could differ when run twice (LIMIT, DISTINCT ON, a window, a volatile function)."""
    from_ = body.args.get("from_")
    table = from_.this if from_ is not None else None
    if not isinstance(table, exp.Table) or source_of(table) is None or barrier_of(table):
        return None
    if any(body.args.get(k) for k in ("joins", "limit", "offset", "qualify", "distinct")):
        return None
    if body.find(exp.Placeholder, exp.Parameter, exp.Window) is not None or _volatile(body):
        return None
    if any(isinstance(q, exp.Query) and q is not body for q in body.find_all(exp.Query)):
        return None
    old = table.alias_or_name
    if any(c.table != old for c in body.find_all(exp.Column)):
        return None
    projection = next((p for p in body.expressions if p.alias_or_name == output), None)
    inner = projection.this if isinstance(projection, exp.Alias) else projection
    if not isinstance(inner, exp.Column):
        return None
    taken = {n.alias_or_name for n in root.find_all(exp.Table, exp.Subquery)}
    fresh = next(f"{old}_{i}" for i in itertools.count(2) if f"{old}_{i}" not in taken)
    copy = body.copy()
    copy.set("expressions", [inner.copy()])
    copy.set("order", None)  # no LIMIT: the order cannot change which keys it holds
    copy.args["from_"].this.set("alias", exp.TableAlias(this=exp.to_identifier(fresh, quoted=True)))
    for c in copy.find_all(exp.Column):
        c.set("table", exp.to_identifier(fresh, quoted=True))
    return copy


def _flatten(condition: exp.Expr) -> list[exp.Expr]:
    return list(condition.flatten()) if isinstance(condition, exp.And) else [condition]


def _key_pair(
    conjunct: exp.Expr, alias: str, tables: dict[str, exp.Table]
) -> tuple[str, str, str] | None:
    """(derived output, partner alias, partner column) of `p.c = u.k`, either way round."""
    if not isinstance(conjunct, exp.EQ):
        return None
    left, right = conjunct.this, conjunct.expression
    if not isinstance(left, exp.Column) or not isinstance(right, exp.Column):
        return None
    for mine, theirs in ((left, right), (right, left)):
        if mine.table == alias and theirs.table in tables:
            return mine.name, theirs.table, theirs.name
    return None


def _group_key(body: exp.Select, output: str) -> exp.Expr | None:
    """The expression behind `output` if it is one of the body's GROUP BY expressions."""
    group = body.args["group"]
    for projection in body.expressions:
        if projection.alias_or_name != output:
            continue
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Column) and any(inner == g for g in group.expressions):
            return inner
    return None


def _only_reads(conjunct: exp.Expr, alias: str) -> bool:
    columns = list(conjunct.find_all(exp.Column))
    return (
        bool(columns)
        and all(c.table == alias for c in columns)
        and conjunct.find(exp.Query, exp.Placeholder, exp.Parameter) is None
        and not _volatile(conjunct)
    )


def _volatile(node: exp.Expr) -> bool:
    return any(
        f.sql_name().lower() in _VOLATILE or f.name.lower() in _VOLATILE
        for f in node.find_all(exp.Func)
    )


def _partner_keys(
    table: exp.Table, column: str, filters: list[exp.Expr], root: exp.Expr
) -> exp.Select:
    """`SELECT p2.c FROM p AS p2 WHERE f(p2)` under an alias no other table of `root` uses."""
    taken = {n.alias_or_name for n in root.find_all(exp.Table, exp.Subquery)}
    old = table.alias_or_name
    fresh = next(f"{old}_{i}" for i in itertools.count(2) if f"{old}_{i}" not in taken)
    copy = table.copy()
    copy.set("alias", exp.TableAlias(this=exp.to_identifier(fresh, quoted=True)))
    conditions = []
    for condition in filters:
        renamed = condition.copy()
        for c in renamed.find_all(exp.Column):
            c.set("table", exp.to_identifier(fresh, quoted=True))
        conditions.append(renamed)
    key = exp.column(column, fresh, quoted=True)
    return exp.select(key).from_(copy).where(exp.and_(*conditions), copy=False)
