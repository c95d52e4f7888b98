"""The shared SQL-connector base: one generic pushdown implementation, a strategy per database.

Handles are canonical-dialect (DuckDB) SELECTs over the source's physical tables. The base
answers the planner's proposals against the connector's declared `Capabilities`, proves each
candidate by describing it with DuckDB (`engine_schema`) and by generating it in the source
dialect, and streams results cast to the handle's (engine) schema: the connector's contract,
distinct from the one cast of a plan's output to the wire schema, which execution does.

A concrete connector supplies `capabilities`, `table_columns`, `check` and the driver's
`_stream(sql, parameters, schema, cancel)` (which stops the driver's work when `cancel` is
set, through `cancel.stopping(...)`); optional strategy hooks: `_renders_node` (veto one node,
e.g. dynamically typed columns), `_conjunct_support` (INEXACT answers), `_physical_select`
(the SELECT as the source must receive it), `_collated_columns` + `binary_collation` (compare
collated text by bytes), `_table_statistics` + `_estimate` (statistics), `driver_errors`
(reported as SourceUnavailable) + `_value_failure` (those among them that are the query's fault,
reported as QueryValueError): the caller reads neither the driver's text nor the source's name.
"""

from __future__ import annotations

import abc
import collections
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import SqlglotError

from meshgate.errors import MeshgateError, QueryCancelled, SourceUnavailable
from meshgate.spi import (
    CancelToken,
    Connector,
    ConnectorContext,
    FilterApplication,
    FilterSupport,
    PlanCost,
    PushedQuery,
    QueryContext,
    ScanInput,
    SourceColumn,
    SourceIdentity,
    SourceTable,
    TableStatistics,
)
from meshgate.spi.parameters import parameter_positions, renumbered
from meshgate.sqlconnector.capabilities import declares
from meshgate.sqlconnector.collation import (
    TEXT_EQUALITY,
    ColumnTypes,
    column_types,
    compare_bytes,
    has_text_operand,
    text_agrees,
)
from meshgate.sqlconnector.describe import engine_schema, scan_schema
from meshgate.sqlconnector.failures import ValueFailure, source_failed
from meshgate.sqlconnector.negotiation import is_distinct, is_row_level, limit_of, named
from meshgate.sqlconnector.rendering import physical_table, source_sql
from meshgate.sqlconnector.statistics import for_outputs, unchanged_table
from meshgate.sqlconnector.streaming import result_reader

SENT_SQL_KEPT = 256
RENDERED_KEPT = 1024  # handles whose SQL `render` remembers
# How long a table's statistics and an EXPLAIN's estimate are reused for planning (a reload
# that changes a source's options makes it a new connector; an unchanged one keeps them).
STATISTICS_TTL_SECONDS = 60.0
PLANS_KEPT = 1024  # fragment texts whose EXPLAIN answers are remembered


