"""Which IN / EXISTS / scalar subqueries are decorrelated into joins, and which stay as written.

Decorrelating (sqlglot's `unnest_subqueries`) pays only where the join it makes goes down to a
source that would otherwise run the subquery once per outer row: a SELECT whose tables all
live in one source that does not decorrelate by itself (PostgreSQL runs a correlated aggregate
as a per-row SubPlan). Everywhere else the subquery runs in DuckDB, the merge or a DuckDB-backed
source, which decorrelates it itself and faster than the rewritten form: TPC-H Q17 takes 0.22 s
as written and 0.61 s rewritten; Q21's rewritten merge alone takes longer than the whole query
as written (benchmarks/README.md).

The decision is made per outermost subquery by the tables of the SELECT it sits in (its own
tables and all nested ones); a kept subquery keeps everything inside it as written. Governance
is unaffected: a policy barrier is a table either way, and the planner fences every barrier a
kept subquery reads as it does in FROM.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Iterable, Mapping

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.optimizer.unnest_subqueries import unnest_subqueries

from meshgate.query.model import PolicyBarrier
from meshgate.query.names import LOCAL_CATALOG, barrier_of, source_of
from meshgate.rewrite.group_key_filters import filter_group_keys
from meshgate.spi import Connector


class Placement(enum.Enum):
    """Where a set of tables runs: split over sources (the merge joins them), whole at one
    source that runs correlated subqueries row by row, whole at one that runs EXISTS as a
    semi-join but other correlated subqueries row by row, whole at one that decorrelates,
    or (outside a SELECT that runs whole there) read by the merge DuckDB itself."""

    SPLIT = "split"
    SOURCE = "source"
    SEMI_JOINS = "semi_joins"
    ENGINE = "engine"
    MERGE = "merge"


# Source names a SELECT reads -> where it runs.
Decorrelation = Callable[[frozenset[str]], Placement]

_KEPT = "__meshgate_kept_subquery"


def decorrelation_for(
    connectors: Mapping[str, Connector], merge_reads: frozenset[str] = frozenset()
) -> Decorrelation:
    """Placement by source identity and the sources' `decorrelates_subqueries`; the sources
    in `merge_reads` are those whose tables the merge reads itself (merge scans)."""

    def place(sources: frozenset[str]) -> Placement:
        if not sources or any(s not in connectors for s in sources):
            return Placement.SPLIT
        if len({connectors[s].identity for s in sources}) > 1:
            return Placement.SPLIT
        if sources <= merge_reads:
            return Placement.MERGE
        if all(connectors[s].capabilities.decorrelates_subqueries for s in sources):
            return Placement.ENGINE
        if all(connectors[s].capabilities.semi_joins_exists for s in sources):
            return Placement.SEMI_JOINS
        return Placement.SOURCE

    return place


def decorrelate_where(
    tree: exp.Query,
    place: Decorrelation,
    barriers: Mapping[str, PolicyBarrier] | None = None,
) -> exp.Query:
    """`unnest_subqueries` over `tree`, except the subqueries that are better as written.

    A subquery is decorrelated when the SELECT holding it runs whole at a source that cannot
    decorrelate (the join goes down with it), or when that SELECT is split but the subquery
    reads one source and is correlated by equalities only: its decorrelated form is a grouped
    derived table that goes down whole, and fewer rows leave the source. It stays as written
    where DuckDB runs it anyway: the SELECT runs whole in a DuckDB-backed source (Q17), an
    EXISTS whose SELECT runs whole in a source that semi-joins it (Q4 in PostgreSQL), an
    EXISTS over tables the merge reads itself (Q4 split: the merge semi-joins 57k orders
    with its own scan of lineitem instead of grouping 1.4M order keys), or the correlation is
    not an equality (Q21's `l2.suppkey <> l1.suppkey`, which sqlglot turns into ARRAY_AGG
    and a list filter).

    Changes `tree` in place, as sqlglot's rules do (the rewrite runs them on its own copy).
    """
    result = tree
    known = barriers or {}
    kept: list[exp.Expr] = []
    for node in list(result.find_all(exp.In, exp.Exists, exp.Subquery)):
        if not _is_expression_subquery(node) or not _attached(node, result):
            continue
        owner = node.parent_select
        if owner is None or _decorrelates(node, owner, place, known):
            continue
        _unique_aliases(node, result)
        if isinstance(node, exp.Exists):
            _select_one(node)
        placeholder = exp.Anonymous(this=_KEPT, expressions=[exp.Literal.number(len(kept))])
        node.replace(placeholder)
        kept.append(node)
    unnested = unnest_subqueries(result)
    assert isinstance(unnested, exp.Query)
    restored: set[int] = set()
    for placeholder in list(unnested.find_all(exp.Anonymous)):
        if placeholder.name != _KEPT:
            continue
        index = int(placeholder.expressions[0].name)
        original = kept[index] if index not in restored else kept[index].copy()
        restored.add(index)
        placeholder.replace(original)
    return unnested


def restrict_group_keys(
    tree: exp.Query, place: Decorrelation, barriers: Mapping[str, PolicyBarrier] | None = None
) -> exp.Query:
    """rewrite/group_key_filters.py where the SELECT runs whole at a source that semi-joins;
    after the products' derived tables are merged (the rule reads physical tables)."""
    known = barriers or {}

    def runs_whole(select: exp.Select) -> bool:
        return place(_sources_of(select, known)) is Placement.SEMI_JOINS

    return filter_group_keys(tree, runs_whole)


