"""Bind client parameters into a parsed query as typed literal nodes.

Values never travel as SQL text: each becomes a sqlglot literal (or a CAST of one) that the
generator escapes for each dialect, so a parameter can only ever be a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from meshgate.errors import ParameterError
from meshgate.query.literals import literal, placeholders


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