class SqlConnector(Connector):
    """A source spoken to in SQL; subclasses add the driver and their capability table."""

    # Exceptions of the driver that mean "the source failed", reported as SourceUnavailable
    # unless `_value_failure` says the query computed a bad value.
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    # The source's collation that compares text by bytes, as DuckDB does; text columns declared
    # with another collation are rendered `col COLLATE <this>` so the source agrees.
    binary_collation: ClassVar[str | None] = None

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        # The SQL each execute() sent, newest last: what EXPLAIN shows and tests assert on.
        self.sent_sql: collections.deque[str] = collections.deque(maxlen=SENT_SQL_KEPT)
        # Rows per Arrow batch asked of the driver: bounds memory per fragment.
        self.batch_rows: int = int(context.options.get("batch_rows", 64 * 1024))
        self._identity = SourceIdentity.of(self.kind, dict(context.options))
        self._columns_lock = threading.Lock()
        self._columns_cache: dict[SourceTable, list[SourceColumn]] = {}
        self._collated_cache: dict[SourceTable, frozenset[str]] = {}
        # Rendered SQL by handle identity: a cached plan's fragments are rendered once, not
        # at every execution (rendering a barrier's SQL costs milliseconds).
        self._rendered: collections.OrderedDict[int, tuple[PushedQuery, str, tuple[int, ...]]] = (
            collections.OrderedDict()
        )
        self._rendered_lock = threading.Lock()
        # What the source's statistics said, and when: planning asks them per candidate.
        self._statistics_lock = threading.Lock()
        self._statistics: dict[SourceTable, tuple[float, TableStatistics | None]] = {}
        self._plans: collections.OrderedDict[tuple[str, str], tuple[float, Any]] = (
            collections.OrderedDict()
        )

    @property
    def identity(self) -> SourceIdentity:
        return self._identity

    # --- strategy hooks -------------------------------------------------------------------
    @abc.abstractmethod
    def _stream(
        self, sql: str, parameters: Sequence[Any], schema: pa.Schema, cancel: CancelToken
    ) -> Iterator[pa.RecordBatch]:
        """Run `sql` and yield its batches, best as a generator whose `finally` cancels and
        releases the source's work: `execute` pulls the first batch at once (so errors surface
        there) and closes the iterator when the caller closes the reader. While the driver
        runs, `cancel` (the query's token) must be able to stop it from another thread: wrap
        the driver's work in `with cancel.stopping(<the driver's cancel>)`."""

    def _value_failure(self, error: BaseException) -> ValueFailure | None:
        """What the user's query failed to compute, when `error` (one of `driver_errors`) is
        a value error (a cast, overflow, bad date text) rather than the source failing."""
        return None

    def _collated_columns(self, table: SourceTable) -> frozenset[str]:
        """Text columns of `table` declared with a collation other than byte order."""
        return frozenset()

    def _physical_select(self, select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
        """The SELECT as this source must receive it (e.g. tables turned into file scans)."""
        return select

    def _renders_node(self, node: exp.Expr, column_types: ColumnTypes) -> bool:
        """A per-source veto on one node the capability table allows (dynamic typing etc.)."""
        return True

    def _conjunct_support(self, conjunct: exp.Expr, column_types: ColumnTypes) -> FilterSupport:
        """EXACT unless the source evaluates a renderable conjunct differently from DuckDB.

        A source whose text equality differs (case-insensitive collations, blank padding)
        matches a superset of rows: INEXACT, and the engine filters again.
        """
        if not self.capabilities.text_equality_matches_engine and any(
            isinstance(node, TEXT_EQUALITY) and has_text_operand(node, column_types)
            for node in conjunct.walk()
        ):
            return FilterSupport.INEXACT
        return FilterSupport.EXACT

    def _table_statistics(self, table: SourceTable) -> TableStatistics | None:
        """The source's catalog statistics of `table` (columns keyed by source name)."""
        return None

    def _estimate(self, sql: str) -> int | None:
        """The source planner's estimate of the rows `sql` returns, where the planner derives
        it from the statistics it gathered (PostgreSQL's ANALYZE). None for a planner that
        falls back on fixed guesses (DuckDB assumes a filter keeps 20% of the rows): EXPLAIN
        shows an unknown estimate rather than a made-up number."""
        return None

    def _plan_cost(self, sql: str) -> PlanCost | None:
        """The source planner's rows and total cost for `sql`, where its planner works from
        gathered statistics; None otherwise (as `_estimate`)."""
        return None

    # --- capability check -----------------------------------------------------------------
    def can_render(self, expr: exp.Expr, inputs: Sequence[ScanInput] = ()) -> bool:
        """Whether every node of `expr` is declared pushable to this source."""
        capabilities = self.capabilities
        nested_queries = exp.Subquery in capabilities.expressions
        types = column_types(inputs)
        for node in expr.walk():
            if isinstance(node, exp.Parameter):
                return False
            if isinstance(node, exp.Placeholder):
                if not node.name.isdigit():
                    return False  # only the planner's numbered client parameters travel
                continue
            if isinstance(node, exp.Query) and node is not expr and not nested_queries:
                return False
            if not declares(node, capabilities) or not self._renders_node(node, types):
                return False
            if not text_agrees(node, capabilities, types):
                return False
        return True

    # --- negotiation ----------------------------------------------------------------------
    def scan(self, table: SourceTable, alias: str, columns: Sequence[SourceColumn]) -> PushedQuery:
        inputs = (ScanInput(alias=alias, table=table, columns=tuple(columns)),)
        select = exp.Select(
            expressions=[exp.alias_(exp.column(c.name, table=alias), c.name) for c in columns]
        ).from_(physical_table(table, alias))
        return PushedQuery(select=select, schema=scan_schema(columns), inputs=inputs)

    def apply_filter(
        self, handle: PushedQuery, conjuncts: Sequence[exp.Expr]
    ) -> FilterApplication | None:
        if not is_row_level(handle.select):
            return None
        answers: list[FilterSupport] = []
        pushed: list[exp.Expr] = []
        for proposed in conjuncts:
            conjunct = proposed.copy()
            answer = FilterSupport.UNSUPPORTED
            if self.can_render(conjunct, handle.inputs):
                answer = self._conjunct_support(conjunct, column_types(handle.inputs))
            answers.append(answer)
            if answer is not FilterSupport.UNSUPPORTED:
                pushed.append(conjunct.copy())
        if not pushed:
            return None
        select = handle.select.copy().where(*pushed, copy=False)
        inexact = FilterSupport.INEXACT in answers
        candidate = self._accept(
            select, handle, has_inexact_filter=handle.has_inexact_filter or inexact
        )
        if candidate is None:
            return None
        return FilterApplication(candidate, tuple(answers))

    def apply_projection(
        self, handle: PushedQuery, projections: Sequence[exp.Expr]
    ) -> PushedQuery | None:
        # Above an INEXACT filter the caller keeps the columns it re-checks (it re-applies
        # every conjunct not answered EXACT), so projecting is still safe.
        if handle.has_aggregate or is_distinct(handle.select) or not projections:
            return None
        outputs = named(projections)
        if outputs is None or not all(self.can_render(p, handle.inputs) for p in outputs):
            return None
        select = handle.select.copy()
        select.set("expressions", outputs)
        return self._accept(select, handle)

    def apply_query(
        self, query: exp.Query, schema: pa.Schema, inputs: Sequence[ScanInput] = ()
    ) -> PushedQuery | None:
        if not isinstance(query, exp.Select) or not _with_at_top_only(query):
            return None
        select = query.copy()
        planned = bool(inputs)
        inputs = _typed_as_planned(self._inputs_of(select, _cte_names(select)), inputs)
        if not inputs or not self.can_render(select, inputs):
            return None
        for clause in select.find_all(exp.Where, exp.Having):
            for conjunct in (
                clause.this.flatten() if isinstance(clause.this, exp.And) else [clause.this]
            ):
                support = self._conjunct_support(conjunct, column_types(inputs))
                if support is not FilterSupport.EXACT:
                    return None
        has_aggregate = bool(select.args.get("group")) or any(
            e.find(exp.AggFunc) for e in select.expressions
        )
        probe = PushedQuery(select=select, schema=schema, inputs=inputs)
        # Checked above; and typed by the caller when it gave the inputs it typed `schema`
        # over (the planner describes every query it offers): a second DuckDB describe of
        # the same text and inputs would say the same.
        candidate = self._accept(
            select, probe, has_limit=limit_of(select) is not None, has_aggregate=has_aggregate,
            checked=True, schema=schema if planned else None,
        )  # fmt: skip
        if candidate is None or len(candidate.schema) != len(schema):
            return None
        if candidate.schema is schema:
            return candidate  # the very handle rendered: its text is remembered
        return replace(candidate, schema=schema)

    def statistics(self, handle: PushedQuery) -> TableStatistics | None:
        """Catalog statistics for a table read unchanged, else the planner's row estimate when
        the source holds statistics of every table the handle reads; None (unknown) when the
        source keeps neither or cannot be asked right now."""
        unanswerable: tuple[type[BaseException], ...] = (
            *self.driver_errors, MeshgateError, SqlglotError, LookupError, ValueError
        )
        try:
            unchanged = unchanged_table(handle)
            if unchanged is not None:
                table = self._recent_statistics(unchanged[0].table)
                return None if table is None else for_outputs(table, unchanged[1])
            # A planner estimate over a table the source never analysed is a guess too.
            if any(self._recent_statistics(i.table) is None for i in handle.inputs):
                return None
            rows = self._recent_plan("rows", self.render(handle), self._estimate)
        except unanswerable:
            return None
        return None if rows is None else TableStatistics(rows)

    def estimate_cost(self, handle: PushedQuery) -> PlanCost | None:
        """The planner's cost of `handle`, when the source analysed every table it reads."""
        unanswerable: tuple[type[BaseException], ...] = (
            *self.driver_errors, MeshgateError, SqlglotError, LookupError, ValueError
        )
        try:
            if any(self._recent_statistics(i.table) is None for i in handle.inputs):
                return None
            cost: PlanCost | None = self._recent_plan("cost", self.render(handle),
                                                      self._plan_cost)  # fmt: skip
            return cost
        except unanswerable:
            return None

    def _recent_statistics(self, table: SourceTable) -> TableStatistics | None:
        """`_table_statistics` as of at most STATISTICS_TTL_SECONDS ago.

        Statistics are a snapshot of the last ANALYZE (or file footer) anyway, and a plan
        asks them for every candidate it weighs: each ask was a catalog query or a read of
        every Parquet footer (the cold planning of TPC-H Q13 made 8 catalog round trips).
        A table without statistics is not remembered: its first ANALYZE counts at once.
        """
        now = time.monotonic()
        with self._statistics_lock:
            known = self._statistics.get(table)
        if known is not None and now - known[0] < STATISTICS_TTL_SECONDS:
            return known[1]
        found = self._table_statistics(table)
        if found is not None:  # none yet (never analysed): the next ask looks again
            with self._statistics_lock:
                self._statistics[table] = (now, found)
        return found

    def forget_estimates(self) -> None:
        """Drop the remembered EXPLAIN answers per fragment text (a cold plan of a text seen
        before must ask again; table statistics, shared by every text, are kept)."""
        with self._statistics_lock:
            self._plans.clear()

    def _recent_plan(self, kind: str, sql: str, ask: Callable[[str], Any]) -> Any:
        """The source planner's answer `ask(sql)` (an EXPLAIN) as of at most
        STATISTICS_TTL_SECONDS ago: the planner derives it from the same statistics, and
        the cost gate asks it again for each plan of the same fragment text."""
        now = time.monotonic()
        key = (kind, sql)
        with self._statistics_lock:
            known = self._plans.get(key)
        if known is not None and now - known[0] < STATISTICS_TTL_SECONDS:
            return known[1]
        found = ask(sql)
        with self._statistics_lock:
            self._plans[key] = (now, found)
            self._plans.move_to_end(key)
            while len(self._plans) > PLANS_KEPT:
                self._plans.popitem(last=False)
        return found

    # --- execution ------------------------------------------------------------------------
    def render(self, handle: PushedQuery) -> str:
        """The handle's SQL with its client parameters numbered 1..m in this source's own
        marker style; `execute` binds the values in that order. Handles are immutable, so
        the text is remembered per handle (the last 1024)."""
        return self._rendered_and_bound(handle)[0]

    def _rendered_and_bound(self, handle: PushedQuery) -> tuple[str, tuple[int, ...]]:
        """`render(handle)` and the client position of each of its numbers, remembered
        together: a point lookup's run then walks no tree (both cost a walk of the SELECT)."""
        with self._rendered_lock:
            found = self._rendered.get(id(handle))
            if found is not None and found[0] is handle:
                self._rendered.move_to_end(id(handle))
                return found[1], found[2]
        sql, positions = self._render(handle), parameter_positions(handle.select)
        with self._rendered_lock:
            self._rendered[id(handle)] = (handle, sql, positions)
            while len(self._rendered) > RENDERED_KEPT:
                self._rendered.popitem(last=False)
        return sql, positions

    def _render(self, handle: PushedQuery) -> str:
        """The uncached rendering behind `render`; sources refine it here."""
        select, _ = renumbered(handle.select)
        assert isinstance(select, exp.Select)
        select = self._binary_text(select, handle.inputs)
        select = self._physical_select(select, handle.inputs)
        select = self._with_parameter_markers(select)
        return source_sql(select, handle.inputs, self.capabilities.dialect)

    def execute(
        self, handle: PushedQuery, context: QueryContext | None = None
    ) -> pa.RecordBatchReader:
        context = context if context is not None else QueryContext.standalone()
        if context.cancel.cancelled:
            raise QueryCancelled("the query was cancelled before its source ran it")
        sql, positions = self._rendered_and_bound(handle)
        self.sent_sql.append(sql)
        bound = [self._bind_value(context.parameters[position]) for position in positions]
        batches = self._stream(sql, bound, handle.schema, context.cancel)
        return result_reader(batches, handle.schema, self.driver_errors, self._failed)

    # --- parameters -----------------------------------------------------------------------
    def _parameter_marker(self, number: int) -> exp.Expr:
        """How the source's SQL names its `number`th bound parameter (DuckDB: `$n`)."""
        return exp.Placeholder(this=str(number))

    def _bind_value(self, value: Any) -> Any:
        """A client's value as this source's driver binds it."""
        return value

    def _with_parameter_markers(self, select: exp.Select) -> exp.Select:
        if select.find(exp.Placeholder) is None:
            return select

        def mark(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Placeholder) and node.name.isdigit():
                return self._parameter_marker(int(node.name))
            return node

        marked = select.transform(mark, copy=True)
        assert isinstance(marked, exp.Select)
        return marked

    # --- internals ------------------------------------------------------------------------
    def _failed(self, error: BaseException) -> MeshgateError:
        """A driver error as the caller may read it; its own text only in the detail."""
        detail = f"source {self.context.name!r} ({self.kind}): {type(error).__name__}: {error}"
        failure = self._value_failure(error)
        if failure is not None:
            return failure.error(detail)
        return source_failed(self.kind, detail)

    def _inputs_of(
        self, select: exp.Select, ctes: frozenset[str] = frozenset()
    ) -> tuple[ScanInput, ...]:
        """The physical tables `select` reads, each aliased (in place); () if one cannot be
        read or an alias names two different tables. References to the `ctes` of its WITH
        are not tables; () if one's alias is also a table's (the tables are known by alias
        from here on)."""
        inputs: list[ScanInput] = []
        cte_aliases: set[str] = set()
        for table in select.find_all(exp.Table):
            if not table.db and not table.catalog and table.name in ctes:
                cte_aliases.add(table.alias_or_name)
                continue
            if not table.name or isinstance(table.this, exp.Func):
                return ()
            alias = table.alias_or_name
            source_table = SourceTable(schema=table.db or None, name=table.name)
            same_alias = [i for i in inputs if i.alias == alias]
            if same_alias:
                # The alias is reused in another scope: fine when it names the same table.
                if same_alias[0].table != source_table:
                    return ()
                continue
            try:
                columns = self._cached_columns(source_table)
            except MeshgateError:
                return ()
            if not table.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
            inputs.append(ScanInput(alias=alias, table=source_table, columns=tuple(columns)))
        if cte_aliases & {i.alias for i in inputs}:
            return ()
        return tuple(inputs)

    def _binary_text(self, select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
        """`select` with references to collated text columns compared by bytes."""
        if self.binary_collation is None:
            return select
        collated: dict[tuple[str, str], pa.DataType] = {}
        for item in inputs:
            with self._columns_lock:
                names = self._collated_cache.get(item.table)
            if names is None:
                names = self._collated_columns(item.table)
                with self._columns_lock:
                    self._collated_cache[item.table] = names
            collated.update({(item.alias, c.name): c.type for c in item.columns if c.name in names})
        if not collated:
            return select
        return compare_bytes(select, collated, column_types(inputs), self.binary_collation)

    def _cached_columns(self, table: SourceTable) -> list[SourceColumn]:
        """`table_columns`, remembered for the life of the connector (sources' schemas are
        fixed while a deployment runs; `meshgate check` reports drift)."""
        with self._columns_lock:
            cached = self._columns_cache.get(table)
        if cached is None:
            cached = self.table_columns(table)
            with self._columns_lock:
                self._columns_cache[table] = cached
        return cached

    def _accept(
        self,
        select: exp.Select,
        base: PushedQuery,
        *,
        has_inexact_filter: bool | None = None,
        has_limit: bool | None = None,
        has_aggregate: bool | None = None,
        checked: bool = False,
        schema: pa.Schema | None = None,
    ) -> PushedQuery | None:
        """The handle for `select`, or None when DuckDB cannot bind it or the dialect cannot
        say it: both mean the engine keeps that work. `checked`: the caller has just run
        `can_render` on this very select; `schema`: its engine schema, already described."""
        if not checked and not self.can_render(select, base.inputs):
            return None
        if schema is None:
            try:
                schema = engine_schema(select, base.inputs)
            except duckdb.Error:
                return None
        candidate = PushedQuery(
            select=select,
            schema=schema,
            inputs=base.inputs,
            has_inexact_filter=(
                base.has_inexact_filter if has_inexact_filter is None else has_inexact_filter
            ),
            has_limit=base.has_limit if has_limit is None else has_limit,
            has_aggregate=base.has_aggregate if has_aggregate is None else has_aggregate,
        )
        try:
            self.render(candidate)
        except (SqlglotError, SourceUnavailable):
            return None
        return candidate


def _with_at_top_only(select: exp.Select) -> bool:
    """Whether `select` has no WITH but, perhaps, its own non-recursive one: the CTEs a
    planner keeps because the query reads them more than once (sources that declare
    `exp.CTE` compute each once)."""
    with_ = select.args.get("with_")
    if with_ is not None and with_.args.get("recursive"):
        return False
    return all(w is with_ for w in select.find_all(exp.With))


def _cte_names(select: exp.Select) -> frozenset[str]:
    with_ = select.args.get("with_")
    if with_ is None:
        return frozenset()
    return frozenset(c.alias_or_name for c in with_.expressions)


def _typed_as_planned(
    found: tuple[ScanInput, ...], planned: Sequence[ScanInput]
) -> tuple[ScanInput, ...]:
    """The tables a query reads, with the planner's column types where it gave them; () if
    it gave some and they do not name the same tables under the same aliases."""
    if not planned:
        return found
    by_alias = {item.alias: item for item in planned}
    if any(by_alias.get(item.alias, item).table != item.table for item in found):
        return ()
    if {item.alias for item in found} != by_alias.keys():
        return ()
    return tuple(by_alias[item.alias] for item in found)
