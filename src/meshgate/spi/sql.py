"""The shared SQL-connector base: one generic pushdown implementation, a strategy per database.

Handles are canonical-dialect (DuckDB) SELECTs over the source's physical tables, each aliased
as in the handle's inputs. The base negotiates every `apply_*` against the connector's declared
`Capabilities`, proves each candidate by describing it with DuckDB (`engine_schema`) and by
generating it in the source dialect, and streams results cast to the engine schema.

A concrete connector supplies `capabilities`, `table_columns`, `check` and the driver's
`_stream(sql, parameters, schema)`; optional strategy hooks: `_renders_node` (veto one node,
e.g. dynamically typed columns), `_conjunct_support` (INEXACT answers), `_physical_select`
(the SELECT as the source must receive it), `_collated_columns` + `binary_collation` (compare
collated text by bytes), `driver_errors` (reported as SourceUnavailable).
"""

from __future__ import annotations

import abc
import collections
import itertools
import json
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.schema import MappingSchema

from meshgate.errors import MeshgateError, SourceUnavailable
from meshgate.spi import (
    CANONICAL_DIALECT,
    Capabilities,
    Connector,
    ConnectorContext,
    FilterApplication,
    FilterSupport,
    JoinKind,
    LimitApplication,
    PushedQuery,
    ScanInput,
    SourceColumn,
    SourceIdentity,
    SourceTable,
)
from meshgate.spi.describe import engine_schema
from meshgate.types import wire_sql_type

# Node classes every SELECT a handle can hold is made of; never a capability of their own.
STRUCTURAL: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Select,
        exp.From,
        exp.Where,
        exp.Group,
        exp.Having,
        exp.Order,
        exp.Ordered,
        exp.Limit,
        exp.Offset,
        exp.Join,
        exp.Column,
        exp.Identifier,
        exp.Table,
        exp.TableAlias,
        exp.Alias,
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.DataType,
        exp.DataTypeParam,
        exp.Paren,
        exp.Star,
        exp.Distinct,
        exp.Var,
    }
)

COMPARISONS: frozenset[type[exp.Expr]] = frozenset(
    {exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between, exp.Is}
)
BOOLEAN_LOGIC: frozenset[type[exp.Expr]] = frozenset({exp.And, exp.Or, exp.Not})
# Null-safe comparisons and arithmetic every SQL source spells alike (division is typed later).
ARITHMETIC: frozenset[type[exp.Expr]] = frozenset(
    {exp.NullSafeEQ, exp.NullSafeNEQ, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg}
)

# What a DuckDB-dialect source (the engine's own dialect) evaluates exactly as the engine does.
CANONICAL_EXPRESSIONS: frozenset[type[exp.Expr]] = (
    COMPARISONS
    | BOOLEAN_LOGIC
    | ARITHMETIC
    | frozenset(
        {
            exp.IntDiv,
            exp.Like,
            exp.ILike,
            exp.Escape,
            exp.Case,
            exp.If,
            exp.Cast,
            exp.TryCast,
            exp.Coalesce,
            exp.Nullif,
            exp.Lower,
            exp.Upper,
            exp.Length,
            exp.Substring,
            exp.Trim,
            exp.Concat,
            exp.DPipe,
            exp.StartsWith,
            exp.Contains,
            exp.StrPosition,
            exp.Left,
            exp.Right,
            exp.Replace,
            exp.Abs,
            exp.Round,
            exp.Floor,
            exp.Ceil,
            exp.Sign,
            exp.Sqrt,
            exp.Greatest,
            exp.Least,
            exp.Extract,
            exp.Year,
            exp.Month,
            exp.Day,
            exp.DayOfWeek,
            exp.TimestampTrunc,
            exp.DateTrunc,
            exp.DateDiff,
            exp.Interval,
            exp.Subquery,
            exp.Exists,
            exp.Union,
            exp.Intersect,
            exp.Except,
        }
    )
)
CANONICAL_AGGREGATES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Count,
        exp.Sum,
        exp.Avg,
        exp.Min,
        exp.Max,
        exp.CountIf,
        exp.LogicalAnd,
        exp.LogicalOr,
        exp.Stddev,
        exp.StddevSamp,
        exp.StddevPop,
        exp.Variance,
        exp.VariancePop,
    }
)

