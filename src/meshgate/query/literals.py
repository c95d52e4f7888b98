"""Client values as typed literal nodes, and the placeholders they stand in for."""

from __future__ import annotations

import datetime as dt
import decimal
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
