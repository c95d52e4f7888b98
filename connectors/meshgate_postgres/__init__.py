"""PostgreSQL as a meshgate source, over the ADBC PostgreSQL driver (binary COPY to Arrow).

Options: `dsn` (a libpq URI or key=value string; put the password in `${ENV}`), `pool_size`
(connections kept per source instance, default 4), `connect_timeout_seconds` (default 10:
how long opening a connection may take before the source counts as unavailable; a
`connect_timeout` in the dsn wins) and `partitions` (plain scans of large tables read in up to
that many ctid ranges at once under one snapshot; default `pool_size - 1`, at most
4, so that one connection stays for other queries, and then a filtered scan only if PostgreSQL
estimates at least 100,000 rows of it; set explicitly, every filtered plain scan is split; 1
turns it off; measured in
benchmarks/README.md). A result asked for in several endpoints is split into page ranges on
one exported snapshot (slices.py), at most `pool_size // 2` such snapshots held at once.
`reader` (`duckdb`, the default: rows of plain types are decoded by DuckDB's postgres
extension, bulk.py, at about half the driver's CPU, ranges of a split scan too, except a
statement that returned few rows last time, read_sizes.py; `adbc`: every statement through the
driver).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, ClassVar

import adbc_driver_manager
import pyarrow as pa
from sqlglot import exp

from meshgate.errors import ConfigError, SourceUnavailable, StatementOutdated
from meshgate.spi import (
    CancelToken,
    Capabilities,
    ColumnStatistics,
    ConnectorContext,
    PlanCost,
    PoolUsage,
    PushedQuery,
    QueryContext,
    ScanInput,
    SourceColumn,
    SourceTable,
    TableStatistics,
)
from meshgate.sqlconnector import SqlConnector, ValueFailure, column_types, is_row_level

from .bulk import BulkReader, plain_types, reader_dsn
from .capabilities import BYTEWISE_COLLATIONS, CAPABILITIES, renders_exactly
from .failures import value_failure
from .partitions import (
    MIN_PAGES_PER_PARTITION,
    default_partitions,
    is_plain_scan,
    stream_partitions,
    within_pages,
)
from .pool import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_POOL_SIZE,
    ConnectionPool,
    connection_survives,
    describe_dsn,
    unavailable,
)
from .read_sizes import ReadSizes
from .slices import PageSlice, SnapshotLeases, stream_slice
from .stream import stream_batches
from .typemap import BoundaryCast, arrow_type_of, is_native, sql_cast_for, travels_scaled

_COLUMNS_SQL = """
SELECT a.attname,
       COALESCE(base.typname, t.typname),
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       elem.typname,
       NOT a.attnotnull,
       a.attcollation = 100,
       COALESCE(co.collprovider = 'c' AND lower(co.collcollate) IN ('c', 'posix', 'c.utf8',
                'c.utf-8') AND co.collisdeterministic, a.attcollation = 0)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type base ON t.typtype = 'd' AND base.oid = t.typbasetype
LEFT JOIN pg_catalog.pg_type elem
       ON elem.oid = COALESCE(base.typelem, t.typelem) AND COALESCE(base.typcategory,
          t.typcategory) = 'A'
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
WHERE n.nspname = COALESCE($1, current_schema()) AND c.relname = $2
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_COLLATION_SQL = """
SELECT datcollate FROM pg_catalog.pg_database WHERE datname = current_database()
"""


# reltuples is -1 before the first VACUUM / ANALYZE; pg_stats holds what ANALYZE sampled.
_STATISTICS_SQL = """
SELECT c.reltuples, s.attname, s.null_frac, s.n_distinct, s.histogram_bounds::text,
       s.most_common_vals::text
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
     AND s.inherited = (c.relkind = 'p')
WHERE n.nspname = COALESCE($1, current_schema()) AND c.relname = $2
  AND c.relkind IN ('r', 'm', 'p')
"""


# By default a filtered plain scan is split only if PostgreSQL estimates this many rows of it.
MIN_FILTERED_ROWS_TO_SPLIT = 100_000
PAGES_TTL_SECONDS = 60.0  # how long a table's page count is trusted for splitting its scans
_PAGES_SQL = """
SELECT c.relpages,
       (pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::int)::int8
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = COALESCE($1, current_schema()) AND c.relname = $2 AND c.relkind IN ('r', 'm')
"""


@dataclass(frozen=True)
class _ParallelPlan:
    parts: int
    pages: int
    render: Callable[[int | None, int | None], str]