# Nodes whose answer depends on how the source orders / equates text (its collation).
TEXT_ORDERING: tuple[type[exp.Expr], ...] = (
    exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.Min, exp.Max, exp.Greatest, exp.Least,
    exp.Ordered,
)  # fmt: skip
TEXT_EQUALITY: tuple[type[exp.Expr], ...] = (
    exp.EQ, exp.NEQ, exp.In, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Like, exp.ILike, exp.Group,
    exp.Distinct,
)  # fmt: skip
TEXT_VALUED: tuple[type[exp.Expr], ...] = (
    exp.Lower, exp.Upper, exp.Concat, exp.DPipe, exp.Substring, exp.Trim, exp.Left, exp.Right,
    exp.Replace,
)  # fmt: skip

_JOIN_SIDES: Mapping[JoinKind, str | None] = {
    JoinKind.INNER: None,
    JoinKind.CROSS: None,
    JoinKind.LEFT: "LEFT",
    JoinKind.RIGHT: "RIGHT",
    JoinKind.FULL: "FULL",
}

SENT_SQL_KEPT = 256


class SqlConnector(Connector):
    """A source spoken to in SQL; subclasses add the driver and their capability table."""

    # Exceptions of the driver that mean "the source failed", reported as SourceUnavailable.
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

    @property
    def identity(self) -> SourceIdentity:
        return self._identity

    # --- driver strategy ------------------------------------------------------------------
    @abc.abstractmethod
    def _stream(
        self, sql: str, parameters: Sequence[Any], schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        """Run `sql` and yield its batches, best as a generator whose `finally` cancels and
        releases the source's work: `execute` pulls the first batch at once (so errors surface
        there) and closes the iterator when the caller closes the reader."""

    def _collated_columns(self, table: SourceTable) -> frozenset[str]:
        """Text columns of `table` declared with a collation other than byte order."""
        return frozenset()

    def _physical_select(self, select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
        """The SELECT as this source must receive it (e.g. tables turned into file scans)."""
        return select

    def _renders_node(
        self, node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]
    ) -> bool:
        """A per-source veto on one node the capability table allows (dynamic typing etc.)."""
        return True

    def _conjunct_support(
        self, conjunct: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]
    ) -> FilterSupport:
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

    # --- capability check -----------------------------------------------------------------
    def can_render(self, expr: exp.Expr, inputs: Sequence[ScanInput] = ()) -> bool:
        """Whether every node of `expr` is declared pushable to this source."""
        capabilities = self.capabilities
        allowed = STRUCTURAL | capabilities.expressions | capabilities.aggregates
        nested_queries = exp.Subquery in capabilities.expressions
        types = column_types(inputs)
        for node in expr.walk():
            if isinstance(node, exp.Placeholder | exp.Parameter):
                return False
            if isinstance(node, exp.Query) and node is not expr and not nested_queries:
                return False
            if isinstance(node, exp.Anonymous):
                if node.name.lower() not in capabilities.functions:
                    return False
            elif type(node) not in allowed and not _declared_function(node, capabilities.functions):
                return False
            if not self._renders_node(node, types) or not self._text_agrees(node, types):
                return False
        return True

    def _text_agrees(
        self, node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]
    ) -> bool:
        """Whether the source's collation gives `node` the engine's answer (or, for equality
        in a WHERE, a superset the engine can filter again)."""
        capabilities = self.capabilities
        if isinstance(node, exp.Ordered) and not capabilities.text_ordering_matches_engine:
            return not _is_text(_ordered_key(node), column_types)
        if isinstance(node, TEXT_ORDERING) and not capabilities.text_ordering_matches_engine:
            return not has_text_operand(node, column_types)
        if isinstance(node, TEXT_EQUALITY) and not capabilities.text_equality_matches_engine:
            return not has_text_operand(node, column_types) or (
                on_filter_path(node) and not node.args.get("negate")
            )
        return True

    # --- negotiation ----------------------------------------------------------------------
    def scan(self, table: SourceTable, alias: str, columns: Sequence[SourceColumn]) -> PushedQuery:
        inputs = (ScanInput(alias=alias, table=table, columns=tuple(columns)),)
        select = exp.Select(
            expressions=[exp.alias_(exp.column(c.name, table=alias), c.name) for c in columns]
        ).from_(physical_table(table, alias))
        return PushedQuery(select=select, schema=engine_schema(select, inputs), inputs=inputs)

    def apply_filter(
        self, handle: PushedQuery, conjuncts: Sequence[exp.Expr]
    ) -> FilterApplication | None:
        if not _is_row_level(handle.select):
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
        if handle.has_aggregate or _is_distinct(handle.select) or not projections:
            return None
        named = _named(projections)
        if named is None or not all(self.can_render(p, handle.inputs) for p in named):
            return None
        select = handle.select.copy()
        select.set("expressions", named)
        return self._accept(select, handle)

    def apply_limit(self, handle: PushedQuery, limit: int) -> LimitApplication | None:
        if not self.capabilities.supports_limit or handle.has_inexact_filter or limit < 0:
            return None
        current = _limit_of(handle.select)
        if current is not None and current <= limit:
            return None
        select = handle.select.copy()
        select.set("limit", exp.Limit(expression=exp.Literal.number(limit)))
        candidate = self._accept(select, handle, has_limit=True)
        return None if candidate is None else LimitApplication(candidate, limit_guaranteed=True)

    def apply_topn(
        self, handle: PushedQuery, order_by: Sequence[exp.Ordered], limit: int
    ) -> PushedQuery | None:
        if (
            not self.capabilities.supports_topn
            or handle.has_inexact_filter
            or handle.has_limit
            or handle.select.args.get("order")
            or not order_by
            or limit < 0
        ):
            return None
        keys = [_explicit_nulls(key) for key in order_by]
        if not all(self.can_render(key, handle.inputs) for key in keys):
            return None
        if not self.capabilities.text_ordering_matches_engine and self._orders_text(handle, keys):
            return None
        select = handle.select.copy()
        select.set("order", exp.Order(expressions=keys))
        select.set("limit", exp.Limit(expression=exp.Literal.number(limit)))
        return self._accept(select, handle, has_limit=True)

    def apply_aggregation(
        self, handle: PushedQuery, group_by: Sequence[exp.Expr], aggregates: Sequence[exp.Expr]
    ) -> PushedQuery | None:
        if (
            not _is_row_level(handle.select)
            or handle.has_inexact_filter
            or _is_distinct(handle.select)
        ):
            return None
        keys = _named(group_by)
        measures = _named(aggregates)
        if keys is None or measures is None or not (keys or measures):
            return None
        for measure in measures:
            function = measure.this if isinstance(measure, exp.Alias) else measure
            if type(function) not in self.capabilities.aggregates:
                return None
        if not all(self.can_render(e, handle.inputs) for e in [*keys, *measures]):
            return None
        select = handle.select.copy()
        select.set("expressions", [*keys, *measures])
        if keys:
            select.set("group", exp.Group(expressions=[k.this.copy() for k in keys]))
        return self._accept(select, handle, has_aggregate=True)

    def apply_join(
        self, left: PushedQuery, right: PushedQuery, kind: JoinKind, condition: exp.Expr | None
    ) -> PushedQuery | None:
        if kind not in self.capabilities.join_kinds:
            return None
        if (kind is JoinKind.CROSS) != (condition is None):
            return None
        for part in (left, right):
            if (
                not _is_row_level(part.select)
                or part.has_inexact_filter
                or _is_distinct(part.select)
            ):
                return None
        if {i.alias for i in left.inputs} & {i.alias for i in right.inputs}:
            return None
        right_from = _single_table(right.select)
        if right_from is None:
            return None
        if kind in (JoinKind.RIGHT, JoinKind.FULL) and _single_table(left.select) is None:
            return None
        inputs = (*left.inputs, *right.inputs)
        condition = condition.copy() if condition is not None else None
        if condition is not None and not self.can_render(condition, inputs):
            return None
        left_where = _where_of(left.select)
        right_where = _where_of(right.select)
        on = condition.copy() if condition is not None else None
        where: list[exp.Expr] = []
        if kind in (JoinKind.INNER, JoinKind.CROSS):
            where = [w for w in (left_where, right_where) if w is not None]
        elif kind is JoinKind.LEFT:
            # Rows of the preserved side are filtered in WHERE, the other side's filter moves
            # into ON so unmatched rows still come back null-extended.
            where = [left_where] if left_where is not None else []
            on = exp.and_(on, right_where) if right_where is not None else on
        elif kind is JoinKind.RIGHT:
            where = [right_where] if right_where is not None else []
            on = exp.and_(on, left_where) if left_where is not None else on
        elif left_where is not None or right_where is not None:
            return None
        names = [e.alias_or_name for e in [*left.select.expressions, *right.select.expressions]]
        if len(set(names)) != len(names):
            return None
        select = left.select.copy()
        select.set("where", None)
        select.set(
            "expressions",
            [
                *(e.copy() for e in left.select.expressions),
                *(e.copy() for e in right.select.expressions),
            ],
        )
        join = exp.Join(this=right_from.copy())
        side = _JOIN_SIDES[kind]
        if side is not None:
            join.set("side", side)
        if kind is JoinKind.CROSS:
            join.set("kind", "CROSS")
        else:
            join.set("on", on)
        select.append("joins", join)
        if where:
            select.where(*where, copy=False)
        return self._accept(select, PushedQuery(select=select, schema=left.schema, inputs=inputs))

    def apply_query(self, query: exp.Query, schema: pa.Schema) -> PushedQuery | None:
        if not isinstance(query, exp.Select) or query.find(exp.With) is not None:
            return None
        select = query.copy()
        inputs: list[ScanInput] = []
        for table in select.find_all(exp.Table):
            if not table.name or isinstance(table.this, exp.Func):
                return None
            alias = table.alias_or_name
            source_table = SourceTable(schema=table.db or None, name=table.name)
            same_alias = [i for i in inputs if i.alias == alias]
            if same_alias:
                # The alias is reused in another scope: fine when it names the same table.
                if same_alias[0].table != source_table:
                    return None
                continue
            try:
                columns = self._cached_columns(source_table)
            except MeshgateError:
                return None
            if not table.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
            inputs.append(ScanInput(alias=alias, table=source_table, columns=tuple(columns)))
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
        probe = PushedQuery(select=select, schema=schema, inputs=tuple(inputs))
        candidate = self._accept(
            select, probe, has_limit=_limit_of(select) is not None, has_aggregate=has_aggregate
        )
        if candidate is None or len(candidate.schema) != len(schema):
            return None
        return replace(candidate, schema=schema)

    def estimate_rows(self, handle: PushedQuery) -> int | None:
        try:
            return self._estimate(self.render(handle))
        except Exception:
            return None

    def _estimate(self, sql: str) -> int | None:
        """Strategy hook: ask the source's planner how many rows `sql` returns."""
        return None

    # --- execution ------------------------------------------------------------------------
    def render(self, handle: PushedQuery) -> str:
        select = self._binary_text(handle.select, handle.inputs)
        select = self._physical_select(select, handle.inputs)
        dialect = self.capabilities.dialect
        if dialect != CANONICAL_DIALECT:
            select = _typed(select, handle.inputs)
        return select.sql(
            dialect=dialect, identify=True, comments=False, unsupported_level=ErrorLevel.RAISE
        )

    def execute(self, handle: PushedQuery, parameters: Sequence[Any] = ()) -> pa.RecordBatchReader:
        sql = self.render(handle)
        self.sent_sql.append(sql)
        batches = self._stream(sql, list(parameters), handle.schema)
        try:
            # The first batch starts the source query: connection and SQL errors surface here,
            # as SourceUnavailable, instead of as Arrow errors on the first read.
            first = next(batches, None)
        except self.driver_errors as error:
            _close(batches)
            raise self._failed(error) from error
        except BaseException:
            _close(batches)
            raise
        inner = pa.RecordBatchReader.from_batches(
            handle.schema, self._cast_batches(first, batches, handle.schema)
        )
        # Re-importing through the C stream makes close() release the generator at once, so
        # the driver's `finally` cancels the source query instead of waiting for GC.
        return pa.RecordBatchReader.from_stream(inner)

    # --- internals ------------------------------------------------------------------------
    def _cast_batches(
        self,
        first: pa.RecordBatch | None,
        rest: Iterator[pa.RecordBatch],
        schema: pa.Schema,
    ) -> Iterator[pa.RecordBatch]:
        try:
            if first is None:
                return
            for produced in itertools.chain([first], rest):
                batch = produced
                if batch.schema.names != schema.names:
                    batch = batch.rename_columns(schema.names)
                yield batch if batch.schema == schema else batch.cast(schema)
        except self.driver_errors as error:
            raise self._failed(error) from error
        finally:
            _close(rest)

    def _failed(self, error: BaseException) -> SourceUnavailable:
        return SourceUnavailable(
            f"source {self.context.name!r} ({self.kind}) failed while answering a query "
            f"({type(error).__name__}: {error}); check that the source is reachable and still "
            "has the configured tables and columns"
        )

    def _binary_text(self, select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
        """`select` with every reference to a collated text column compared by bytes.

        e.g. `WHERE t.name = 'Apple'` -> `WHERE t.name COLLATE binary = 'Apple'` (SQLite).
        """
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
        collation = exp.Var(this=self.binary_collation)
        every = column_types(inputs)

        def compare_bytes(node: exp.Expr) -> exp.Expr:
            if not isinstance(node, exp.Column) or isinstance(node.parent, exp.Collate):
                return node
            if column_type(node, every) is None or column_type(node, collated) is None:
                return node
            return exp.Collate(this=node.copy(), expression=collation.copy())

        rewritten = select.transform(compare_bytes, copy=True)
        assert isinstance(rewritten, exp.Select)
        return rewritten

    def table_columns_cached(self, table: SourceTable) -> list[SourceColumn]:
        """`table_columns`, remembered for the life of the connector (sources' schemas are
        fixed while a deployment runs; `meshgate check` reports drift)."""
        return self._cached_columns(table)

    def _cached_columns(self, table: SourceTable) -> list[SourceColumn]:
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
    ) -> PushedQuery | None:
        """The handle for `select`, or None when DuckDB cannot bind it or the dialect cannot
        say it: both mean the engine keeps that work."""
        if not self.can_render(select, base.inputs):
            return None
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

    def _orders_text(self, handle: PushedQuery, keys: Sequence[exp.Ordered]) -> bool:
        probe = handle.select.copy()
        probe.set("expressions", [exp.alias_(k.this.copy(), f"k{i}") for i, k in enumerate(keys)])
        try:
            types = engine_schema(probe, handle.inputs).types
        except duckdb.Error:
            return True
        return any(pa.types.is_string(t) or pa.types.is_binary(t) for t in types)


