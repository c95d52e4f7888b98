"""What meshgate pushes to PostgreSQL: only what PostgreSQL evaluates exactly as DuckDB does.

Left out on purpose, each because PostgreSQL answers differently from the engine:
`/` and `%` by anything but a non-zero literal (PostgreSQL raises on division by zero where
DuckDB yields NULL), `//` (rounding), ROUND (PostgreSQL rounds doubles half-to-even),
SUBSTRING and LEFT/RIGHT by anything but a non-negative literal (negative positions),
LOWER/UPPER/ILIKE (locale-dependent), GREATEST / LEAST (NULL handling), casts to text (number
and date formatting; a concatenation's text is pushed) and anything date-part on
`timestamp with time zone` (depends on the session time zone). Text ordering (<, >, BETWEEN,
MIN/MAX, ORDER BY on text) is pushed everywhere: columns of other collations are sent with
`COLLATE "C"` (see PostgresConnector), only literal-only text comparisons stay local.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pyarrow as pa
from sqlglot import exp

from meshgate.spi import Capabilities, JoinKind
from meshgate.sqlconnector import ARITHMETIC, BOOLEAN_LOGIC, COMPARISONS

EXPRESSIONS: frozenset[type[exp.Expr]] = (
    COMPARISONS
    | BOOLEAN_LOGIC
    | ARITHMETIC
    | frozenset(
        {
            exp.Like,
            exp.Case,
            exp.If,
            exp.Cast,
            exp.Coalesce,
            exp.Nullif,
            exp.Length,
            exp.Trim,
            exp.Concat,
            exp.DPipe,
            exp.Left,
            exp.Right,
            exp.Substring,
            exp.Abs,
            exp.Floor,
            exp.Ceil,
            exp.Extract,
            exp.Year,
            exp.Month,
            exp.Day,
            exp.Interval,
            exp.Subquery,
            exp.Exists,
            exp.Union,
            exp.Intersect,
            exp.Except,
            # a WITH at the top of a whole query (the CTEs it reads twice; materialized)
            exp.With,
            exp.CTE,
        }
    )
)
AGGREGATES: frozenset[type[exp.Expr]] = frozenset(
    {exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max}
)
JOIN_KINDS = frozenset(JoinKind)

# `datcollate` values whose text order is byte order (glibc's C.UTF-8 sorts by code point,
# which for UTF-8 is the same order as DuckDB's byte comparison).
BYTEWISE_COLLATIONS = frozenset({"c", "posix", "c.utf8", "c.utf-8"})


# Text ordering matches because every non-bytewise text column is sent `COLLATE "C"`.
CAPABILITIES = Capabilities(
    dialect="postgres",
    expressions=EXPRESSIONS,
    aggregates=AGGREGATES,
    join_kinds=JOIN_KINDS,
    text_ordering_matches_engine=True,
    text_equality_matches_engine=True,
    # PostgreSQL pushes no qual into, and never flattens, a subquery with LIMIT/OFFSET.
    offset_fences_subqueries=True,
    # EXISTS / NOT EXISTS become semi / anti joins (TPC-H Q4: 1.7 s as written, 24 s as the
    # grouped LEFT JOIN sqlglot makes of it); a correlated scalar subquery stays a SubPlan.
    semi_joins_exists=True,
    key_sets=True,
)


_TEXT_ORDER_SENSITIVE = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.Min, exp.Max,
                         exp.Ordered)
_DATE_PARTS = (exp.Extract, exp.Year, exp.Month, exp.Day)
_SAME_DATE_PARTS = frozenset({"YEAR", "QUARTER", "MONTH", "DAY"})
_INTEGERS = ("int8", "int16", "int32", "int64")
_EXPLICIT_OFFSET = re.compile(r"([+-]\d{2}(:?\d{2})?|Z|UTC)$")


def renders_exactly(node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]) -> bool:
    """The per-node veto behind the table above: value-dependent differences."""
    if isinstance(node, exp.Div | exp.Mod):
        return _nonzero_literal(node.expression)
    if isinstance(node, exp.Left | exp.Right):
        return _count_literal(node.expression)
    if isinstance(node, exp.Substring):
        # A start below 1 counts from the end in DuckDB, not in PostgreSQL (TPC-H Q22: 1, 2).
        start, length = node.args.get("start"), node.args.get("length")
        return (
            isinstance(start, exp.Literal)
            and _count_literal(start)
            and int(start.this) >= 1
            and (length is None or _count_literal(length))
        )
    if isinstance(node, exp.Like):
        pattern = node.expression
        return isinstance(pattern, exp.Literal) and "\\" not in pattern.this
    if isinstance(node, _TEXT_ORDER_SENSITIVE) and not any(node.find_all(exp.Column)):
        # Literals alone take the database's default collation, which may not be bytewise.
        return not any(literal.is_string for literal in node.find_all(exp.Literal))
    if isinstance(node, exp.Extract) and node.name.upper() not in _SAME_DATE_PARTS:
        return False  # week, dow, epoch, ... are numbered or typed differently
    if isinstance(node, _DATE_PARTS):
        return not any(
            pa.types.is_timestamp(t) and t.tz is not None for t in _types_under(node, column_types)
        )
    if isinstance(node, exp.Cast):
        return _exact_cast(node, column_types)
    return True


def _count_literal(node: exp.Expr | None) -> bool:
    """A non-negative integer literal."""
    return isinstance(node, exp.Literal) and not node.is_string and node.this.isdigit()


def _nonzero_literal(node: exp.Expr | None) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    if not isinstance(node, exp.Literal) or node.is_string:
        return False
    try:
        return float(node.this) != 0.0
    except ValueError:
        return False


def _types_under(
    node: exp.Expr, column_types: Mapping[tuple[str, str], pa.DataType]
) -> list[pa.DataType]:
    found: list[pa.DataType] = []
    for column in node.find_all(exp.Column):
        arrow = column_types.get((column.table, column.name))
        if arrow is None:
            # Unknown origin (a nested query's output): assume the worst.
            arrow = pa.string()
        found.append(arrow)
    return found


def _exact_cast(node: exp.Cast, column_types: Mapping[tuple[str, str], pa.DataType]) -> bool:
    """Casts both systems evaluate identically: literals to dates/numbers, widening numbers."""
    target = node.to
    operand = node.this
    if isinstance(operand, exp.Null):
        return True  # a typed NULL (the `null` mask) is NULL everywhere
    if isinstance(operand, exp.Placeholder):
        # A client value bound with its own type (text, integer, date, ...) read as the
        # planned type; time zones, intervals and bytes the two systems read differently.
        return not target.is_type(
            exp.DataType.Type.TIMESTAMPTZ,
            exp.DataType.Type.INTERVAL,
            exp.DataType.Type.VARBINARY,
            exp.DataType.Type.BLOB,
        )
    if target.is_type(*exp.DataType.TEXT_TYPES):
        while isinstance(operand, exp.Paren):
            operand = operand.this
        # A concatenation is text in both systems already: the cast (a mask keeping its
        # column's declared type) changes nothing.
        return (isinstance(operand, exp.Literal) and operand.is_string) or isinstance(
            operand, exp.DPipe
        )
    if isinstance(operand, exp.Literal):
        if operand.is_string:
            if target.is_type(exp.DataType.Type.TIMESTAMPTZ):
                return bool(_EXPLICIT_OFFSET.search(operand.this))
            return target.is_type(
                exp.DataType.Type.DATE,
                exp.DataType.Type.TIMESTAMP,
                exp.DataType.Type.INTERVAL,
                *exp.DataType.NUMERIC_TYPES,
            )
        return target.is_type(*exp.DataType.NUMERIC_TYPES)
    if not isinstance(operand, exp.Column):
        return False
    source = column_types.get((operand.table, operand.name))
    if source is None:
        return False
    if pa.types.is_integer(source):
        return target.is_type(
            exp.DataType.Type.BIGINT,
            exp.DataType.Type.DOUBLE,
            exp.DataType.Type.DECIMAL,
            *([exp.DataType.Type.INT] if str(source) in _INTEGERS[:3] else []),
        )
    if pa.types.is_decimal(source):
        if target.is_type(exp.DataType.Type.DOUBLE):
            return True
        params = [p for p in target.expressions if isinstance(p, exp.DataTypeParam)]
        if target.is_type(exp.DataType.Type.DECIMAL) and len(params) == 2:
            precision, scale = (int(p.this.this) for p in params)
            widened: bool = precision - scale >= source.precision - source.scale
            return scale >= source.scale and widened
        return False
    if pa.types.is_date32(source):
        return target.is_type(exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP)
    return False
