"""Cut a normalised query into fragments that run at sources and a residual for DuckDB.

Strategy (datafusion-federation's, with Trino's negotiation):
1. a (sub)query whose tables all live in one source instance goes down whole if the source
   can render every node of it (`Connector.apply_query`);
2. otherwise, inside a SELECT that mixes sources, the tables of one source that are inner-joined
   on keys that cannot multiply rows (FK -> declared primary key) go down as one join fragment;
3. every other table is scanned with the filter conjuncts the source accepts (EXACT ones leave
   the residual, INEXACT and UNSUPPORTED ones stay) and only the columns the residual uses;
   a table whose connector offers a local scan (files) is instead read by the merge itself
   wherever a merge runs anyway (`merge_scan`), its filters left for DuckDB to push; so is a
   key join of such tables whose keys could restrict nothing elsewhere but by a short list.
Predicates only move where outer-join semantics allow: a WHERE conjunct never moves below a
null-supplying side, an ON conjunct of a LEFT JOIN moves only into the joined table's scan.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshgate.errors import PushdownRequired, UnsupportedQuery
from meshgate.planner.cost import (
    Verdict,
    dynamic_filter_verdict,
    join_group_verdict,
    key_set_size,
    whole_query_verdict,
)
from meshgate.planner.merge_scan import merge_relation, merge_scan
from meshgate.planner.plan import DynamicFilter, FederatedPlan, Fragment, MergeScan, PolicyStage
from meshgate.planner.schema import OutOfProcessEngine, ResultDescriber
from meshgate.query.model import PolicyBarrier
from meshgate.query.names import (
    LOCAL_CATALOG,
    PhysicalTable,
    TableKey,
    barrier_of,
    physical_key,
    source_of,
)
from meshgate.spi import (
    CANONICAL_DIALECT,
    ColumnStatistics,
    Connector,
    FilterSupport,
    PushedQuery,
    ScanInput,
    SourceIdentity,
    TableStatistics,
)
from meshgate.sqlconnector.describe import engine_schema


@dataclass
class _Scan:
    """A physical table, or a policy barrier over one, referenced by one SELECT under `alias`.

    A barrier scan (`barrier` set) reads `physical` through the barrier's body; it may only go
    down inside a join fragment, fenced, and is planned on its own otherwise.
    """

    alias: str
    node: exp.Table
    source: str
    physical: PhysicalTable
    barrier: PolicyBarrier | None = None

    def key(self) -> tuple[str, ...]:
        """The table's primary key, in the columns this SELECT reads (none if masked away)."""
        if self.barrier is None:
            return self.physical.primary_key
        return _barrier_key(self.barrier, self.physical)

    def is_key(self, column: str) -> bool:
        """Whether `column` (as this SELECT names it) is the table's single-column key."""
        return self.key() == (column,)


@dataclass
class _Placed:
    """A fragment standing for one residual alias, with what dynamic filtering needs."""

    fragment: Fragment
    scan: _Scan | None  # None for a join-group fragment
    keys: set[str]  # residual column names that are keys of the underlying table
    selective: bool  # the source absorbed at least one filter
    # residual key column -> (scan, column) it reads, where no absorbed filter restricts it
    unfiltered_keys: dict[str, tuple[_Scan, str]] = field(default_factory=dict)
    # a join-group fragment's residual columns -> (scan, column), scans outside barriers only:
    # where a dynamic filter may restrict the join at its source
    columns: dict[str, tuple[_Scan, str]] = field(default_factory=dict)
    derived: bool = False  # a derived table the source runs whole (a build side only)


@dataclass
class _PlanState:
    fragments: list[Fragment] = field(default_factory=list)
    local_work: list[str] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    stages: list[PolicyStage] = field(default_factory=list)
    merge_scans: list[MergeScan] = field(default_factory=list)


# EXPLAIN's note where an in-process source was given less than it could run (`streams`).
STREAMED_ONLY = ("the residual runs outside meshgate's process, so a source inside it only "
                 "streams rows (scans, filters, projections); the residual engine does the rest")