def _close(batches: Iterator[pa.RecordBatch]) -> None:
    """Stop a driver's batch iterator now (generators run their `finally`)."""
    close = getattr(batches, "close", None)
    if callable(close):
        close()


def on_filter_path(node: exp.Expr) -> bool:
    """Whether a superset answer for `node` only widens a WHERE (reached through AND / OR /
    parentheses only, no NOT, CASE or value use); a bare conjunct counts as a WHERE."""
    parent = node.parent
    while isinstance(parent, exp.And | exp.Or | exp.Paren):
        parent = parent.parent
    return parent is None or isinstance(parent, exp.Where)


def has_text_operand(node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]) -> bool:
    """Whether a comparison, aggregate or grouping `node` compares text values."""
    operands: list[exp.Expr] = [
        node.args[key] for key in ("this", "expression", "low", "high") if node.args.get(key)
    ]
    operands += [e for e in node.args.get("expressions") or [] if isinstance(e, exp.Expr)]
    return any(_is_text(operand, column_types) for operand in operands)


def _is_text(node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]) -> bool:
    if isinstance(node, exp.Paren | exp.Distinct | exp.Coalesce):
        return has_text_operand(node, column_types)
    if isinstance(node, exp.Literal):
        return bool(node.is_string)
    if isinstance(node, exp.Column):
        found = column_type(node, column_types)
        return found is not None and bool(pa.types.is_string(found))
    if isinstance(node, exp.Cast):
        return node.to.is_type(*exp.DataType.TEXT_TYPES)
    return isinstance(node, TEXT_VALUED)