def correlated_last(tree: exp.Query) -> exp.Query:
    """Order each WHERE so plain conditions come first, then uncorrelated subqueries, then
    correlated ones: DuckDB evaluates a correlated subquery for the rows reaching it, in
    the order written (TPC-H Q20 over Parquet: 2.4 s with the correlated one first, 1.0 s
    last). AND is commutative in SQL, so the answer is the same. Runs after the rules that
    rebuild WHERE clauses."""
    for select in list(tree.find_all(exp.Select)):
        where = select.args.get("where")
        if where is None or not isinstance(where.this, exp.And):
            continue
        conjuncts = list(where.this.flatten())
        ranked = sorted(conjuncts, key=_evaluation_rank)
        if ranked != conjuncts:
            where.set("this", exp.and_(*ranked, copy=False))
    return tree


def _evaluation_rank(conjunct: exp.Expr) -> int:
    queries = [q for q in conjunct.find_all(exp.Query)]
    if not queries:
        return 0
    return 2 if any(_references_outside(q) for q in queries) else 1


def _references_outside(query: exp.Query) -> bool:
    defined = {n.alias_or_name for n in query.find_all(exp.Table, exp.Subquery, exp.Unnest)}
    return any(c.table and c.table not in defined for c in query.find_all(exp.Column))


def _decorrelates(
    node: exp.Expr, owner: exp.Select, place: Decorrelation,
    barriers: Mapping[str, PolicyBarrier],
) -> bool:  # fmt: skip
    where = place(_sources_of(owner, barriers))
    if where is Placement.SEMI_JOINS:
        return not isinstance(node, exp.Exists)
    if where is not Placement.SPLIT:
        return where is Placement.SOURCE
    query = _subquery_select(node)
    if query is None:
        return False
    inner = place(_sources_of(query, barriers))
    if inner is Placement.MERGE and isinstance(node, exp.Exists):
        return False
    return inner is not Placement.SPLIT and _equality_correlated(query)


def _subquery_select(node: exp.Expr) -> exp.Query | None:
    query = node.args.get("query") if isinstance(node, exp.In) else node.this
    if isinstance(query, exp.Subquery):
        query = query.this
    return query if isinstance(query, exp.Query) else None


def _equality_correlated(query: exp.Query) -> bool:
    """Whether every reference `query` makes to an outer table is one side of an `=` between
    columns among its WHERE's conjuncts (no references at all: uncorrelated, also true)."""
    defined = {n.alias_or_name for n in query.find_all(exp.Table, exp.Subquery, exp.Unnest)}

    def outer(column: exp.Column) -> bool:
        return bool(column.table) and column.table not in defined

    if not any(outer(c) for c in query.find_all(exp.Column)):
        return True
    where = query.args.get("where") if isinstance(query, exp.Select) else None
    if where is None:
        return False
    allowed: set[int] = set()
    for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        if (
            isinstance(conjunct, exp.EQ)
            and isinstance(conjunct.this, exp.Column)
            and isinstance(conjunct.expression, exp.Column)
            and outer(conjunct.this) != outer(conjunct.expression)
        ):
            allowed.update(id(c) for c in (conjunct.this, conjunct.expression) if outer(c))
    return all(id(c) in allowed for c in query.find_all(exp.Column) if outer(c))


