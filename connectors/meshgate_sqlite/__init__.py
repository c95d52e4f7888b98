"""An SQLite database file as a meshgate source (stdlib `sqlite3`, read-only).

SQLite is dynamically typed: dates and timestamps live as ISO text, decimals as text (or, with
NUMERIC affinity, as REAL), booleans as 0/1. So:

- rows are fetched in chunks and built into Arrow arrays of the handle's (engine) types, with
  decimals parsed through `Decimal` so they stay exact;
- columns of those "stored as something else" types may be projected, tested with IS NULL and
  counted, but never compared, grouped, ordered or aggregated at the source, where SQLite would
  compare text or floats instead of dates and decimals;
- comparisons must compare like with like (no affinity conversions between text and numbers);
- division and modulo stay in the engine (SQLite divides integers as integers, `%` truncates
  reals);
- LIKE is INEXACT: SQLite's LIKE ignores ASCII case, so it returns a superset the engine
  re-filters; it is only pushed where a superset is harmless (a WHERE conjunct, under AND/OR);
- text ordering and equality match the engine: SQLite's BINARY collation compares UTF-8 bytes
  with memcmp, as DuckDB's default does (byte order = code point order), so comparisons,
  ORDER BY, GROUP BY, MIN and MAX over text agree. Columns declared `COLLATE NOCASE` / `RTRIM`
  are read from the table's DDL and rendered `col COLLATE binary` wherever they appear.

SQLite raises few value errors (a failed CAST yields 0, text compares with anything): integer
overflow in `sum()` or `abs()`, an oversized string, malformed JSON. Those are the query's fault;
every other `sqlite3.Error` means the file cannot be read.
"""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
from collections.abc import Generator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pyarrow as pa
from sqlglot import exp

from meshgate.errors import ConfigError, QueryCancelled, SourceUnavailable
from meshgate.spi import (
    CancelToken,
    Capabilities,
    ConnectorContext,
    FilterSupport,
    JoinKind,
    SourceColumn,
    SourceTable,
    TableStatistics,
)
from meshgate.sqlconnector import (
    BOOLEAN_LOGIC,
    COMPARISONS,
    SqlConnector,
    ValueFailure,
    ValueFault,
    collated_text_columns,
    column_type,
    on_filter_path,
)
from meshgate.types import arrow_type, parse_sql_type

CAPABILITIES = Capabilities(
    dialect="sqlite",
    expressions=COMPARISONS
    | BOOLEAN_LOGIC
    | frozenset({exp.Add, exp.Sub, exp.Mul, exp.Neg, exp.Like}),
    aggregates=frozenset({exp.Count, exp.Sum, exp.Min, exp.Max}),
    join_kinds=frozenset({JoinKind.INNER, JoinKind.LEFT}),
    text_ordering_matches_engine=True,
    text_equality_matches_engine=True,
)

_ORDERED_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Neg)
# Where a stored-as-something-else column may appear: it is only read, tested for NULL or counted.
_OPAQUE_PARENTS = (exp.Alias, exp.Is, exp.Count)


def _is_opaque(arrow: pa.DataType) -> bool:
    """Types SQLite stores in another representation than the engine compares."""
    return bool(
        pa.types.is_decimal(arrow)
        or pa.types.is_temporal(arrow)
        or pa.types.is_binary(arrow)
        or pa.types.is_interval(arrow)
    )


def _family(arrow: pa.DataType) -> str | None:
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_integer(arrow) or pa.types.is_floating(arrow):
        return "number"
    if pa.types.is_string(arrow):
        return "text"
    return None