def _ordered_key(node: exp.Ordered) -> exp.Expr:
    """An ORDER BY key, with a reference to an output column replaced by its expression."""
    key: exp.Expr = node.this
    select = node.find_ancestor(exp.Select)
    if isinstance(key, exp.Column) and not key.table and select is not None:
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and projection.alias == key.name:
                aliased: exp.Expr = projection.this
                return aliased
    return key


def column_type(
    column: exp.Column, column_types: Mapping[tuple[str, str], pa.DataType]
) -> pa.DataType | None:
    """The input type of a column reference; unqualified names only when unambiguous."""
    if column.table:
        return column_types.get((column.table, column.name))
    matches = [found for (_, name), found in column_types.items() if name == column.name]
    return matches[0] if len(matches) == 1 else None


def collated_text_columns(ddl: str, dialect: str, byte_order: Sequence[str]) -> frozenset[str]:
    """Columns a CREATE TABLE statement declares with a collation not in `byte_order`."""
    try:
        statement = sqlglot.parse_one(ddl, read=dialect)
    except SqlglotError:
        return frozenset()
    accepted = {name.lower() for name in byte_order}
    found: set[str] = set()
    for definition in statement.find_all(exp.ColumnDef):
        for constraint in definition.args.get("constraints") or []:
            kind = constraint.args.get("kind")
            if isinstance(kind, exp.CollateColumnConstraint) and kind.name.lower() not in accepted:
                found.add(definition.name)
    return frozenset(found)


