"""Client values as typed literal nodes, and the placeholders they stand in for."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
from typing import Any

from sqlglot import exp

from meshgate.errors import ParameterError


def placeholders(tree: exp.Expr) -> list[exp.Placeholder]:
    """Placeholders in the order they appear in the text."""
    found = list(tree.find_all(exp.Placeholder, bfs=False))
    return sorted(found, key=_position) if all(_position(p) >= 0 for p in found) else found


def _position(node: exp.Placeholder) -> int:
    meta = node.meta or {}
    value = meta.get("start")
    return int(value) if value is not None else -1


def literal(value: Any) -> exp.Expr:
    """The literal node for one Python value from a client."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        return exp.cast(exp.Literal.string(repr(value)), exp.DataType.build("DOUBLE"))
    if isinstance(value, decimal.Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build(kind))
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    if isinstance(value, bytes):
        return exp.func("unhex", exp.Literal.string(value.hex()))
    raise ParameterError(f"unsupported parameter type {type(value).__name__}")


def numbered_placeholders(tree: exp.Query) -> exp.Query:
    """A copy of `tree` whose `?` placeholders are `$1, $2, ...` by position in the text, so
    every later stage refers to a client parameter by number whatever the client wrote."""
    copy = tree.copy()
    for index, node in enumerate(placeholders(copy)):
        if not node.name.isdigit():
            node.replace(exp.Placeholder(this=str(index + 1)))
    assert isinstance(copy, exp.Query)
    return copy


def value_type(value: Any) -> exp.DataType | None:
    """The SQL type DuckDB gives the literal of `value`: UNKNOWN for text, which takes its
    type from where it is used as a text literal does, None for NULL."""
    if value is None:
        return None
    if isinstance(value, str):
        return _built("UNKNOWN")
    if isinstance(value, bool):
        return _built("BOOLEAN")
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return _built("INTEGER")
        return _built("BIGINT" if -(2**63) <= value < 2**63 else "HUGEINT")
    if isinstance(value, float):
        return _built("DOUBLE")
    if isinstance(value, decimal.Decimal):
        digits = value.as_tuple()
        exponent = digits.exponent if isinstance(digits.exponent, int) else 0
        scale = max(0, -exponent)
        whole = max(len(digits.digits) + exponent, 1)  # DuckDB counts at least one
        precision = whole + scale
        if precision > 38:
            raise ParameterError("a DECIMAL parameter has more than 38 digits")
        return _built(f"DECIMAL({precision}, {scale})")
    if isinstance(value, dt.datetime):
        return _built("TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP")
    if isinstance(value, dt.date):
        return _built("DATE")
    if isinstance(value, bytes):
        return _built("BLOB")
    raise ParameterError(f"unsupported parameter type {type(value).__name__}")


@functools.lru_cache(maxsize=512)
def _built(sql: str) -> exp.DataType:
    """One shared node per type: building parses the text, a cost per bound value. Callers
    copy a type before placing it in a tree."""
    return exp.DataType.build(sql)


@functools.lru_cache(maxsize=512)
def type_name(data_type: exp.DataType) -> str:
    """`data_type`'s SQL text, as plan keys hold it (generated once per type)."""
    return data_type.sql()
