"""Bind client parameters into a parsed query as typed literal nodes.

Values never travel as SQL text: each becomes a sqlglot literal (or a CAST of one) that the
generator escapes for each dialect, so a parameter can only ever be a value.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from meshgate.errors import MeshgateError, Status


class ParameterError(MeshgateError):
    status = Status.INVALID_ARGUMENT


def placeholders(tree: exp.Expr) -> list[exp.Placeholder]:
    """Placeholders in the order they appear in the text."""
    found = list(tree.find_all(exp.Placeholder, bfs=False))
    return sorted(found, key=_position) if all(_position(p) >= 0 for p in found) else found


def _position(node: exp.Placeholder) -> int:
    meta = node.meta or {}
    value = meta.get("start")
    return int(value) if value is not None else -1


def bind_parameters(tree: exp.Query, values: Sequence[Any] | None) -> exp.Query:
    """A copy of `tree` with every placeholder replaced; None values mean "describe only"."""
    bound = tree.copy()
    found = placeholders(bound)
    if values is not None and len(values) != len(found):
        raise ParameterError(
            f"the statement has {len(found)} parameter(s) but {len(values)} value(s) were bound"
        )
    for index, node in enumerate(found):
        if values is None:
            node.replace(exp.null())
            continue
        number = node.name
        position = int(number) - 1 if number.isdigit() else index
        if not 0 <= position < len(values):
            raise ParameterError(f"parameter ${number} has no bound value")
        node.replace(literal(values[position]))
    return bound


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