def physical_table(table: SourceTable, alias: str) -> exp.Table:
    """`schema.table AS alias` as an exp.Table node."""
    return exp.Table(
        this=exp.to_identifier(table.name),
        db=exp.to_identifier(table.schema) if table.schema else None,
        alias=exp.TableAlias(this=exp.to_identifier(alias)),
    )


def column_types(inputs: Sequence[ScanInput]) -> dict[tuple[str, str], pa.DataType]:
    """(alias, column) -> Arrow type of every column the inputs expose."""
    return {(i.alias, c.name): c.type for i in inputs for c in i.columns}


def _declared_function(node: exp.Expr, functions: frozenset[str]) -> bool:
    return isinstance(node, exp.Func) and node.sql_name().lower() in functions


def _is_row_level(select: exp.Select) -> bool:
    """No LIMIT, grouping, DISTINCT or window: a WHERE added now filters the same rows."""
    clauses = ("limit", "offset", "group", "having", "distinct", "order")
    return not any(select.args.get(k) for k in clauses) and not any(
        e.find(exp.AggFunc, exp.Window) for e in select.expressions
    )


def _is_distinct(select: exp.Select) -> bool:
    return bool(select.args.get("distinct"))


def _named(expressions: Sequence[exp.Expr]) -> list[exp.Expr] | None:
    """Each expression as `expr AS name` (a bare column keeps its name); None if unnamed or
    two outputs would share a name."""
    named: list[exp.Expr] = []
    for expression in expressions:
        if isinstance(expression, exp.Alias):
            named.append(expression.copy())
        elif isinstance(expression, exp.Column):
            named.append(exp.alias_(expression.copy(), expression.name))
        else:
            return None
    names = [n.alias for n in named]
    return named if len(set(names)) == len(names) else None