class Planner:
    """Plans one query; not shared between queries."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        tables: Mapping[TableKey, PhysicalTable],
        local_tables: Mapping[str, pa.Table],
        *,
        engine: ResultDescriber,
        strict: bool = False,
        barriers: Mapping[str, PolicyBarrier] | None = None,
        counter: Iterator[int] | None = None,
        merge_whole: bool = False,
    ) -> None:
        self._connectors = connectors
        self._tables = tables
        self._local_tables = local_tables
        self._engine = engine  # says what the residual returns: the plan's wire schema
        self._strict = strict
        self._barriers = barriers or {}
        self._state = _PlanState() if counter is None else _PlanState(counter=counter)
        # A policy barrier's body: its files are read by the merge even when alone, for
        # the stage's merge query runs anyway (the fence around the barrier).
        self._merge_whole = merge_whole
        self._shared: frozenset[str] = frozenset()  # CTEs the query reads more than once
        # An out-of-process residual (Spark): in-process sources only stream to it.
        self._stream_in_process = isinstance(engine, OutOfProcessEngine) and engine.out_of_process

    def plan(self, tree: exp.Query) -> FederatedPlan:
        """Plan `tree`, which stays as it is (the planner changes only its own copy)."""
        query = inline_ctes(tree, keep_shared=True)
        self._shared = _cte_names(query)
        placed = self._place(query)
        fragments = tuple(self._state.fragments)
        if isinstance(placed, Fragment):
            return FederatedPlan(
                fragments, None, placed.handle.schema, tuple(self._state.local_work)
            )
        if _has_barrier(placed) or _sources(placed):
            # Fail closed: nothing unplanned may reach the merge (ARCHITECTURE.md §4.8).
            raise UnsupportedQuery(
                "this query places a product where meshgate cannot apply its policies yet; "
                "reference products in FROM or JOIN clauses"
            )
        residual = _name_local_tables(placed)
        stages = tuple(self._state.stages)
        inputs = {f.name: f.handle.schema for f in fragments}
        inputs.update({name: table.schema for name, table in self._local_tables.items()})
        inputs.update({stage.name: stage.plan.schema for stage in stages})
        schema = self._engine.describe(residual, inputs)
        return FederatedPlan(
            fragments, residual, schema, tuple(self._state.local_work), self._local_tables,
            stages, tuple(self._state.merge_scans),
        )  # fmt: skip

    # --- placement ----------------------------------------------------------------------
    def _place(self, query: exp.Query) -> exp.Query | Fragment:
        """Push `query` whole if one source can run it, else split it and recurse."""
        if query.args.get("with_") is not None:
            return self._place_shared(query)
        identities = {self._identity(s) for s in _sources(query)}
        barrier = _has_barrier(query)
        if identities and not barrier and self._merge_whole:
            inlined = self._inline_all(query)
            if inlined is not None:
                return inlined
        if (
            len(identities) == 1
            and not barrier
            and not _external_columns(query)
            and not _has_local(query)
            and not self._reads_shared(query)
        ):
            declined: list[str] = []
            fragment = self._push_whole(query, declined)
            if fragment is not None:
                return fragment
            whole = "query" if query.parent is None else "subquery"
            if declined:
                if declined[0] not in self._state.local_work:
                    self._state.local_work.append(declined[0])
            else:
                self._local(
                    "the source cannot run this (sub)query whole; it was split", query,
                    merged=f"the source cannot run the {whole}'s {_operator_kinds(query)}",
                )  # fmt: skip
        elif barrier:
            fenced = self._push_fenced(query)
            if fenced is not None:
                return fenced
        if not identities and not barrier:
            return query
        if isinstance(query, exp.SetOperation):
            result = query.copy()
            for side in ("this", "expression"):
                branch = result.args[side]
                if isinstance(branch, exp.Subquery):
                    branch = branch.this
                assert isinstance(branch, exp.Query)
                result.set(side, _as_query(self._place(branch)))
            return result
        if isinstance(query, exp.Subquery):
            return self._place(query.this)
        if not isinstance(query, exp.Select):
            raise UnsupportedQuery(f"cannot federate a {query.key.upper()} expression")
        return self._split_select(query)

    def _place_shared(self, query: exp.Query) -> exp.Query | Fragment:
        """`query`, whose WITH holds only CTEs it reads more than once, computing each once.

        Where one source runs the whole query it receives the WITH (PostgreSQL and DuckDB
        compute a CTE read twice once; TPC-H Q15's `revenue`: its rows and their MAX); a
        source that refuses the WITH is offered the query with the CTEs inlined, as before.
        Split over sources (or refused whole), each CTE body is placed on its own and the
        merge keeps it as a MATERIALIZED CTE over the result: one fragment, read once,
        instead of one per use. Policies are untouched either way: a barrier inside a CTE
        body is fenced or planned apart exactly as it is anywhere else.
        """
        with_ = query.args["with_"]
        if (
            len({self._identity(s) for s in _sources(query)}) == 1
            and not _external_columns(query)
            and not _has_local(query)
        ):
            barrier = _has_barrier(query)
            declined: list[str] = []
            for offered in (query, inline_ctes(query)):
                whole = (self._push_fenced(offered) if barrier
                         else self._push_whole(offered, declined))  # fmt: skip
                if whole is not None:
                    return whole
            if declined:
                self._state.local_work.append(declined[0])
            elif not barrier:
                self._local(
                    "the source cannot run this (sub)query whole; it was split", query,
                    merged=f"the source cannot run the query's {_operator_kinds(query)}",
                )  # fmt: skip
        ctes: list[exp.CTE] = []
        for cte in with_.expressions:
            kept = cte.copy()
            kept.set("this", _as_query(self._place(cte.this)))
            ctes.append(kept)
        main = query.copy()
        main.set("with_", None)
        result = _as_query(self._place(main))
        result.set("with_", exp.With(expressions=ctes))
        return result

    def _reads_shared(self, query: exp.Expr) -> bool:
        """Whether `query` reads a CTE the merge computes (it cannot go down to a source)."""
        return any(_is_cte_reference(t, self._shared) for t in query.find_all(exp.Table))

    def _inline_all(self, query: exp.Query) -> exp.Query | None:
        """`query` with every physical table read by the merge, if each offers a local scan.

        Only for a barrier's body, which runs as a merge query of its own anyway. A subquery
        one source can run whole stays a fragment: it runs beside the other fragments and
        returns what it aggregated or filtered (TPC-H Q18's lineitem subquery was 2x slower
        inlined, the merge waiting for PostgreSQL before it could start it).
        """
        query = query.copy()
        relations: dict[int, exp.Expr] = {}
        for node in query.find_all(exp.Table):
            if source_of(node) is None:
                continue
            relation = self._merge_relation(node.alias_or_name, node)
            if relation is None:
                return None
            relations[id(node)] = relation
        for node in list(query.find_all(exp.Table)):
            if id(node) in relations:
                self._note_merge_scan(node, relations[id(node)])
                node.replace(relations[id(node)])
        return query

    def _merge_relation(self, alias: str, node: exp.Table) -> exp.Expr | None:
        """The merge's own scan of the physical table `node`, or None (read as a fragment)."""
        if self._strict:
            return None
        source = source_of(node)
        assert source is not None
        physical = self._tables[physical_key(node)]
        return merge_relation(self._connectors[source], physical, alias, self._engine)

    def _note_merge_scan(self, node: exp.Table, relation: exp.Expr) -> None:
        source = source_of(node)
        assert source is not None
        name = f"merge scan {len(self._state.merge_scans) + 1}"
        self._state.merge_scans.append(merge_scan(name, source, relation))

    def _push_whole(self, query: exp.Query, declined: list[str] | None = None) -> Fragment | None:
        """`query` as one fragment of its source. With `declined` given (and not in strict
        mode), a join goes down only where the cost gate finds that cheaper than pulling its
        tables (planner/cost.py); a refusal's reason is appended to `declined`."""
        source = next(iter(_sources(query)))
        connector = self._connectors[source]
        select, inputs = self._source_select(query)
        if not self._may_hold(connector, select):
            if declined is not None:
                declined.append(STREAMED_ONLY)
            return None
        handle = _offer_query(connector, select, inputs)
        if handle is None:
            return None
        notes: tuple[str, ...] = ("whole query",)
        if declined is not None and not self._strict:
            verdict = whole_query_verdict(connector, handle)
            if verdict is not None and not verdict.push:
                declined.append(verdict.reason)
                return None
            if verdict is not None:
                notes = ("whole query", verdict.reason)
        return self._fragment(source, handle, notes)

    def _push_fenced(self, query: exp.Query) -> Fragment | None:
        """Push `query` whole with each barrier inside as an `OFFSET 0` derived table.

        Only where every table and barrier lives in one source that declares such a subquery
        a fence: the user's predicates then never run below the row filter or on raw values.
        """
        names = {n for t in query.find_all(exp.Table) if (n := barrier_of(t)) is not None}
        bodies = [self._barriers[n].body for n in names]
        sources = _sources(query).union(*(_sources(b) for b in bodies))
        identities = {self._identity(s) for s in sources}
        if len(identities) != 1 or _external_columns(query) or _has_local(query):
            return None
        if query.args.get("with_") is None and self._reads_shared(query):
            return None
        source = next(iter(sources))
        if not self._connectors[source].capabilities.offset_fences_subqueries:
            return None
        if any(_has_barrier(b) or _has_local(b) for b in bodies):
            return None

        needs_fence = _has_conditions(query)

        def fence(node: exp.Expr) -> exp.Expr:
            name = barrier_of(node) if isinstance(node, exp.Table) else None
            if name is None:
                return node
            assert isinstance(node, exp.Table)
            body = self._barriers[name].body.copy()
            assert isinstance(body, exp.Select)
            fenced_body = body.offset(0, copy=False) if needs_fence else body
            return exp.Subquery(this=fenced_body, alias=exp.TableAlias(
                this=exp.to_identifier(node.alias_or_name, quoted=True)))  # fmt: skip

        fenced = query.transform(fence, copy=True)
        assert isinstance(fenced, exp.Query)
        fragment = self._push_whole(fenced)
        if fragment is None:
            return None
        policies = tuple(dict.fromkeys(p for n in sorted(names) for p in
                                       self._barriers[n].policies))  # fmt: skip
        note = ("policy barriers fenced with OFFSET 0" if needs_fence
                else "policy barriers inlined: the query adds no condition")  # fmt: skip
        pushed = replace(fragment, policies=policies, pushed=(*fragment.pushed, note))
        self._state.fragments[-1] = pushed
        return pushed

    def _source_select(self, query: exp.Query) -> tuple[exp.Select, tuple[ScanInput, ...]]:
        """`query` with physical names as the source knows them, wrapped to a SELECT."""
        inputs: list[ScanInput] = []

        def strip(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Table) and source_of(node) is not None:
                physical = self._tables[physical_key(node)]
                inputs.append(ScanInput(node.alias_or_name, physical.table, physical.columns))
                return _physical_node(physical, node.alias_or_name)
            return node

        stripped = query.transform(strip, copy=True)
        if not isinstance(stripped, exp.Select):
            assert isinstance(stripped, exp.Query)
            stripped = exp.select("*").from_(stripped.subquery("q"))
        return stripped, tuple(inputs)

    # --- splitting a SELECT that mixes sources ------------------------------------------
    def _split_select(self, original: exp.Select) -> exp.Query:
        select = original.copy()
        self._place_nested(select)
        joins: list[exp.Join] = list(select.args.get("joins") or [])
        all_inner = all(_is_inner(j) for j in joins)
        fenceable = self._fenceable_barriers(select) if all_inner else []
        self._place_barriers(select, keep={id(s.node) for s in fenceable})
        scans = self._scans(select, fenceable)
        if not scans:
            return select
        where = select.args.get("where")
        where_conjuncts = list(_conjuncts(where.this)) if where is not None else []
        null_supplied = _null_supplied_aliases(select)
        if all_inner:
            self._split_inner(select, scans, where_conjuncts, joins)
        else:
            self._split_outer(select, scans, where_conjuncts, joins, null_supplied)
        return select

    def _place_nested(self, select: exp.Select) -> None:
        """Place derived tables and expression subqueries of `select` first (bottom-up)."""
        for subquery in list(select.find_all(exp.Subquery)):
            if subquery.parent_select is not select or not isinstance(subquery.this, exp.Query):
                continue
            placed = self._place(subquery.this)
            if isinstance(placed, Fragment):
                if isinstance(subquery.parent, (exp.From, exp.Join)):
                    alias = subquery.alias_or_name
                    subquery.replace(_fragment_ref(placed.name, alias))
                    continue
                placed_query: exp.Query = exp.select("*").from_(exp.to_table(placed.name))
            else:
                placed_query = placed
            subquery.set("this", placed_query)
        for node in list(select.find_all(exp.Exists, exp.In)):
            inner = node.args.get("query") if isinstance(node, exp.In) else node.this
            if isinstance(inner, exp.Subquery):
                continue  # handled above
            if isinstance(inner, exp.Query) and inner.parent_select is select:
                placed = self._place(inner)
                replacement = (
                    exp.select("*").from_(exp.to_table(placed.name))
                    if isinstance(placed, Fragment)
                    else placed
                )
                inner.replace(replacement)

    def _place_barriers(self, select: exp.Select, keep: set[int]) -> None:
        """Each barrier `select` reads becomes a fragment, or a stage the merge runs apart;
        those in `keep` (by node id) are left for a join fragment of their source."""
        for item in [select.args.get("from_"), *list(select.args.get("joins") or [])]:
            node = item.this if item is not None else None
            name = barrier_of(node) if isinstance(node, exp.Table) else None
            if name is None or id(node) in keep:
                continue
            assert isinstance(node, exp.Table)
            relation = self._plan_barrier(self._barriers[name])
            node.replace(_fragment_ref(relation, node.alias_or_name))

    def _fenceable_barriers(self, select: exp.Select) -> list[_Scan]:
        """Barriers of `select` that may join their source's tables as one fenced fragment.

        Same conditions as `_push_fenced`: the body reads one table of a source that declares
        an `OFFSET 0` derived table a fence, and nothing local or another barrier.
        """
        scans = []
        for item in [select.args.get("from_"), *list(select.args.get("joins") or [])]:
            node = item.this if item is not None else None
            name = barrier_of(node) if isinstance(node, exp.Table) else None
            if name is None:
                continue
            assert isinstance(node, exp.Table)
            barrier = self._barriers[name]
            body = barrier.body
            tables = list(body.find_all(exp.Table))
            if (
                not isinstance(body, exp.Select)
                or len(tables) != 1
                or (source := source_of(tables[0])) is None
                or _has_barrier(body)
                or _has_local(body)
                or _external_columns(body)
                or not self._connectors[source].capabilities.offset_fences_subqueries
            ):
                continue
            physical = self._tables[physical_key(tables[0])]
            scans.append(_Scan(node.alias_or_name, node, source, physical, barrier))
        return scans

    def _plan_barrier(self, barrier: PolicyBarrier) -> str:
        """Plan a barrier body on its own; nothing of the user's query is in it."""
        inner = Planner(
            self._connectors,
            self._tables,
            self._local_tables,
            engine=self._engine,
            strict=self._strict,
            counter=self._state.counter,
            merge_whole=True,
        )
        plan = inner.plan(barrier.body)
        if plan.residual is None and not plan.stages:
            (fragment,) = plan.fragments
            self._state.fragments.append(replace(fragment, policies=barrier.policies))
            return fragment.name
        stage = PolicyStage(self._next_name(), barrier.product, barrier.policies, plan)
        self._state.stages.append(stage)
        return stage.name

    def _scans(self, select: exp.Select, barriers: list[_Scan]) -> list[_Scan]:
        """The physical tables of `select` and the given barrier scans, in FROM order."""
        by_node = {id(b.node): b for b in barriers}
        scans = []
        items = [select.args.get("from_"), *list(select.args.get("joins") or [])]
        for item in items:
            if item is None:
                continue
            node = item.this
            if id(node) in by_node:
                scans.append(by_node[id(node)])
            elif isinstance(node, exp.Table) and source_of(node) is not None:
                source = source_of(node)
                assert source is not None
                scans.append(
                    _Scan(node.alias_or_name, node, source, self._tables[physical_key(node)])
                )
        return scans

    def _split_inner(
        self,
        select: exp.Select,
        scans: list[_Scan],
        where_conjuncts: list[exp.Expr],
        joins: list[exp.Join],
    ) -> None:
        """All joins are inner: ON conditions are WHERE conjuncts; group joinable tables."""
        conjuncts = list(where_conjuncts)
        for join in joins:
            on = join.args.get("on")
            if on is not None:
                conjuncts.extend(_conjuncts(on))
        by_alias = {s.alias: s for s in scans}
        remaining = list(conjuncts)
        replaced: dict[str, exp.Expr] = {}
        placed: dict[str, _Placed] = {}
        merged = self._inline_scans(scans)
        replaced.update(merged or {})
        groups = [] if merged else self._join_groups(scans, conjuncts)
        key_sets = self._key_set_builds(groups, by_alias, conjuncts)
        restricted = _keyed_by_joins(groups, by_alias, conjuncts)
        joined = {alias for group in groups if len(group) > 1 for alias in group}
        for index, group in enumerate(groups):
            inlined = None
            if len(group) == 1 and group[0] not in key_sets:
                inlined = self._inline_scan(by_alias[group[0]])
            if inlined is not None:
                replaced[group[0]] = inlined
                continue
            if len(group) > 1 and index not in restricted:
                relations = self._inline_join_group(group, by_alias, conjuncts, joined)
                if relations is not None:
                    replaced.update(relations)
                    continue
            if len(group) > 1:
                pushed = self._push_join(select, [by_alias[a] for a in group], remaining,
                                         gate=index not in restricted)  # fmt: skip
                if pushed is not None:
                    fragment, absorbed, renames = pushed
                    remaining = [c for c in remaining if not any(c is a for a in absorbed)]
                    _rename_columns(select, renames)
                    ref = _fragment_ref(fragment.name, fragment.name)
                    for alias in group:
                        replaced[alias] = ref
                    keys = {
                        renames[(a, k)][1]
                        for a in group
                        for k in by_alias[a].key()
                        if (a, k) in renames
                    }
                    unfiltered = {
                        renames[(a, k)][1]: (by_alias[a], k)
                        for a in group
                        for k in by_alias[a].key()
                        if (a, k) in renames and by_alias[a].barrier is None
                        and not _restricts(absorbed, a, k)
                    }  # fmt: skip
                    columns = {
                        renamed: (by_alias[a], c)
                        for (a, c), (_, renamed) in renames.items()
                        if by_alias[a].barrier is None
                    }
                    placed[fragment.name] = _Placed(
                        fragment, None, keys, bool(absorbed), unfiltered,
                        columns if not fragment.policies else {},
                    )  # fmt: skip
                    continue
            for alias in group:
                scan = by_alias[alias]
                if scan.barrier is not None:
                    relation = self._plan_barrier(scan.barrier)
                    replaced[alias] = _fragment_ref(relation, alias)
                    continue
                fragment, absorbed = self._push_scan(select, scan, remaining)
                remaining = [c for c in remaining if not any(c is a for a in absorbed)]
                replaced[alias] = _fragment_ref(fragment.name, alias)
                unfiltered = {
                    k: (scan, k)
                    for k in scan.physical.primary_key
                    if not _restricts(absorbed, alias, k)
                }
                placed[alias] = _Placed(
                    fragment, scan, set(scan.physical.primary_key), bool(absorbed), unfiltered
                )
        placed.update(self._derived_builds(select))
        self._plan_dynamic_filters(placed, remaining, key_sets)
        _rebuild_inner_from(select, replaced, remaining)

    def _key_set_builds(
        self, groups: list[list[str]], by_alias: Mapping[str, _Scan], conjuncts: list[exp.Expr]
    ) -> dict[str, int]:
        """Tables to read as a fragment rather than by the merge, so that their keys can
        restrict a large table elsewhere as a key set: alias -> most keys the set may hold.

        A table qualifies when the query filters it on its own and joins it on a column with
        the single-column key of a large table (`key_set_size`) the query does not filter and
        that stands alone at a source taking key sets. (Not one inside a join there: with no
        estimate of the filtered table's size, TPC-H Q7's two years of lineitem, 1.8M rows,
        would stop being read by the merge only to find 450k keys, too many for a set.)
        TPC-H Q12: the lineitem rows of one year's late shipments (29k orders) pick their
        orders by key instead of all 1.5M orders reaching the merge, which built its hash
        table on them before reading lineitem.
        """
        alone = {g[0] for g in groups if len(g) == 1}
        filtered = {
            next(iter(aliases))
            for c in conjuncts
            if len(aliases := _aliases(c)) == 1 and not _has_subquery(c)
        }
        found: dict[str, int] = {}
        for conjunct in conjuncts:
            pair = _equi_join(conjunct)
            if pair is None:
                continue
            for (build, _), (probe, probe_col) in (pair, pair[::-1]):
                if build not in alone or build not in filtered or probe not in alone:
                    continue
                if build not in by_alias or probe not in by_alias or probe in filtered:
                    continue
                if by_alias[build].barrier is not None:
                    continue
                most = self._key_set_into(by_alias[probe], probe_col)
                if most is not None:
                    found[build] = most
        return found

    def _inline_scans(self, scans: list[_Scan]) -> dict[str, exp.Expr] | None:
        """Every table of a SELECT as the merge's own scan (by alias), if each offers one.

        Where the SELECT reads no other table, no other fragment runs beside a join of files
        tables, and the merge pipelines the join into what it does above it (TPC-H Q16: part JOIN
        partsupp under a NOT IN over PostgreSQL's suppliers and a COUNT DISTINCT, two
        stages one after the other as a fragment).
        """
        if len(scans) < 2 or any(s.barrier is not None for s in scans):
            return None
        relations: dict[str, exp.Expr] = {}
        for scan in scans:
            relation = self._merge_relation(scan.alias, scan.node)
            if relation is None:
                return None
            relations[scan.alias] = relation
        for scan in scans:
            self._note_merge_scan(scan.node, relations[scan.alias])
        return relations

    def _inline_join_group(self, group: list[str], by_alias: Mapping[str, _Scan],
                           conjuncts: list[exp.Expr], joined: Collection[str],
                           ) -> dict[str, exp.Expr] | None:  # fmt: skip
        """A join of files tables as the merge's own scans (by alias), when as a fragment
        its keys could restrict nothing elsewhere at the source but by a list of at most
        MAX_LISTED_KEYS keys, which a join of unknown size rarely has.

        A fragment's rows cross Python as Arrow and are loaded again by the merge (TPC-H Q9:
        part JOIN lineitem, 319k rows of six columns); inlined, DuckDB pipelines the join
        into the rest and filters the files scans with its own join filters. Kept as a
        fragment where it may restrict a large table of a join at a source taking key sets
        (TPC-H Q8: 40k of 455k orders), or where a range of its keys would narrow a table
        read alone (its filters narrow the key, or statistics say the range is narrow).
        """
        members = set(group)
        if any(by_alias[a].barrier is not None for a in group):
            return None
        relations: dict[str, exp.Expr] = {}
        for alias in group:  # first: a group of any other source stops here, asking nothing
            relation = self._merge_relation(alias, by_alias[alias].node)
            if relation is None:
                return None
            relations[alias] = relation
        own = [c for c in conjuncts if _aliases(c) <= members]
        for conjunct in conjuncts:
            pair = _equi_join(conjunct)
            if pair is None:
                continue
            for (alias, column), (other, other_column) in (pair, pair[::-1]):
                if alias not in members or other in members:
                    continue
                if other not in by_alias:
                    return None  # a derived table's keys (TPC-H Q18's HAVING) may restrict it
                if self._may_restrict(by_alias[alias], column, by_alias[other], other_column,
                                      own, other in joined):  # fmt: skip
                    return None
        for alias in group:
            self._note_merge_scan(by_alias[alias].node, relations[alias])
        return relations

    def _may_restrict(self, build: _Scan, column: str, probe: _Scan, probe_column: str,
                      own: list[exp.Expr], probe_joined: bool) -> bool:  # fmt: skip
        """Whether keys of `build.column`, read by a join fragment, could restrict `probe`
        at its source by more than a short list (see `_inline_join_group`): as a key set into
        a join there (`_group_key_set`), or as a range into a table read alone."""
        if not probe.is_key(probe_column) or probe.barrier is not None:
            return False
        if probe_joined:  # only a key set goes into a join fragment
            return self._key_set_into(probe, probe_column) is not None
        if column not in build.key():  # no key of the join: `_plan_dynamic_filters` skips it
            return False
        if _restricts(own, build.alias, column):
            return True
        build_key = _column_statistics(self._connectors[build.source], build, column)
        probe_key = _column_statistics(self._connectors[probe.source], probe, probe_column)
        verdict = dynamic_filter_verdict(None, build_key, probe_key)
        return verdict is None

    def _derived_builds(self, select: exp.Select) -> dict[str, _Placed]:
        """Derived tables of `select` that went down whole and may feed a dynamic filter:
        grouped with a HAVING (TPC-H Q18's `SUM(l_quantity) > 300`: 57 of 1.5M keys), read
        no policy barrier, keyed by their GROUP BY columns.

        Their size is unknown before they run, so a filter from one is worth only a key list.
        """
        by_name = {f.name: f for f in self._state.fragments}
        found: dict[str, _Placed] = {}
        for item in [select.args.get("from_"), *list(select.args.get("joins") or [])]:
            node = item.this if item is not None else None
            if not isinstance(node, exp.Table) or node.db or node.catalog:
                continue
            fragment = by_name.get(node.name)
            if fragment is None or fragment.policies:
                continue
            query = fragment.handle.select
            if not query.args.get("having") or not query.args.get("group"):
                continue
            grouped = {g.name for g in query.args["group"].expressions
                       if isinstance(g, exp.Column)}  # fmt: skip
            keys = {
                p.alias_or_name
                for p in query.expressions
                if isinstance(p.unalias(), exp.Column) and p.unalias().name in grouped
            }
            if keys:
                found[node.alias_or_name] = _Placed(fragment, None, keys, True, derived=True)
        return found

    def _inline_scan(self, scan: _Scan) -> exp.Expr | None:
        """`scan` as the merge's own base scan, if its source offers one (not a barrier).

        Only a table that would otherwise be a scan fragment of its own; tables of one files
        source joined on keys are `_inline_join_group`'s.
        """
        if scan.barrier is not None:
            return None
        relation = self._merge_relation(scan.alias, scan.node)
        if relation is not None:
            self._note_merge_scan(scan.node, relation)
        return relation

    def _plan_dynamic_filters(
        self,
        placed: Mapping[str, _Placed],
        conjuncts: list[exp.Expr],
        key_sets: Mapping[str, int] | None = None,
    ) -> None:
        """Let a filtered, key-side fragment restrict an unfiltered scan it joins with;
        `key_sets`: builds read for a key set (`_key_set_builds`), and its most keys."""
        key_sets = key_sets or {}
        probes: set[str] = set()
        builds: set[str] = set()
        for conjunct in conjuncts:
            pair = _equi_join(conjunct)
            if pair is None:
                continue
            for (build_alias, build_col), (probe_alias, probe_col) in (pair, pair[::-1]):
                build, probe = placed.get(build_alias), placed.get(probe_alias)
                most = key_sets.get(build_alias)
                if probe is not None and probe.scan is None:
                    target = probe.columns.get(probe_col) if build else None
                    if build is not None and not build.derived:
                        most = self._group_key_set(build, probe, probe_col)
                        target = target if most is not None else None
                else:
                    target = (probe.scan, probe_col) if probe is not None and probe.scan else None
                if (
                    build is None
                    or probe is None
                    or target is None
                    or probe.derived
                    or build.fragment is probe.fragment
                    or not build.selective
                    or (build_col not in build.keys and most is None)
                    or probe.fragment.name in probes | builds
                    or build.fragment.name in probes
                ):
                    continue
                scan, column = target
                if most is not None:  # the probe's source takes key sets
                    dynamic = DynamicFilter(
                        build.fragment.name, build_col,
                        exp.column(column, scan.alias, quoted=True),
                        listed_only=True, max_keys=most,
                    )  # fmt: skip
                    self._set_dynamic_filter(probe.fragment, dynamic, (
                        f"key set: the source looks up at most {most} keys; past that the "
                        "probe starts unfiltered"))  # fmt: skip
                    probes.add(probe.fragment.name)
                    builds.add(build.fragment.name)
                    break
                verdict = self._dynamic_verdict(build, build_col, scan, column)
                if verdict is not None and not verdict.push:
                    self._note(probe.fragment, verdict.reason)
                    probes.add(probe.fragment.name)
                    break
                dynamic = DynamicFilter(
                    build.fragment.name, build_col, exp.column(column, scan.alias, quoted=True),
                    listed_only=verdict is not None or build.derived,
                )
                reason = verdict.reason if verdict is not None else None
                if build.derived:
                    reason = "listed keys only: the grouped derived table's size is unknown"
                self._set_dynamic_filter(probe.fragment, dynamic, reason)
                probes.add(probe.fragment.name)
                builds.add(build.fragment.name)
                break

    def _group_key_set(self, build: _Placed, probe: _Placed, probe_col: str) -> int | None:
        """Most keys of a key set from `build` into the join fragment `probe`, or None.

        The join must read `probe_col` as the single-column key of a large table that no
        filter of the join restricts on it, at a source taking key sets other than the
        build's (TPC-H Q8: the 40k orders of one part type's lineitems, of the 455k orders
        of two years that PostgreSQL joined with customers).
        """
        target = probe.columns.get(probe_col)
        if target is None or probe_col not in probe.unfiltered_keys:
            return None
        scan, column = target
        if self._identity(build.fragment.source) == self._identity(probe.fragment.source):
            return None
        return self._key_set_into(scan, column)

    def _key_set_into(self, scan: _Scan, column: str) -> int | None:
        """Most keys of a key set looking up `scan`'s table by `column`, or None: not its
        single-column key, behind a policy barrier, at a source without key sets, or a
        table small enough to read whole (`key_set_size`)."""
        connector = self._connectors[scan.source]
        if (scan.barrier is not None or not connector.capabilities.key_sets
                or not scan.is_key(column)):  # fmt: skip
            return None
        rows = _table_rows(connector, scan, column)
        return None if rows is None else key_set_size(rows)

    def _dynamic_verdict(
        self, build: _Placed, build_col: str, probe: _Scan, probe_col: str
    ) -> Verdict | None:
        """The cost gate's word on a dynamic filter from `build` (planner/cost.py)."""
        origin = build.unfiltered_keys.get(build_col)
        if origin is None or probe.barrier is not None:
            return None
        connector = self._connectors[build.fragment.source]
        build_key = _column_statistics(connector, origin[0], origin[1])
        if build_key is None or build_key.min is None:
            return None
        rows = connector.estimate_rows(build.fragment.handle)
        probe_key = _column_statistics(self._connectors[probe.source], probe, probe_col)
        return dynamic_filter_verdict(rows, build_key, probe_key)

    def _note(self, fragment: Fragment, note: str) -> None:
        fragments = self._state.fragments
        index = next(i for i, f in enumerate(fragments) if f is fragment)
        fragments[index] = replace(fragment, pushed=(*fragment.pushed, note))

    def _set_dynamic_filter(self, fragment: Fragment, dynamic: DynamicFilter,
                            reason: str | None = None) -> None:  # fmt: skip
        fragments = self._state.fragments
        index = next(i for i, f in enumerate(fragments) if f is fragment)
        note = (
            f"dynamic filter: {dynamic.probe_column.sql(CANONICAL_DIALECT)} IN "
            f"(keys of {dynamic.build}.{dynamic.build_column})"
        )
        notes = (note,) if reason is None else (note, reason)
        fragments[index] = replace(
            fragment, dynamic_filter=dynamic, pushed=(*fragment.pushed, *notes)
        )

    def _split_outer(
        self,
        select: exp.Select,
        scans: list[_Scan],
        where_conjuncts: list[exp.Expr],
        joins: list[exp.Join],
        null_supplied: set[str],
    ) -> None:
        """Keep the join tree; push to each scan only what outer-join semantics allow.

        A table no outer join null-extends takes its WHERE conjuncts and the conjuncts of any
        inner join's ON that name only it; a table on the right of a LEFT JOIN takes only that
        join's own ON conjuncts; everything else stays where it is.
        """
        on_of: dict[str, exp.Join] = {j.this.alias_or_name: j for j in joins}
        inner_ons = [j for j in joins if _is_inner(j) and j.args.get("on") is not None]
        for scan in scans:
            origins: list[tuple[exp.Expr, exp.Expr]] = []  # (conjunct, WHERE or Join)
            where = select.args.get("where")
            if scan.alias in null_supplied:
                join = on_of.get(scan.alias)
                if join is not None and join.args.get("side") == "LEFT" and join.args.get("on"):
                    origins = [(c, join) for c in _conjuncts(join.args["on"])]
                self._local_if_single(
                    scan, where_conjuncts, "filter above a null-supplying outer-join side"
                )
            else:
                if where is not None:
                    origins = [(c, where) for c in _conjuncts(where.this)]
                origins += [(c, j) for j in inner_ons for c in _conjuncts(j.args["on"])]
            inlined = self._inline_scan(scan)
            if inlined is not None:
                scan.node.replace(inlined)
                continue
            candidates = [c for c, _ in origins]
            fragment, absorbed = self._push_scan(select, scan, candidates)
            for conjunct, origin in origins:
                if any(conjunct is a for a in absorbed):
                    _drop_conjunct(select, origin, conjunct)
            where_conjuncts[:] = (
                list(_conjuncts(select.args["where"].this)) if select.args.get("where") else []
            )
            scan.node.replace(_fragment_ref(fragment.name, scan.alias))

    def _local_if_single(self, scan: _Scan, conjuncts: list[exp.Expr], why: str) -> None:
        for conjunct in conjuncts:
            if _aliases(conjunct) == {scan.alias}:
                self._local(f"{why}: {conjunct.sql(CANONICAL_DIALECT)}", conjunct)

    def _join_groups(self, scans: list[_Scan], conjuncts: list[exp.Expr]) -> list[list[str]]:
        """Tables of one source connected by row-preserving equi-joins, in scan order.

        A group has one root: the one table no join of the group reaches through its key;
        every other table is looked up by key, so the join returns at most the root's rows.
        A join that would give a group a second root (two tables referencing one dimension:
        `orders -> customer -> nation <- supplier`) is left to the merge: inside one
        fragment it is the product of the two, per key (a star join written with commas over
        TPC-H SF 1: orders of a nation x its suppliers, millions of rows; the issue's one
        grew the server past 20 GB).
        """
        parent = {s.alias: s.alias for s in scans}
        roots = {s.alias: {s.alias} for s in scans}  # by group representative

        def find(a: str) -> str:
            while parent[a] != a:
                a = parent[a]
            return a

        by_alias = {s.alias: s for s in scans}
        for conjunct in conjuncts:
            pair = _equi_join(conjunct)
            if pair is None:
                continue
            (la, lc), (ra, rc) = pair
            if la not in by_alias or ra not in by_alias or la == ra:
                continue
            left, right = by_alias[la], by_alias[ra]
            if self._identity(left.source) != self._identity(right.source):
                continue
            looked_up = {a for a, scan, c in ((la, left, lc), (ra, right, rc)) if scan.is_key(c)}
            if not looked_up:
                continue
            group_l, group_r = find(la), find(ra)
            joined = roots[group_l] | roots[group_r]
            if group_l != group_r:
                joined = min((joined - {a} for a in looked_up), key=len)
            if len(joined) > 1:
                continue
            parent[group_l] = group_r
            roots[group_r] = joined
        groups: dict[str, list[str]] = {}
        for scan in scans:
            groups.setdefault(find(scan.alias), []).append(scan.alias)
        return list(groups.values())

    def _push_join(
        self, select: exp.Select, group: list[_Scan], conjuncts: list[exp.Expr],
        gate: bool = True,
    ) -> tuple[Fragment, list[exp.Expr], dict[tuple[str, str], tuple[str, str]]] | None:
        """`group` as one join fragment of its source, or None: then its tables are read
        one by one. With `gate`, a join that keeps most of the rows its tables' own reads
        return is not pushed (cost.join_group_verdict): PostgreSQL runs it on one core."""
        aliases = {s.alias for s in group}
        source = group[0].source
        connector = self._connectors[source]
        offered = [
            c for c in conjuncts if _aliases(c) and _aliases(c) <= aliases and not _has_subquery(c)
        ]
        asked = self._table_filters(connector, group, offered)
        absorbed = [c for c in offered if self._accepts(connector, group, c, asked)]
        used = _used_columns(select, aliases, exclude=absorbed)
        projections = [
            exp.alias_(exp.column(c, a, quoted=True), f"{a}__{c}", quoted=True)
            for a, c in sorted(used)
        ] or [exp.alias_(exp.Literal.number(1), "__one")]
        tables: list[exp.Expr] = []
        inputs: list[ScanInput] = []
        for scan in group:
            table, scan_inputs = self._join_item(scan)
            tables.append(table)
            inputs.extend(scan_inputs)
        if len({i.alias for i in inputs}) < len(inputs):
            return None  # a barrier body's alias clashes with a table of the group
        query = exp.select(*projections).from_(tables[0])
        for table in tables[1:]:
            query = query.join(table, join_type="cross")
        if absorbed:
            query = query.where(exp.and_(*[c.copy() for c in absorbed]))
        if not self._may_hold(connector, query):
            if STREAMED_ONLY not in self._state.local_work:
                self._state.local_work.append(STREAMED_ONLY)
            return None
        handle = _offer_query(connector, query, tuple(inputs))
        if handle is None:
            return None
        joined = ", ".join(sorted(aliases))
        barriers = [s.barrier for s in group if s.barrier is not None]
        weighed: tuple[str, ...] = ()
        if gate and not barriers and not self._strict:
            whole = [connector.scan(s.physical.table, s.alias, s.physical.columns[:1])
                     for s in group]  # fmt: skip
            reads = [self._filtered_read(connector, scan, absorbed) for scan in group]
            verdict = join_group_verdict(connector, whole, reads, joined)
            if verdict is not None and not verdict.push:
                self._state.local_work.append(verdict.reason)
                return None
            weighed = () if verdict is None else (verdict.reason,)
        name = self._next_name()
        renames = {(a, c): (name, f"{a}__{c}") for a, c in used}
        fenced = ("policy barriers fenced with OFFSET 0",) if barriers else ()
        pushed = (f"join of {joined}", *fenced, *weighed)
        policies = tuple(dict.fromkeys(p for b in barriers for p in b.policies))
        fragment = self._fragment(source, handle, pushed, name=name, policies=policies)
        return fragment, absorbed, renames

    @staticmethod
    def _filtered_read(connector: Connector, scan: _Scan,
                       absorbed: list[exp.Expr]) -> PushedQuery | None:  # fmt: skip
        """The table of `scan` read alone with the group's conditions on it alone (only its
        row count is asked); None if it has none."""
        mine = [c for c in absorbed if _aliases(c) == {scan.alias}]
        if not mine:
            return None
        handle = connector.scan(scan.physical.table, scan.alias, scan.physical.columns)
        answer = connector.apply_filter(handle, mine)
        return handle if answer is None else answer.handle

    def _join_item(self, scan: _Scan) -> tuple[exp.Expr, list[ScanInput]]:
        """A join fragment's FROM item for `scan` with the inputs it reads.

        A barrier is its body as an `OFFSET 0` derived table under the scan's alias: a join
        fragment always adds the join's condition, and behind the fence PostgreSQL runs the
        row filter and the masks before any of the user's conditions (ARCHITECTURE.md §4.9).
        """
        if scan.barrier is None:
            inputs = [ScanInput(scan.alias, scan.physical.table, scan.physical.columns)]
            return _physical_node(scan.physical, scan.alias), inputs
        body, body_inputs = self._source_select(scan.barrier.body)
        body = body.offset(0, copy=False)
        alias = exp.TableAlias(this=exp.to_identifier(scan.alias, quoted=True))
        return exp.Subquery(this=body, alias=alias), list(body_inputs)

    def _table_filters(
        self, connector: Connector, group: list[_Scan], conjuncts: list[exp.Expr]
    ) -> dict[str, set[int]]:
        """alias -> the ids of its conjuncts the source takes EXACT, for each (non-barrier)
        table of `group` with several conjuncts on it alone: one filter proposal per table
        instead of one per conjunct.

        A proposal the source accepts whole accepts each of its conjuncts alone (a subset of
        a SELECT it can type and render); a table whose proposal is refused is left out, and
        `_accepts` asks about its conjuncts one by one.
        """
        asked: dict[str, set[int]] = {}
        for scan in group:
            mine = [c for c in conjuncts if _aliases(c) == {scan.alias}]
            if scan.barrier is not None or len(mine) < 2:
                continue
            handle = connector.scan(scan.physical.table, scan.alias, scan.physical.columns)
            answer = connector.apply_filter(handle, mine)
            if answer is None or len(answer.support) != len(mine):
                continue
            asked[scan.alias] = {
                id(c) for c, support in zip(mine, answer.support, strict=True)
                if support is FilterSupport.EXACT
            }  # fmt: skip
        return asked

    def _accepts(
        self,
        connector: Connector,
        group: list[_Scan],
        conjunct: exp.Expr,
        asked: Mapping[str, set[int]],
    ) -> bool:
        """Ask the connector about one conjunct over (one of) the group's scans, unless its
        table's conjuncts were `asked` together already (`_table_filters`)."""
        aliases = _aliases(conjunct)
        if len(aliases) == 1:
            scan = next(s for s in group if s.alias in aliases)
            if scan.alias in asked:
                return id(conjunct) in asked[scan.alias]
            if scan.barrier is not None:
                # Above the fence: over the barrier's rows, as the merge would evaluate it.
                item, inputs = self._join_item(scan)
                probe = exp.select(exp.Literal.number(1)).from_(item).where(conjunct.copy())
                return _offer_query(connector, probe, tuple(inputs)) is not None
            handle = connector.scan(scan.physical.table, scan.alias, scan.physical.columns)
            answer = connector.apply_filter(handle, [conjunct])
            return answer is not None and answer.support[0] is FilterSupport.EXACT
        return _equi_join(conjunct) is not None

    def _push_scan(
        self, select: exp.Select, scan: _Scan, conjuncts: list[exp.Expr]
    ) -> tuple[Fragment, list[exp.Expr]]:
        connector = self._connectors[scan.source]
        handle = connector.scan(scan.physical.table, scan.alias, scan.physical.columns)
        mine = [c for c in conjuncts if _aliases(c) == {scan.alias} and not _has_subquery(c)]
        absorbed: list[exp.Expr] = []
        pushed: list[str] = []
        if mine:
            answer = connector.apply_filter(handle, [c.copy() for c in mine])
            if answer is not None:
                if len(answer.support) != len(mine):
                    raise RuntimeError(
                        f"{type(connector).__name__}.apply_filter answered "
                        f"{len(answer.support)} of {len(mine)} conjuncts"
                    )
                handle = answer.handle
                for conjunct, support in zip(mine, answer.support, strict=True):
                    text = conjunct.sql(CANONICAL_DIALECT)
                    if support is FilterSupport.EXACT:
                        absorbed.append(conjunct)
                        pushed.append(f"filter {text}")
                    elif support is FilterSupport.INEXACT:
                        pushed.append(f"filter {text} (inexact, re-checked locally)")
                    else:
                        self._local(f"filter the source cannot evaluate: {text}", conjunct)
            else:
                for conjunct in mine:
                    self._local(
                        f"filter the source cannot evaluate: {conjunct.sql(CANONICAL_DIALECT)}",
                        conjunct,
                    )
        used = _used_columns(select, {scan.alias}, exclude=absorbed)
        projection = [
            exp.alias_(exp.column(c, scan.alias, quoted=True), c, quoted=True)
            for _, c in sorted(used)
        ]
        if projection and len(projection) < len(scan.physical.columns):
            projected = connector.apply_projection(handle, projection)
            if projected is not None:
                handle = projected
        return self._fragment(scan.source, handle, tuple(pushed)), absorbed

    # --- bookkeeping --------------------------------------------------------------------
    def _fragment(
        self,
        source: str,
        handle: PushedQuery,
        pushed: tuple[str, ...],
        name: str | None = None,
        policies: tuple[str, ...] = (),
    ) -> Fragment:
        fragment = Fragment(
            name or self._next_name(),
            source,
            handle,
            self._connectors[source].render(handle),
            pushed,
            policies=policies,
        )
        self._state.fragments.append(fragment)
        return fragment

    def _next_name(self) -> str:
        return f"__fragment_{next(self._state.counter)}"

    def _local(
        self, what: str, expression: exp.Expr | None = None, merged: str | None = None
    ) -> None:
        """Record work that stays in the merge; in strict mode, refuse the query instead.

        `what` may hold physical SQL: only admins see it, in EXPLAIN. The strict error names
        just the kind of work (`merged`, else `what` up to its colon) and the functions
        involved, which the caller wrote: never a physical table or column.
        """
        self._state.local_work.append(what)
        if self._strict:
            kind = merged if merged is not None else f"a {what.split(':', 1)[0]}"
            found = expression.find_all(exp.Func) if expression is not None else iter(())
            functions = sorted({_written_name(f) for f in found})
            involving = f" (using {', '.join(functions)})" if functions else ""
            raise PushdownRequired(
                f"strict pushdown: a part of this query would run in meshgate's merge layer "
                f"instead of at its source: {kind}{involving}; an admin's EXPLAIN shows which "
                "part; rewrite the query, or turn strict pushdown off (session option "
                "strict_pushdown=false)"
            )

    def _identity(self, source: str) -> SourceIdentity:
        return self._connectors[source].identity

    def _may_hold(self, connector: Connector, query: exp.Query) -> bool:
        """Whether `connector` may run `query`: with an out-of-process residual, a source in
        meshgate's process runs only what streams (its memory would be the server's).
        Strict pushdown wins: it asks for the sources' work, wherever they run."""
        if self._strict or not (self._stream_in_process and connector.in_process):
            return True
        return streams(query)


def streams(query: exp.Query) -> bool:
    """Whether `query` runs in bounded memory, row by row: one table (or such a derived
    table) filtered and projected, at most a LIMIT; no join, aggregate, DISTINCT, window,
    sort (except under a LIMIT: a top-N) or subquery.

    >>> streams(parse_one("SELECT a + 1 FROM t WHERE b > 2"))
    True
    >>> streams(parse_one("SELECT a, sum(b) FROM t GROUP BY a"))
    False
    """
    if not isinstance(query, exp.Select) or query.args.get("joins"):
        return False
    if any(query.args.get(key) for key in ("group", "having", "distinct", "qualify")):
        return False
    if query.args.get("order") is not None and query.args.get("limit") is None:
        return False
    source = query.args.get("from_")
    item = source.this if source is not None else None
    if isinstance(item, exp.Subquery):
        if not streams(item.this):
            return False
    elif item is not None and not isinstance(item, exp.Table):
        return False
    outside = [node for node in query.iter_expressions() if node is not source]
    return not any(node.find(exp.AggFunc, exp.Window, exp.Subquery, exp.Query)
                   for node in outside)  # fmt: skip


def _offer_query(
    connector: Connector, select: exp.Select, inputs: tuple[ScanInput, ...]
) -> PushedQuery | None:
    """Offer a whole SELECT to its source, typed with engine semantics; None if refused."""
    try:
        schema = engine_schema(select, inputs)
    except duckdb.Error:  # DuckDB cannot type it, so it cannot be a fragment either
        return None
    return connector.apply_query(select, schema, inputs)


# --- tree helpers ---------------------------------------------------------------------------
def inline_ctes(tree: exp.Query, *, keep_shared: bool = False) -> exp.Query:
    """Replace every CTE reference by a copy of its body, innermost WITH first.

    With `keep_shared`, the CTEs of the outermost WITH that are referenced more than once
    stay in it (their bodies with the other CTEs inlined), so that they can be computed once.
    """
    result = tree.copy()
    while True:
        withs = [w for w in result.find_all(exp.With)]
        if keep_shared:
            withs = [w for w in withs if w.parent is not result]
        if not withs:
            break
        result = _inline_with(result, withs[-1], frozenset())
    with_ = result.args.get("with_")
    if with_ is None:
        return result
    names = [cte.alias_or_name for cte in with_.expressions]
    counts = {name: 0 for name in names}
    for table in result.find_all(exp.Table):
        if _is_cte_reference(table, counts.keys()):
            counts[table.name] += 1
    return _inline_with(result, with_, frozenset(n for n in names if counts[n] > 1))


def _inline_with(result: exp.Query, with_: exp.With, keep: frozenset[str]) -> exp.Query:
    """`result` with the CTEs of `with_` (one of its WITH clauses) inlined, but for `keep`."""
    if with_.args.get("recursive"):
        raise UnsupportedQuery("recursive CTEs are not supported yet")
    owner = with_.parent
    assert isinstance(owner, exp.Query)
    bodies: dict[str, exp.Query] = {}
    kept: list[exp.CTE] = []
    for cte in with_.expressions:
        body = _substitute_ctes(cte.this, bodies)
        if cte.alias_or_name in keep:
            shared = cte.copy()
            shared.set("this", body)
            shared.set("materialized", True)
            kept.append(shared)
        else:
            bodies[cte.alias_or_name] = body
    owner.set("with_", None)
    replaced = _substitute_ctes(owner, bodies)
    if kept:
        replaced.set("with_", exp.With(expressions=kept))
    if owner is result:
        return replaced
    owner.replace(replaced)
    return result


def _cte_names(query: exp.Query) -> frozenset[str]:
    with_ = query.args.get("with_")
    if with_ is None:
        return frozenset()
    return frozenset(c.alias_or_name for c in with_.expressions)


def _is_cte_reference(table: exp.Table, names: Collection[str]) -> bool:
    return not table.db and not table.catalog and table.name in names


def _substitute_ctes(node: exp.Query, bodies: Mapping[str, exp.Query]) -> exp.Query:
    def swap(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Table) and not n.db and n.name in bodies and source_of(n) is None:
            alias = n.alias_or_name
            return exp.Subquery(
                this=bodies[n.name].copy(),
                alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
            )
        return n

    result = node.transform(swap, copy=True)
    assert isinstance(result, exp.Query)
    return result


def _operator_kinds(query: exp.Expr) -> str:
    """What the merge layer would run of `query`, by operator kind, in words the user wrote.

    `SELECT a, count(*) FROM x JOIN y ... GROUP BY a ORDER BY 2` -> "join of 2 tables,
    aggregation and ORDER BY".
    """
    if isinstance(query, exp.SetOperation):
        word = {exp.Union: "UNION", exp.Intersect: "INTERSECT", exp.Except: "EXCEPT"}
        return word.get(type(query), "set operation")
    kinds: list[str] = []
    if isinstance(query, exp.Select):
        tables = len(query.args.get("joins") or []) + 1
        if tables > 1:
            kinds.append(f"join of {tables} tables")
        if query.args.get("group") or any(p.find(exp.AggFunc) for p in query.expressions):
            kinds.append("aggregation")
        if query.args.get("having"):
            kinds.append("HAVING")
        if any(p.find(exp.Window) for p in query.expressions) or query.args.get("qualify"):
            kinds.append("window functions")
        if query.args.get("distinct"):
            kinds.append("DISTINCT")
        if query.args.get("where"):
            kinds.append("WHERE")
        if query.args.get("order"):
            kinds.append("ORDER BY")
        if query.args.get("limit") or query.args.get("offset"):
            kinds.append("LIMIT")
        if any(s is not query for s in query.find_all(exp.Select)):
            kinds.append("subqueries")
    if not kinds:
        return "projection"
    return kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"


def _written_name(node: exp.Func) -> str:
    """A function's name as DuckDB SQL spells it, which is how the user wrote it."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql(CANONICAL_DIALECT).split("(", 1)[0].lower()


def _has_conditions(query: exp.Expr) -> bool:
    """Whether the user's query (outside its barriers) has a condition a source could run
    beside, or before, a barrier's row filter: WHERE, ON, HAVING, QUALIFY or a subquery.

    Without one, a source cannot reorder anything of the user's with the filter: projections,
    groups, ordering and limits apply only to rows the filter let through, so the barrier may
    go down unfenced (and PostgreSQL may then plan it in parallel).
    """
    for node in query.walk():
        if isinstance(node, exp.Where | exp.Having | exp.Qualify | exp.Subquery | exp.Exists):
            return True
        if isinstance(node, exp.Join) and (node.args.get("on") or node.args.get("using")):
            return True
        if isinstance(node, exp.Query) and node is not query:
            return True
    return False


def _has_barrier(query: exp.Expr) -> bool:
    return any(barrier_of(t) is not None for t in query.find_all(exp.Table))


def _has_local(query: exp.Expr) -> bool:
    return any(t.catalog == LOCAL_CATALOG for t in query.find_all(exp.Table))


def _name_local_tables(query: exp.Query) -> exp.Query:
    """Local relations are registered in the merge's DuckDB under their bare names."""

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.catalog == LOCAL_CATALOG:
            return exp.Table(
                this=exp.to_identifier(node.name, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(node.alias_or_name, quoted=True)),
            )
        return node

    renamed = query.transform(rename, copy=True)
    assert isinstance(renamed, exp.Query)
    return renamed


def _sources(query: exp.Expr) -> set[str]:
    return {s for t in query.find_all(exp.Table) if (s := source_of(t)) is not None}


def _external_columns(query: exp.Query) -> bool:
    """Whether `query` refers to tables defined outside it (a correlated subquery)."""
    defined = {t.alias_or_name for t in query.find_all(exp.Table)}
    defined |= {s.alias_or_name for s in query.find_all(exp.Subquery) if s.alias}
    defined |= {u.alias_or_name for u in query.find_all(exp.Unnest)}
    return any(c.table and c.table not in defined for c in query.find_all(exp.Column))


def _as_query(placed: exp.Query | Fragment) -> exp.Query:
    if isinstance(placed, Fragment):
        return exp.select("*").from_(exp.to_table(placed.name))
    return placed


def _fragment_ref(name: str, alias: str) -> exp.Table:
    return exp.Table(
        this=exp.to_identifier(name, quoted=True),
        alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
    )


def _physical_node(physical: PhysicalTable, alias: str) -> exp.Table:
    return exp.Table(
        this=exp.to_identifier(physical.table.name, quoted=True),
        db=exp.to_identifier(physical.table.schema, quoted=True) if physical.table.schema else None,
        alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
    )


def _conjuncts(condition: exp.Expr) -> Iterator[exp.Expr]:
    if isinstance(condition, exp.And):
        for part in condition.flatten():
            yield from _conjuncts(part)
    elif isinstance(condition, exp.Paren):
        yield from _conjuncts(condition.this)
    else:
        yield condition


def _aliases(expression: exp.Expr) -> set[str]:
    return {c.table for c in expression.find_all(exp.Column) if c.table}


def _has_subquery(expression: exp.Expr) -> bool:
    return any(True for _ in expression.find_all(exp.Query, exp.Subquery, exp.Exists))


def _drop_conjunct(select: exp.Select, origin: exp.Expr, conjunct: exp.Expr) -> None:
    """Remove one absorbed conjunct from a WHERE or a join's ON (an emptied ON is TRUE)."""
    condition = origin.args["on"] if isinstance(origin, exp.Join) else origin.this
    kept = [c for c in _conjuncts(condition) if c is not conjunct]
    # copy=False: the remaining conjuncts must stay the very nodes callers hold on to
    if isinstance(origin, exp.Join):
        origin.set("on", exp.and_(*kept, copy=False) if kept else exp.true())
    elif kept:
        origin.set("this", exp.and_(*kept, copy=False))
    else:
        select.set("where", None)


def _is_inner(join: exp.Join) -> bool:
    side = join.args.get("side")
    kind = (join.args.get("kind") or "").upper()
    return not side and kind in ("", "INNER", "CROSS") and not join.args.get("using")


def _null_supplied_aliases(select: exp.Select) -> set[str]:
    """Aliases whose rows an outer join may null-extend (their filters must stay above it)."""
    items = [select.args["from_"].this] + [j.this for j in select.args.get("joins") or []]
    names = [i.alias_or_name for i in items]
    supplied: set[str] = set()
    for index, join in enumerate(select.args.get("joins") or [], start=1):
        side = join.args.get("side")
        if side in ("LEFT", "FULL"):
            supplied.add(names[index])
        if side in ("RIGHT", "FULL"):
            supplied.update(names[:index])
    return supplied


def _equi_join(conjunct: exp.Expr) -> tuple[tuple[str, str], tuple[str, str]] | None:
    if (
        isinstance(conjunct, exp.EQ)
        and isinstance(conjunct.this, exp.Column)
        and isinstance(conjunct.expression, exp.Column)
        and conjunct.this.table
        and conjunct.expression.table
    ):
        return (
            (conjunct.this.table, conjunct.this.name),
            (conjunct.expression.table, conjunct.expression.name),
        )
    return None


def _restricts(conjuncts: list[exp.Expr], alias: str, column: str) -> bool:
    """Whether a conjunct names `alias.column` (so the key's range may be narrowed)."""
    return any(
        c.table == alias and c.name == column
        for conjunct in conjuncts
        for c in conjunct.find_all(exp.Column)
    )


def _table_rows(connector: Connector, scan: _Scan, column: str) -> int | None:
    """The source's row count of `scan`'s table (read through one of its columns)."""
    statistics = _scan_statistics(connector, scan, column)
    return None if statistics is None else statistics.row_count


def _column_statistics(connector: Connector, scan: _Scan, column: str) -> ColumnStatistics | None:
    """The source's catalog statistics of one column of `scan`'s table, read unchanged."""
    statistics = _scan_statistics(connector, scan, column)
    return None if statistics is None else statistics.columns.get(column)


def _scan_statistics(connector: Connector, scan: _Scan, column: str) -> TableStatistics | None:
    """What the source knows of a plain scan of `column` of `scan`'s table."""
    columns = [c for c in scan.physical.columns if c.name == column]
    if not columns:
        return None
    return connector.statistics(connector.scan(scan.physical.table, scan.alias, columns))


def _barrier_key(barrier: PolicyBarrier, physical: PhysicalTable) -> tuple[str, ...]:
    """The barrier's output columns that carry `physical`'s primary key, unmasked.

    A row filter only removes rows, so the key stays unique; a masked key column does not.
    """
    body = barrier.body
    if not isinstance(body, exp.Select) or any(
        body.args.get(k) for k in ("group", "distinct", "having", "qualify")
    ):
        return ()
    carried = {
        p.this.name: p.alias_or_name
        for p in body.expressions
        if isinstance(p, exp.Alias) and isinstance(p.this, exp.Column)
        and p.alias_or_name not in barrier.masked
    }  # fmt: skip
    if not physical.primary_key or any(k not in carried for k in physical.primary_key):
        return ()
    return tuple(carried[k] for k in physical.primary_key)


def _used_columns(
    select: exp.Select, aliases: set[str], exclude: list[exp.Expr]
) -> set[tuple[str, str]]:
    """(alias, column) pairs of `aliases` that `select` still needs once `exclude` is gone."""
    excluded = {id(node) for e in exclude for node in e.walk()}
    return {
        (c.table, c.name)
        for c in select.find_all(exp.Column)
        if c.table in aliases and id(c) not in excluded
    }


def _rename_columns(select: exp.Select, renames: Mapping[tuple[str, str], tuple[str, str]]) -> None:
    for column in list(select.find_all(exp.Column)):
        target = renames.get((column.table, column.name))
        if target is not None:
            column.replace(exp.column(target[1], target[0], quoted=True))



def _keyed_by_joins(groups: list[list[str]], by_alias: Mapping[str, _Scan],
                    conjuncts: list[exp.Expr]) -> set[int]:  # fmt: skip
    """The groups that a join of two or more tables elsewhere, or a derived table, meets on
    the key of one of theirs: that side's keys may restrict them at their source (a key set,
    TPC-H Q8; a dynamic filter from a HAVING's keys, Q18), which pulling them table by table
    would forgo, so they go down joined."""
    group_of = {alias: i for i, group in enumerate(groups) for alias in group}
    restricted: set[int] = set()
    for conjunct in conjuncts:
        pair = _equi_join(conjunct)
        if pair is None:
            continue
        (la, lc), (ra, rc) = pair
        for alias, column, other in ((la, lc, ra), (ra, rc, la)):
            if alias not in group_of or group_of.get(other) == group_of[alias]:
                continue
            elsewhere = other not in group_of or len(groups[group_of[other]]) > 1
            if elsewhere and by_alias[alias].is_key(column):
                restricted.add(group_of[alias])
    return restricted

def _rebuild_inner_from(
    select: exp.Select, replaced: Mapping[str, exp.Expr], conjuncts: list[exp.Expr]
) -> None:
    """Re-form FROM as a cross product of the remaining items, conditions in WHERE."""
    items: list[exp.Expr] = []
    seen: set[int] = set()
    originals = [select.args["from_"].this] + [j.this for j in select.args.get("joins") or []]
    for item in originals:
        new = replaced.get(item.alias_or_name, item) if isinstance(item, exp.Table) else item
        if id(new) in seen:
            continue
        seen.add(id(new))
        items.append(new)
    select.set("from_", exp.From(this=items[0].copy()))
    select.set("joins", [exp.Join(this=i.copy(), kind="CROSS") for i in items[1:]] or None)
    select.set("where", exp.Where(this=exp.and_(*conjuncts)) if conjuncts else None)
