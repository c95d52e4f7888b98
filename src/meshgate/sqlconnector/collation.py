"""Text comparisons: when a source's collation gives the engine's answer, and how to make it.

DuckDB compares text by bytes. A source whose ordering or equality differs (locale or
case-insensitive collations, blank padding) may only evaluate text comparisons it answers
the same way, or, for equality in a WHERE, a superset the engine filters again. Columns
declared with another collation can be compared by bytes with `col COLLATE <binary>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from meshgate.spi import Capabilities, ScanInput

ColumnTypes = Mapping[tuple[str, str], pa.DataType]

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


def text_agrees(node: exp.Expr, capabilities: Capabilities, types: ColumnTypes) -> bool:
    """Whether the source's collation gives `node` the engine's answer (or, for equality
    in a WHERE, a superset the engine can filter again)."""
    if isinstance(node, exp.Ordered) and not capabilities.text_ordering_matches_engine:
        return not is_text(ordered_key(node), types)
    if isinstance(node, TEXT_ORDERING) and not capabilities.text_ordering_matches_engine:
        return not has_text_operand(node, types)
    if isinstance(node, TEXT_EQUALITY) and not capabilities.text_equality_matches_engine:
        return not has_text_operand(node, types) or (
            on_filter_path(node) and not node.args.get("negate")
        )
    return True


def compare_bytes(select: exp.Select, collated: ColumnTypes, every: ColumnTypes,
                  collation: str) -> exp.Select:  # fmt: skip
    """`select` with every reference to a `collated` column compared by bytes.

    e.g. `WHERE t.name = 'Apple'` -> `WHERE t.name COLLATE binary = 'Apple'` (SQLite).
    """
    binary = exp.Var(this=collation)

    def recollate(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Column) or isinstance(node.parent, exp.Collate):
            return node
        if column_type(node, every) is None or column_type(node, collated) is None:
            return node
        return exp.Collate(this=node.copy(), expression=binary.copy())

    rewritten = select.transform(recollate, copy=True)
    assert isinstance(rewritten, exp.Select)
    return rewritten


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


def on_filter_path(node: exp.Expr) -> bool:
    """Whether a superset answer for `node` only widens a WHERE (reached through AND / OR /
    parentheses only, no NOT, CASE or value use); a bare conjunct counts as a WHERE."""
    parent = node.parent
    while isinstance(parent, exp.And | exp.Or | exp.Paren):
        parent = parent.parent
    return parent is None or isinstance(parent, exp.Where)


def has_text_operand(node: exp.Expr, types: ColumnTypes) -> bool:
    """Whether a comparison, aggregate or grouping `node` compares text values."""
    operands: list[exp.Expr] = [
        node.args[key] for key in ("this", "expression", "low", "high") if node.args.get(key)
    ]
    operands += [e for e in node.args.get("expressions") or [] if isinstance(e, exp.Expr)]
    return any(is_text(operand, types) for operand in operands)


def is_text(node: exp.Expr, types: ColumnTypes) -> bool:
    if isinstance(node, exp.Paren | exp.Distinct | exp.Coalesce):
        return has_text_operand(node, types)
    if isinstance(node, exp.Literal):
        return bool(node.is_string)
    if isinstance(node, exp.Column):
        found = column_type(node, types)
        return found is not None and bool(pa.types.is_string(found))
    if isinstance(node, exp.Cast):
        return node.to.is_type(*exp.DataType.TEXT_TYPES)
    return isinstance(node, TEXT_VALUED)


def ordered_key(node: exp.Ordered) -> exp.Expr:
    """An ORDER BY key, with a reference to an output column replaced by its expression."""
    key: exp.Expr = node.this
    select = node.find_ancestor(exp.Select)
    if isinstance(key, exp.Column) and not key.table and select is not None:
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and projection.alias == key.name:
                aliased: exp.Expr = projection.this
                return aliased
    return key


def column_type(column: exp.Column, types: ColumnTypes) -> pa.DataType | None:
    """The input type of a column reference; unqualified names only when unambiguous."""
    if column.table:
        return types.get((column.table, column.name))
    matches = [found for (_, name), found in types.items() if name == column.name]
    return matches[0] if len(matches) == 1 else None


def column_types(inputs: Sequence[ScanInput]) -> dict[tuple[str, str], pa.DataType]:
    """(alias, column) -> Arrow type of every column the inputs expose."""
    return {(i.alias, c.name): c.type for i in inputs for c in i.columns}