def _unique_aliases(node: exp.Expr, root: exp.Expr) -> None:
    """Rename the tables `node` (a kept subquery) defines under an alias used elsewhere.

    The planner names a scan's columns by alias throughout a SELECT, nested subqueries
    included; `FROM partsupp ... WHERE x = (SELECT MIN(partsupp.cost) FROM partsupp ...)`
    would otherwise mix the two partsupps once one of them joins another table.
    """
    inside = {id(n) for n in node.walk()}
    outside = {
        n.alias_or_name
        for n in root.find_all(exp.Table, exp.Subquery)
        if id(n) not in inside and n.alias_or_name
    }
    taken = outside | {n.alias_or_name for n in node.find_all(exp.Table, exp.Subquery)}
    query = _subquery_select(node)
    if query is None:
        return
    for scope in traverse_scope(query):
        for alias, (source_node, _) in list(scope.selected_sources.items()):
            if alias not in outside or not isinstance(source_node, exp.Table | exp.Subquery):
                continue
            fresh = next(f"{alias}_{i}" for i in itertools.count(2) if f"{alias}_{i}" not in taken)
            taken.add(fresh)
            source_node.set("alias", exp.TableAlias(this=exp.to_identifier(fresh, quoted=True)))
            for column in scope.columns:
                if column.table == alias:
                    column.set("table", exp.to_identifier(fresh, quoted=True))


def _select_one(node: exp.Exists) -> None:
    """`EXISTS (SELECT * ...)` -> `EXISTS (SELECT 1 ...)` where the projection cannot change
    whether a row exists (no aggregate, grouping, window or limit): qualify() expanded the
    star, and the planner would otherwise fetch every column of the subquery's tables."""
    query = node.this
    if not isinstance(query, exp.Select) or any(
        query.args.get(k) for k in ("group", "having", "qualify", "limit", "offset")
    ):
        return
    if any(p.find(exp.AggFunc, exp.Window) for p in query.expressions):
        return
    query.set("expressions", [exp.alias_(exp.Literal.number(1), "1", quoted=True)])


def _is_expression_subquery(node: exp.Expr) -> bool:
    """An IN (query), an EXISTS or a scalar subquery; not a derived table in FROM / JOIN."""
    if isinstance(node, exp.In):
        return node.args.get("query") is not None
    if isinstance(node, exp.Exists):
        return True
    parent = node.parent
    return not isinstance(parent, (exp.From, exp.Join, exp.In)) and not isinstance(
        parent, exp.Union | exp.Intersect | exp.Except
    )


def _attached(node: exp.Expr, root: exp.Expr) -> bool:
    current: exp.Expr | None = node
    while current is not None:
        if current is root:
            return True
        current = current.parent
    return False


def _sources_of(select: exp.Query, barriers: Mapping[str, PolicyBarrier]) -> frozenset[str]:
    """The sources `select` reads, a barrier by its body's; a local table is read in the
    merge, so it makes the set unanswerable (empty)."""
    sources: set[str] = set()
    for table in _tables(select, barriers):
        source = source_of(table)
        if table.catalog == LOCAL_CATALOG or (source is None and barrier_of(table) is not None):
            return frozenset()
        if source is not None:
            sources.add(source)
    return frozenset(sources)


def _tables(node: exp.Expr, barriers: Mapping[str, PolicyBarrier]) -> Iterable[exp.Table]:
    """The tables `node` reads, through the bodies of the barriers it names."""
    for table in node.find_all(exp.Table):
        name = barrier_of(table)
        if name is not None and name in barriers:
            yield from _tables(barriers[name].body, barriers)
        else:
            yield table