class SQLiteConnector(SqlConnector):
    """Reads tables of an SQLite file (option `path`), opened with `mode=ro`."""

    kind = "sqlite"
    in_process = True
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.Error,)
    binary_collation: ClassVar[str | None] = "binary"

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        if "path" not in context.options:
            raise ConfigError(f"source {context.name!r} (sqlite) needs the option `path`")
        self.path: Path = context.path(str(context.options["path"]))

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def check(self) -> None:
        connection = self._connect()
        try:
            connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        except sqlite3.Error as error:
            raise self._unavailable(error) from error
        finally:
            connection.close()

    def table_columns(self, table: SourceTable) -> list[SourceColumn]:
        connection = self._connect()
        try:
            schema = _quote(table.schema or "main")
            rows = connection.execute(
                f"PRAGMA {schema}.table_info({_quote(table.name)})"
            ).fetchall()
        except sqlite3.Error as error:
            raise self._unavailable(error) from error
        finally:
            connection.close()
        if not rows:
            raise SourceUnavailable(
                "an SQLite source has no table a product is configured to read; check the "
                "product's table name in the configuration",
                detail=f"source {self.context.name!r}: no table {table.qualified()!r} "
                f"in {self.path}",
            )
        return [SourceColumn(str(r[1]), _declared_type(str(r[2])), not r[3]) for r in rows]

    # --- strategy hooks -------------------------------------------------------------------
    def _table_statistics(self, table: SourceTable) -> TableStatistics | None:
        """The row count `ANALYZE` left in `sqlite_stat1` (the first figure of each row);
        None where ANALYZE never ran. SQLite keeps no per-column figures worth reporting."""
        schema = _quote(table.schema or "main")
        connection = self._connect()
        try:
            analyzed = connection.execute(
                f"SELECT 1 FROM {schema}.sqlite_schema WHERE name = 'sqlite_stat1'"
            ).fetchone()
            found = analyzed and connection.execute(
                f"SELECT stat FROM {schema}.sqlite_stat1 WHERE tbl = ? LIMIT 1", (table.name,)
            ).fetchone()
        except sqlite3.Error as error:
            raise self._unavailable(error) from error
        finally:
            connection.close()
        if not found:
            return None
        return TableStatistics(int(str(found[0]).split()[0]))

    def _parameter_marker(self, number: int) -> exp.Expr:
        return exp.var(f"?{number}")

    def _bind_value(self, value: Any) -> Any:
        """sqlite3 binds text, numbers and bytes; others travel as the text SQLite stores."""
        if isinstance(value, decimal.Decimal):
            return str(value)
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ")
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    def _collated_columns(self, table: SourceTable) -> frozenset[str]:
        connection = self._connect()
        try:
            row = connection.execute(
                f"SELECT sql FROM {_quote(table.schema or 'main')}.sqlite_schema "
                "WHERE type = 'table' AND name = ?",
                (table.name,),
            ).fetchone()
        except sqlite3.Error as error:
            raise self._unavailable(error) from error
        finally:
            connection.close()
        ddl = row[0] if row and isinstance(row[0], str) else ""
        return collated_text_columns(ddl, "sqlite", ("binary",))

    def _renders_node(
        self, node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]
    ) -> bool:
        if isinstance(node, exp.Column):
            arrow = column_type(node, column_types)
            if arrow is None:
                return True  # an output name (ORDER BY / HAVING over aggregates)
            return not _is_opaque(arrow) or isinstance(node.parent, _OPAQUE_PARENTS)
        if isinstance(node, exp.Like):
            return (
                not node.args.get("negate")
                and _family_of(node.this, column_types) == "text"
                and _family_of(node.expression, column_types) == "text"
                and on_filter_path(node)
            )
        if isinstance(node, _ORDERED_COMPARISONS):
            operands = [node.this, *node.expressions]
            operands += [node.args[k] for k in ("expression", "low", "high") if node.args.get(k)]
            families = {_family_of(o, column_types) for o in operands} - {"null"}
            return len(families) == 1 and None not in families
        if isinstance(node, _ARITHMETIC):
            operands = [o for o in (node.this, node.args.get("expression")) if o is not None]
            return all(_family_of(o, column_types) == "number" for o in operands)
        return True

    def _conjunct_support(
        self, conjunct: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]
    ) -> FilterSupport:
        if conjunct.find(exp.Like):
            return FilterSupport.INEXACT
        return super()._conjunct_support(conjunct, column_types)

    def _value_failure(self, error: BaseException) -> ValueFailure | None:
        """SQLite reports its value errors as SQLITE_ERROR / SQLITE_TOOBIG: known by message."""
        text = str(error)
        for marker, failure in _VALUE_ERRORS:
            if isinstance(error, sqlite3.Error) and text.startswith(marker):
                return failure
        return None

    def _stream(
        self, sql: str, parameters: Sequence[Any], schema: pa.Schema, cancel: CancelToken
    ) -> Generator[pa.RecordBatch, None, None]:
        connection = self._connect()
        try:
            with cancel.stopping(connection.interrupt):
                cursor = connection.execute(sql, tuple(parameters))
                while not cancel.cancelled and (rows := cursor.fetchmany(self.batch_rows)):
                    yield _record_batch(rows, schema)
        except sqlite3.OperationalError:
            if not cancel.cancelled:
                raise
        finally:
            connection.interrupt()
            connection.close()
        if cancel.cancelled:
            raise QueryCancelled(
                "the query was cancelled while an sqlite source ran it",
                detail=f"source {self.context.name!r}",
            )

    # --- connection -----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise SourceUnavailable(
                "an SQLite source's database file does not exist; check the source's `path` "
                "option (relative paths are resolved against the configuration directory)",
                detail=f"source {self.context.name!r}: no file {self.path}",
            )
        try:
            return sqlite3.connect(
                f"file:{quote(str(self.path))}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: BaseException) -> SourceUnavailable:
        return SourceUnavailable(
            "an SQLite source's database file could not be read; check that it is an SQLite "
            "database the server may read",
            detail=f"source {self.context.name!r}: {self.path}: {error}",
        )


_VALUE_ERRORS = (
    ("integer overflow", ValueFailure(ValueFault.OUT_OF_RANGE, "BIGINT")),
    ("string or blob too big", ValueFailure(ValueFault.TOO_LONG)),
    ("malformed JSON", ValueFailure(ValueFault.CONVERSION, "JSON")),
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _declared_type(declared: str) -> pa.DataType:
    """The Arrow type for a column's declared type, falling back to SQLite's affinity rules."""
    upper = declared.upper()
    if upper in ("INTEGER", "INT"):
        return pa.int64()
    try:
        return arrow_type(parse_sql_type(declared))
    except ConfigError:
        pass
    if "INT" in upper:
        return pa.int64()
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    return pa.binary() if upper in ("", "BLOB") else pa.float64()


def _family_of(node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]) -> str | None:
    """number / text / boolean / null for an operand SQLite compares like DuckDB, else None."""
    if isinstance(node, exp.Paren):
        return _family_of(node.this, column_types)
    if isinstance(node, exp.Null):
        return "null"
    if isinstance(node, exp.Boolean):
        return "boolean"
    if isinstance(node, exp.Literal):
        return "text" if node.is_string else "number"
    if isinstance(node, exp.Column):
        arrow = column_type(node, column_types)
        return None if arrow is None or _is_opaque(arrow) else _family(arrow)
    if isinstance(node, _ARITHMETIC):
        return "number"
    if isinstance(node, exp.Count):
        return "number"
    if isinstance(node, exp.Sum | exp.Min | exp.Max):
        return _family_of(node.this, column_types)
    return None


def _record_batch(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = [
        pa.array([_convert(v, f.type) for v in values], type=f.type)
        for values, f in zip(columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _convert(value: Any, arrow: pa.DataType) -> Any:
    """One SQLite value as the Python value pyarrow needs for `arrow`."""
    if value is None:
        return None
    if pa.types.is_decimal(arrow):
        try:
            number = Decimal(value) if isinstance(value, int | str) else Decimal(str(value))
        except InvalidOperation:
            raise SourceUnavailable(
                "an SQLite source holds a value that is not a decimal number in a column the "
                "product declares DECIMAL; ask the administrator to check the source's data",
                detail=f"SQLite value {value!r} is not a decimal number",
            ) from None
        try:  # in the column's own precision: the default context holds only 28 digits
            return number.quantize(Decimal(1).scaleb(-arrow.scale),
                                   context=decimal.Context(prec=arrow.precision))
        except InvalidOperation:
            raise SourceUnavailable(
                "an SQLite source holds a number too large for the DECIMAL precision the "
                "product declares; ask the administrator to check the source's data",
                detail=f"SQLite value {value!r} does not fit DECIMAL({arrow.precision}, "
                       f"{arrow.scale})",
            ) from None
    if pa.types.is_boolean(arrow):
        return bool(value)
    if pa.types.is_integer(arrow):
        return int(value)
    if pa.types.is_floating(arrow):
        return float(value)
    if pa.types.is_string(arrow):
        return value if isinstance(value, str) else str(value)
    if pa.types.is_date(arrow):
        return dt.date.fromisoformat(str(value)[:10])
    if pa.types.is_timestamp(arrow):
        moment = dt.datetime.fromisoformat(str(value))
        if arrow.tz is None:
            return (
                moment.replace(tzinfo=None)
                if moment.tzinfo is None
                else moment.astimezone(dt.UTC).replace(tzinfo=None)
            )
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    if pa.types.is_time(arrow):
        return dt.time.fromisoformat(str(value))
    return value


__all__ = ["CAPABILITIES", "SQLiteConnector"]