def _limit_of(select: exp.Select) -> int | None:
    limit = select.args.get("limit")
    if not isinstance(limit, exp.Limit):
        return None
    value = limit.expression
    return int(value.this) if isinstance(value, exp.Literal) and not value.is_string else None


def _where_of(select: exp.Select) -> exp.Expr | None:
    where = select.args.get("where")
    return where.this.copy() if isinstance(where, exp.Where) else None


def _single_table(select: exp.Select) -> exp.Table | None:
    source = select.args.get("from_") or select.args.get("from")
    if select.args.get("joins") or not isinstance(source, exp.From):
        return None
    return source.this if isinstance(source.this, exp.Table) else None


def _explicit_nulls(key: exp.Ordered) -> exp.Ordered:
    """DuckDB sorts NULLs last in both directions unless told otherwise; say so explicitly so
    sources with another default order them the same way."""
    ordered = key.copy()
    ordered.set("nulls_first", bool(key.args.get("nulls_first")))
    return ordered


def _typed(select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
    """Annotate types before generating for another dialect (integer division, casts)."""
    mapping: dict[str, Any] = {}
    for item in inputs:
        columns = {c.name: wire_sql_type(c.type).sql(CANONICAL_DIALECT) for c in item.columns}
        if item.table.schema:
            mapping.setdefault(item.table.schema, {})[item.table.name] = columns
        else:
            mapping[item.table.name] = columns
    try:
        schema = MappingSchema(mapping, dialect=CANONICAL_DIALECT)
    except SqlglotError:
        schema = None
    typed = annotate_types(select.copy(), schema=schema, dialect=CANONICAL_DIALECT)
    assert isinstance(typed, exp.Select)
    return typed


__all__ = [
    "BOOLEAN_LOGIC",
    "CANONICAL_AGGREGATES",
    "CANONICAL_EXPRESSIONS",
    "COMPARISONS",
    "STRUCTURAL",
    "TEXT_EQUALITY",
    "TEXT_ORDERING",
    "TEXT_VALUED",
    "SqlConnector",
    "collated_text_columns",
    "column_type",
    "column_types",
    "has_text_operand",
    "on_filter_path",
    "physical_table",
]



# A source that runs on DuckDB itself evaluates everything exactly as the merge does.
ENGINE_CAPABILITIES = Capabilities(
    dialect=CANONICAL_DIALECT,
    expressions=CANONICAL_EXPRESSIONS,
    aggregates=CANONICAL_AGGREGATES,
    join_kinds=frozenset(JoinKind),
    text_ordering_matches_engine=True,
    text_equality_matches_engine=True,
)


class DuckDBBackedConnector(SqlConnector):
    """A source read through an in-process DuckDB (a database file, Parquet/CSV files).

    Subclasses provide `_cursor()`: a fresh cursor on their own connection, so every fragment
    can be interrupted on its own.
    """

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        self._streams_lock = threading.Lock()
        self._open_streams = 0

    @abc.abstractmethod
    def _cursor(self) -> duckdb.DuckDBPyConnection: ...

    @property
    def open_streams(self) -> int:
        """Results being read right now, each holding a cursor until its reader closes."""
        return self._open_streams

    def _stream(
        self, sql: str, parameters: Sequence[Any], schema: pa.Schema
    ) -> Generator[pa.RecordBatch, None, None]:
        cursor = self._cursor()
        self._count_stream(+1)
        try:
            yield from cursor.execute(sql, list(parameters)).to_arrow_reader(self.batch_rows)
        finally:
            cursor.interrupt()
            cursor.close()
            self._count_stream(-1)

    def _count_stream(self, change: int) -> None:
        with self._streams_lock:
            self._open_streams += change

    def _estimate(self, sql: str) -> int | None:
        """DuckDB's estimated cardinality of the plan's root, from `EXPLAIN (FORMAT JSON)`."""
        cursor = self._cursor()
        try:
            rows = cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchall()
        finally:
            cursor.close()
        plan = json.loads(rows[0][1])
        value = str(plan[0].get("extra_info", {}).get("Estimated Cardinality", ""))
        digits = "".join(ch for ch in value if ch.isdigit())
        return int(digits) if digits else None