@dataclass(frozen=True)
class _PhysicalColumns:
    """What the SQL sent for a table must adjust: columns read as text, columns re-collated;
    and its blank-padded CHAR(n) columns, which only the ADBC driver returns padded as
    PostgreSQL sends them (DuckDB's reader trims them)."""

    as_text: frozenset[str]
    recollate: frozenset[str]
    padded: frozenset[str] = frozenset()


class PostgresConnector(SqlConnector):
    """One PostgreSQL database (one `dsn`); thread-safe, with its own connection pool.

    Text is compared and ordered as DuckDB does (by bytes): columns whose collation is not
    bytewise (the database default such as en_US.UTF-8, ICU or case-insensitive collations)
    are referenced as `col COLLATE "C"` in pushed SQL, so ORDER BY, MIN/MAX, ranges and
    equality on text can all be pushed. The price: an index built for another collation does
    not serve those predicates.
    """

    kind = "postgres"
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (adbc_driver_manager.Error,)

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        dsn = context.options.get("dsn")
        if not isinstance(dsn, str) or not dsn:
            raise ConfigError(
                f"source {context.name!r} (postgres) needs the option `dsn`, e.g. "
                "postgresql://user:${PGPASSWORD}@host:5432/database"
            )
        pool_size = _positive_int(context, "pool_size", DEFAULT_POOL_SIZE)
        self.pool = ConnectionPool(
            dsn,
            pool_size,
            label=f"source {context.name!r} (postgres)",
            source=context.name,
            connect_timeout=_positive_int(context, "connect_timeout_seconds",
                                          DEFAULT_CONNECT_TIMEOUT_SECONDS),
        )
        self.partitions = _positive_int(context, "partitions", default_partitions(pool_size))
        # By default only unfiltered scans are split: a filtered one may be a point lookup,
        # which must not cost a catalog query, three connections and a snapshot export.
        self._split_filtered = "partitions" in context.options
        # table -> (read at, relpages as of the last ANALYZE, pages of its file now)
        self._pages: dict[SourceTable, tuple[float, int, int]] = {}
        self._state_lock = threading.Lock()
        self._bytewise: bool | None = None
        self._physical: dict[SourceTable, _PhysicalColumns] = {}
        # What execute() hands to _stream() on the same thread: the parallel plan, if any,
        # and which result columns travel as unscaled BIGINTs.
        self._pending = threading.local()
        self._leases = SnapshotLeases(self.pool, most=pool_size // 2)
        self._bulk = self._bulk_reader(context, dsn, pool_size)
        self._read_sizes = ReadSizes()

    # --- metadata -------------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def check(self) -> None:
        """Connect, and learn whether the database's default collation is bytewise."""
        with self._state_lock:
            self._bytewise = None
        self._default_collation_is_bytewise()

    def table_columns(self, table: SourceTable) -> list[SourceColumn]:
        rows = self._metadata(_COLUMNS_SQL, (table.schema, table.name))
        if not rows:
            raise SourceUnavailable(
                "a PostgreSQL source has no table a product is configured to read; check the "
                "product's table and schema names in the configuration and that meshgate's "
                "role may read it",
                detail=f"{self.pool.label} at {describe_dsn(self.pool.dsn)}: no table "
                f"{table.qualified()!r}",
                source=self.pool.source,
            )
        default_bytewise = self._default_collation_is_bytewise()
        columns: list[SourceColumn] = []
        as_text: set[str] = set()
        recollate: set[str] = set()
        padded: set[str] = set()
        for name, typname, typmod, element, nullable, uses_default, bytewise in rows:
            arrow = arrow_type_of(typname, typmod, element)
            columns.append(SourceColumn(name, arrow, nullable))
            if (element or typname) in ("bpchar", "char"):
                padded.add(name)
            if not is_native(typname, element):
                as_text.add(name)
            elif pa.types.is_string(arrow) and not (
                default_bytewise if uses_default else bytewise
            ):
                recollate.add(name)
        with self._state_lock:
            self._physical[table] = _PhysicalColumns(frozenset(as_text), frozenset(recollate),
                                                     frozenset(padded))  # fmt: skip
        return columns

    # --- SqlConnector hooks ---------------------------------------------------------------
    def _renders_node(
        self, node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]
    ) -> bool:
        return renders_exactly(node, column_types)

    def _physical_select(self, select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
        """The SELECT PostgreSQL receives: parameters as `$n` (bound by the driver, never
        spliced), text columns compared bytewise, columns without an exact Arrow type (inet,
        money, ranges) as their text."""
        as_text: set[tuple[str, str]] = set()
        recollate: set[tuple[str, str]] = set()
        for item in inputs:
            physical = self._physical_columns(item.table)
            as_text.update((item.alias, name) for name in physical.as_text)
            recollate.update((item.alias, name) for name in physical.recollate)

        def rewrite(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column):
                key = (node.table, node.name)
                if key in as_text:
                    return exp.Collate(
                        this=exp.cast(node.copy(), exp.DataType.build("TEXT")),
                        expression=exp.to_identifier("C", quoted=True),
                    )
                if key in recollate:
                    return exp.Collate(
                        this=node.copy(), expression=exp.to_identifier("C", quoted=True)
                    )
            return node

        transformed = select.transform(rewrite, copy=True)
        assert isinstance(transformed, exp.Select)
        return transformed

    def restrict_to_keys(
        self, handle: PushedQuery, column: exp.Column, keys: pa.Array
    ) -> PushedQuery | None:
        """`column = ANY('{k1,k2,...}'::bigint[])`: one array literal, however many keys, which
        PostgreSQL looks up through the column's index (or hashes, without one). Integer key
        columns only: a bigint array meets any integer column exactly."""
        types = column_types(handle.inputs)
        if (
            not is_row_level(handle.select)
            or not pa.types.is_integer(keys.type)
            or not pa.types.is_integer(types.get((column.table, column.name), pa.null()))
            or len(keys) == 0
        ):
            return None
        listed = "{" + ",".join(map(str, keys.to_pylist())) + "}"
        keyed = exp.Cast(this=exp.Literal.string(listed), to=exp.DataType.build("BIGINT[]"))
        condition = exp.EQ(this=column.copy(), expression=exp.Any(this=exp.Paren(this=keyed)))
        return replace(handle, select=handle.select.copy().where(condition, copy=False))

    def _parameter_marker(self, number: int) -> exp.Expr:
        return exp.Parameter(this=exp.Literal.number(number))

    def _bind_value(self, value: Any) -> Any:
        # The driver binds Python decimals poorly; the planned CAST reads exact text.
        return str(value) if isinstance(value, decimal.Decimal) else value

    def _render(self, handle: PushedQuery) -> str:
        """The pushed SELECT, with decimal outputs sent exactly at the planned scale: as
        unscaled BIGINTs up to 18 digits, as text beyond.

        PostgreSQL rounds to the planned scale (as DuckDB's cast would) and raises on
        overflow; see typemap.py for why neither uses the driver's own NUMERIC decoding.
        """
        select, _ = physical_decimals(handle)
        return super()._render(replace(handle, select=select))

    def execute(
        self, handle: PushedQuery, context: QueryContext | None = None
    ) -> pa.RecordBatchReader:
        """Stream the handle; plain scans of large tables in parallel ranges if configured;
        one part of a split result (`share_scan`) if the context names one of ours."""
        part = self._slice_of(handle, context)
        self._pending.plan = None if part is not None else self._parallel_plan(handle)
        self._pending.scaled = scaled_decimals(handle)
        self._pending.slice = part
        self._pending.bulk = not any(self._physical_columns(i.table).padded for i in handle.inputs)
        try:
            if part is None:
                return super().execute(handle, context)
            ranged = within_pages(handle, part.low, part.high)
            return super().execute(replace(handle, select=ranged), context)
        finally:
            self._pending.plan = None
            self._pending.scaled = frozenset()
            self._pending.slice = None
            self._pending.bulk = False

    def share_scan(self, handle: PushedQuery, parts: int,
                   hold_seconds: float) -> tuple[str, ...] | None:
        """Page ranges of a plain scan on one exported snapshot (slices.py)."""
        if parts < 2 or not is_plain_scan(handle):
            return None
        table = handle.inputs[0].table
        slices = self._leases.slices(table, self._table_pages(table, current=True), parts,
                                     hold_seconds)  # fmt: skip
        return None if slices is None else tuple(part.token() for part in slices)

    def _slice_of(self, handle: PushedQuery, context: QueryContext | None) -> PageSlice | None:
        """The part of a split result this run reads, if any; refused if the handle is not
        the plain scan of the table the part was cut from (the plan changed since)."""
        if context is None or context.slice is None or context.slice.source != self.context.name:
            return None
        part = PageSlice.parse(context.slice.token)
        if part is None or not is_plain_scan(handle) or handle.inputs[0].table != part.table:
            raise StatementOutdated(
                "this part of a result split into several endpoints no longer matches the "
                "query's plan (the configuration changed); run the query again"
            )
        return part

    def _stream(
        self, sql: str, parameters: Sequence[Any], schema: pa.Schema, cancel: CancelToken
    ) -> Iterator[pa.RecordBatch]:
        plan: _ParallelPlan | None = getattr(self._pending, "plan", None)
        part: PageSlice | None = getattr(self._pending, "slice", None)
        cast = BoundaryCast(schema, getattr(self._pending, "scaled", frozenset()))
        bulk = bool(getattr(self._pending, "bulk", True))
        self._pending.plan = self._pending.slice = None
        if part is not None:
            return stream_slice(self.pool, self._leases, part, sql, parameters, cast,
                                self.batch_rows, cancel)  # fmt: skip

        def through_adbc() -> Iterator[pa.RecordBatch]:
            if plan is None:
                return stream_batches(self.pool, sql, parameters, cast, self.batch_rows,
                                      cancel)  # fmt: skip
            return stream_partitions(self.pool, plan.parts, plan.pages, plan.render,
                                     parameters, cast, self.batch_rows, cancel)  # fmt: skip

        if self._bulk is not None and bulk and not parameters and plain_types(schema):
            if plan is not None:
                return self._bulk.stream_ranges(plan.pages, plan.parts, plan.render, cast,
                                                self.batch_rows, cancel, through_adbc)  # fmt: skip
            if self._read_sizes.small(sql):  # read_sizes.py: the driver answers it sooner
                return self._read_sizes.counted(sql, through_adbc())
            return self._read_sizes.counted(
                sql, self._bulk.stream(sql, cast, self.batch_rows, cancel, through_adbc))
        return through_adbc()

    def pool_usage(self) -> PoolUsage:
        """Connections held by reads: the pool's, and those of DuckDB's reader (bulk.py)."""
        reading = 0 if self._bulk is None else self._bulk.open_reads
        return PoolUsage(in_use=self.pool.borrowed + reading, idle=self.pool.idle)

    def close(self) -> None:
        if self._bulk is not None:
            self._bulk.close()
        self._leases.close()
        self.pool.close()

    # --- internals ------------------------------------------------------------------------
    def _bulk_reader(self, context: ConnectorContext, dsn: str,
                     pool_size: int) -> BulkReader | None:  # fmt: skip
        """The DuckDB reader of rows (bulk.py) if the option `reader: duckdb` asks for it
        and the dsn does not set libpq `options` itself."""
        reader = context.options.get("reader", "duckdb")
        if reader not in ("duckdb", "adbc"):
            raise ConfigError(
                f"source {context.name!r} (postgres): option `reader` is {reader!r}; use "
                "`duckdb` (rows decoded by DuckDB's postgres extension, the default) or `adbc` "
                "(by the ADBC driver)"
            )
        timeout = _positive_int(context, "connect_timeout_seconds",
                                DEFAULT_CONNECT_TIMEOUT_SECONDS)  # fmt: skip
        target = reader_dsn(dsn, timeout) if reader == "duckdb" else None
        return None if target is None else BulkReader(self.pool, target, pool_size)

    def _parallel_plan(self, handle: PushedQuery) -> _ParallelPlan | None:
        """Ranges for a plain scan of a table big enough to split, else None."""
        if self.partitions < 2 or not is_plain_scan(handle):
            return None
        pages = self._table_pages(handle.inputs[0].table)
        parts = min(self.partitions, pages // MIN_PAGES_PER_PARTITION)
        if parts < 2:
            return None
        # A read filtered anywhere (a policy's row filter sits in a subquery) may be a point
        # lookup, which must keep to one connection and its index: by default it is split only
        # when PostgreSQL expects many rows of it, and never asked with bound parameters.
        if not self._split_filtered and any(
            s.args.get("where") is not None for s in handle.select.find_all(exp.Select)
        ):
            if handle.select.find(exp.Placeholder) is not None:
                return None
            expected = self.estimate_rows(handle)
            if expected is None or expected < MIN_FILTERED_ROWS_TO_SPLIT:
                return None

        def render(low: int | None, high: int | None) -> str:
            if low is None:
                sql = self.render(handle)
            else:
                ranged = within_pages(handle, low, high)
                sql = self.render(replace(handle, select=ranged))
            self.sent_sql.append(sql)
            return sql

        return _ParallelPlan(parts, pages, render)

    def _table_pages(self, table: SourceTable, *, current: bool = False) -> int:
        """The table's pages as of at most PAGES_TTL_SECONDS ago: `relpages` (0 before the
        first ANALYZE, so a table without statistics is read on one connection), or with
        `current` the size of its file (a split result's ranges, which should be balanced
        right away). Only the ranges' balance depends on it (the last range is open-ended),
        not which rows are read."""
        now = time.monotonic()
        with self._state_lock:
            known = self._pages.get(table)
        if known is None or now - known[0] >= PAGES_TTL_SECONDS:
            rows = self._metadata(_PAGES_SQL, (table.schema, table.name))
            counted = rows[0] if rows else (0, 0)
            known = (now, int(counted[0] or 0), int(counted[1] or 0))
            with self._state_lock:
                self._pages[table] = known
        return known[2] if current else known[1]

    def _physical_columns(self, table: SourceTable) -> _PhysicalColumns:
        with self._state_lock:
            known = self._physical.get(table)
        if known is None:
            self.table_columns(table)
            with self._state_lock:
                known = self._physical[table]
        return known

    def _default_collation_is_bytewise(self) -> bool:
        """Whether the database's default collation orders text like DuckDB (bytewise)."""
        with self._state_lock:
            if self._bytewise is not None:
                return self._bytewise
        rows = self._metadata(_COLLATION_SQL, ())
        bytewise = bool(rows) and str(rows[0][0]).lower() in BYTEWISE_COLLATIONS
        with self._state_lock:
            self._bytewise = bytewise
        return bytewise

    def _value_failure(self, error: BaseException) -> ValueFailure | None:
        """SQLSTATE class 22 (data exception); `_stream` maps its own errors the same way."""
        return value_failure(error)

    def _table_statistics(self, table: SourceTable) -> TableStatistics | None:
        """`reltuples` and `pg_stats` (as of the last ANALYZE; bounds from its sample)."""
        rows = self._metadata(_STATISTICS_SQL, (table.schema, table.name))
        if not rows or rows[0][0] is None or float(rows[0][0]) < 0:
            return None
        count = int(float(rows[0][0]))
        types = {c.name: c.type for c in self._cached_columns(table)}
        columns = {
            str(name): column_statistics(count, types.get(str(name)), *figures)
            for _, name, *figures in rows
            if name is not None
        }
        return TableStatistics(count, columns)

    def _estimate(self, sql: str) -> int | None:
        """PostgreSQL's planner estimate (`Plan Rows` of the root) for EXPLAIN."""
        return int(self._root_plan(sql)["Plan Rows"])

    def _plan_cost(self, sql: str) -> PlanCost | None:
        """`Plan Rows` and `Total Cost` of the root: the planner weighs pushing with them."""
        root = self._root_plan(sql)
        return PlanCost(int(root["Plan Rows"]), float(root["Total Cost"]))

    def _root_plan(self, sql: str) -> dict[str, Any]:
        with self.pool.connection() as conn, conn.cursor() as cursor:
            # EXPLAIN cannot run inside the COPY the driver wraps queries in by default.
            cursor.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
            document = cursor.fetchall()[0][0]
        plan = json.loads(document) if isinstance(document, str) else document
        root: dict[str, Any] = plan[0]["Plan"]
        return root

    def _metadata(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """A catalog query; a pooled connection found dead is replaced once (as `_start`)."""
        for attempt in (1, 2):
            try:
                with self.pool.connection() as conn, conn.cursor() as cursor:
                    cursor.execute(sql, parameters or None)
                    return list(cursor.fetchall())
            except adbc_driver_manager.Error as exc:
                if attempt == 1 and not connection_survives(exc):
                    continue
                raise unavailable(self.pool.dsn, exc, "reading metadata", self.pool.label,
                                  self.pool.source) from None  # fmt: skip
        raise AssertionError("unreachable")


def scaled_decimals(handle: PushedQuery) -> frozenset[int]:
    """The outputs `physical_decimals` sends as unscaled BIGINTs, without rewriting the SELECT
    (every execute needs them; the rendering that rewrites is cached)."""
    if len(handle.select.expressions) != len(handle.schema):
        return frozenset()
    return frozenset(i for i, field in enumerate(handle.schema) if travels_scaled(field.type))


def physical_decimals(handle: PushedQuery) -> tuple[exp.Select, frozenset[int]]:
    """`handle.select` with each decimal output rounded to its planned type by PostgreSQL
    and sent as `CAST(CAST(e AS NUMERIC(p,s)) * 10^s AS BIGINT)` (p <= 18; their positions
    are returned) or as `CAST(CAST(e AS NUMERIC(p,s)) AS TEXT)`. Without decimal outputs it
    is `handle.select` itself, not a copy (the caller renders it, which copies).

    ORDER BY / GROUP BY keys that point at such an output by position or by its bare name
    are replaced by the expression first, so they still sort and group numbers, not text.
    """
    targets = {
        index: cast
        for index, field in enumerate(handle.schema)
        if (cast := sql_cast_for(field.type)) is not None
    }
    if not targets or len(handle.select.expressions) != len(handle.schema):
        return handle.select, frozenset()  # unchanged: rendering copies it anyway
    select = handle.select.copy()
    inputs = {c.name for item in handle.inputs for c in item.columns}
    originals = {i: _unaliased(select.expressions[i]) for i in targets}
    by_name = {select.expressions[i].alias_or_name: i for i in targets}
    for clause, bare_names in (("order", True), ("group", False)):
        node = select.args.get(clause)
        if node is None:
            continue
        for key in node.expressions:
            target = key.this if isinstance(key, exp.Ordered) else key
            index: int | None = None
            if isinstance(target, exp.Literal) and target.is_int:
                index = int(target.this) - 1
            elif isinstance(target, exp.Column) and not target.table and (
                bare_names or target.name not in inputs
            ):
                index = by_name.get(target.name)
            if index in originals:
                target.replace(originals[index].copy())
    scaled: set[int] = set()
    for index, cast in targets.items():
        projection = select.expressions[index]
        name = projection.alias_or_name or f"_col{index}"
        target = handle.schema.field(index).type
        # exp.Cast itself: exp.cast() drops a cast to DECIMAL(p,s) of an expression already
        # cast to some DECIMAL, and with it PostgreSQL's rounding and overflow check.
        rounded: exp.Expr = exp.Cast(this=_unaliased(projection).copy(),
                                     to=exp.DataType.build(cast, dialect="postgres"))
        if travels_scaled(target):
            scaled.add(index)
            if target.scale:
                rounded = exp.Mul(this=rounded, expression=exp.Literal.number(10**target.scale))
            value = exp.cast(rounded, exp.DataType.build("BIGINT", dialect="postgres"))
        else:
            text = "TEXT[]" if pa.types.is_list(target) else "TEXT"
            value = exp.cast(rounded, exp.DataType.build(text, dialect="postgres"))
        projection.replace(exp.alias_(value, name, quoted=True))
    return select, frozenset(scaled)


def column_statistics(
    rows: int, arrow: pa.DataType | None, null_frac: float | None, n_distinct: float | None,
    histogram: str | None, common: str | None,
) -> ColumnStatistics:  # fmt: skip
    """One `pg_stats` row as ColumnStatistics: a negative `n_distinct` is a fraction of the
    rows; min/max are the outermost sampled values, for numbers and dates only."""
    distinct: int | None = None
    if n_distinct is not None and n_distinct != 0:
        distinct = int(n_distinct) if n_distinct > 0 else round(-n_distinct * rows)
    values = [
        v for text in (histogram, common) for v in _array_values(text, arrow) if v is not None
    ]
    return ColumnStatistics(
        distinct_count=distinct,
        null_fraction=None if null_frac is None else float(null_frac),
        min=min(values) if values else None,
        max=max(values) if values else None,
    )


def _array_values(text: str | None, arrow: pa.DataType | None) -> list[Any]:
    """`{1,5,9}` as Python values of `arrow` (numbers, decimals, dates); [] otherwise."""
    if not text or arrow is None or not text.startswith("{"):
        return []
    parse: Callable[[str], Any]
    if pa.types.is_integer(arrow):
        parse = int
    elif pa.types.is_floating(arrow):
        parse = float
    elif pa.types.is_decimal(arrow):
        parse = Decimal
    elif pa.types.is_date(arrow):
        parse = dt.date.fromisoformat
    else:
        return []
    try:
        return [parse(item) for item in text[1:-1].split(",") if item and item != "NULL"]
    except (ValueError, ArithmeticError):
        return []


def _unaliased(projection: exp.Expr) -> exp.Expr:
    return projection.this if isinstance(projection, exp.Alias) else projection


def _positive_int(context: ConnectorContext, option: str, default: int) -> int:
    value = context.options.get(option, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"source {context.name!r} (postgres): option `{option}` must be a positive integer"
        )
    return value


__all__ = ["CAPABILITIES", "PostgresConnector", "column_statistics", "physical_decimals",
           "scaled_decimals"]
