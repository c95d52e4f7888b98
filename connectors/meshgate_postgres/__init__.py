"""PostgreSQL as a meshgate source, over the ADBC PostgreSQL driver (binary COPY to Arrow).

Options: `dsn` (a libpq URI or key=value string; put the password in `${ENV}`), `pool_size`
(connections kept per source instance, default 4) and `partitions` (parallel ctid-range
readers for plain table scans, default 1: see benchmarks/README.md for when it pays).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import adbc_driver_manager
import pyarrow as pa
from sqlglot import exp

from meshgate.errors import ConfigError, SourceUnavailable
from meshgate.spi import (
    Capabilities,
    ConnectorContext,
    PushedQuery,
    ScanInput,
    SourceColumn,
    SourceTable,
)
from meshgate.spi.sql import SqlConnector

from .capabilities import BYTEWISE_COLLATIONS, capabilities, renders_exactly
from .pool import DEFAULT_POOL_SIZE, ConnectionPool, describe_dsn, unavailable
from .stream import SourceQueryError, source_error, stream_batches
from .typemap import arrow_type_of, is_native, sql_cast_for

_COLUMNS_SQL = """
SELECT a.attname,
       COALESCE(base.typname, t.typname),
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       elem.typname,
       NOT a.attnotnull
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type base ON t.typtype = 'd' AND base.oid = t.typbasetype
LEFT JOIN pg_catalog.pg_type elem
       ON elem.oid = COALESCE(base.typelem, t.typelem) AND COALESCE(base.typcategory,
          t.typcategory) = 'A'
WHERE n.nspname = COALESCE($1, current_schema()) AND c.relname = $2
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_COLLATION_SQL = """
SELECT datcollate FROM pg_catalog.pg_database WHERE datname = current_database()
"""


class PostgresConnector(SqlConnector):
    """One PostgreSQL database (one `dsn`); thread-safe, with its own connection pool."""

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
        self.pool = ConnectionPool(dsn, _positive_int(context, "pool_size", DEFAULT_POOL_SIZE))
        self.partitions = _positive_int(context, "partitions", 1)
        self._state_lock = threading.Lock()
        self._bytewise: bool | None = None
        # Physical columns read as text because Arrow has no exact type for them (inet, ...).
        self._text_columns: dict[SourceTable, frozenset[str]] = {}

    # --- metadata -------------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        return capabilities(bytewise_text_order=self._text_order_is_bytewise())

    def check(self) -> None:
        with self._state_lock:
            self._bytewise = None
        self._text_order_is_bytewise(strict=True)

    def table_columns(self, table: SourceTable) -> list[SourceColumn]:
        rows = self._metadata(_COLUMNS_SQL, (table.schema, table.name))
        if not rows:
            raise SourceUnavailable(
                f"source {self.context.name!r} (postgres) at {describe_dsn(self.pool.dsn)} has "
                f"no table {table.qualified()!r}; check the table and schema names in the "
                "configuration and that meshgate's role may read it"
            )
        columns: list[SourceColumn] = []
        as_text: set[str] = set()
        for name, typname, typmod, element, nullable in rows:
            columns.append(SourceColumn(name, arrow_type_of(typname, typmod, element), nullable))
            if not is_native(typname, element):
                as_text.add(name)
        with self._state_lock:
            self._text_columns[table] = frozenset(as_text)
        return columns

    # --- SqlConnector hooks ---------------------------------------------------------------
    def _renders_node(
        self, node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]
    ) -> bool:
        return renders_exactly(
            node, column_types, bytewise_text_order=self._text_order_is_bytewise()
        )

    def _physical_select(self, select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
        """The SELECT PostgreSQL receives: parameters as `$n` (bound by the driver, never
        spliced), and columns without an exact Arrow type (inet, money, ranges) as text."""
        as_text = {
            (item.alias, name)
            for item in inputs
            for name in self._text_columns_of(item.table)
        }
        positional = iter(range(1, 1 << 16))

        def rewrite(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and (node.table, node.name) in as_text:
                return exp.cast(node.copy(), exp.DataType.build("TEXT"))
            if isinstance(node, exp.Placeholder):
                number = node.name if node.name.isdigit() else str(next(positional))
                return exp.Parameter(this=exp.Literal.number(number))
            return node

        transformed = select.transform(rewrite, copy=True)
        assert isinstance(transformed, exp.Select)
        return transformed

    def render(self, handle: PushedQuery) -> str:
        """The pushed SELECT, wrapped so decimals come back as exact text at planned scale.

        PostgreSQL rounds to the planned scale (as DuckDB's cast would) and raises on
        overflow; the wrapper renames columns positionally so duplicate or unnamed outputs
        of the inner SELECT cannot collide.
        """
        inner = super().render(handle)
        casts = [sql_cast_for(field.type) for field in handle.schema]
        if not any(casts):
            return inner
        names = [f"c{i}" for i in range(len(casts))]
        outputs = []
        for name, cast, field in zip(names, casts, handle.schema, strict=True):
            value = f"q.{name}" if cast is None else f"CAST(CAST(q.{name} AS {cast}) AS TEXT)"
            if cast is not None and pa.types.is_list(field.type):
                value = f"CAST(CAST(q.{name} AS {cast}) AS TEXT[])"
            outputs.append(f"{value} AS {_quote(field.name)}")
        return f"SELECT {', '.join(outputs)} FROM ({inner}) AS q({', '.join(names)})"

    def _stream(
        self, sql: str, parameters: Sequence[Any], schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        return stream_batches(self.pool, sql, parameters, schema)

    def close(self) -> None:
        self.pool.close()

    # --- internals ------------------------------------------------------------------------
    def _text_columns_of(self, table: SourceTable) -> frozenset[str]:
        with self._state_lock:
            known = self._text_columns.get(table)
        if known is None:
            self.table_columns_cached(table)
            with self._state_lock:
                known = self._text_columns.get(table, frozenset())
        return known

    def _text_order_is_bytewise(self, *, strict: bool = False) -> bool:
        """Whether the database's default collation orders text like DuckDB (bytewise)."""
        with self._state_lock:
            if self._bytewise is not None:
                return self._bytewise
        try:
            rows = self._metadata(_COLLATION_SQL, ())
        except SourceUnavailable:
            if strict:
                raise
            return False  # unknown: do not push text ordering; ask again next time
        bytewise = bool(rows) and str(rows[0][0]).lower() in BYTEWISE_COLLATIONS
        with self._state_lock:
            self._bytewise = bytewise
        return bytewise

    def _metadata(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            with self.pool.connection() as conn, conn.cursor() as cursor:
                cursor.execute(sql, parameters or None)
                return list(cursor.fetchall())
        except adbc_driver_manager.Error as exc:
            error = source_error(self.pool, exc, "reading metadata")
            if isinstance(error, SourceQueryError):
                raise unavailable(self.pool.dsn, exc, "reading metadata") from None
            raise error from None


def _positive_int(context: ConnectorContext, option: str, default: int) -> int:
    value = context.options.get(option, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"source {context.name!r} (postgres): option `{option}` must be a positive integer"
        )
    return value


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = ["PostgresConnector"]
