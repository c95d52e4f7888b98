"""How client parameters appear in a handle: the SPI's convention, shared by every runner.

A handle's SELECT names a client parameter by a numbered placeholder, `$k` for the client's
k-th value (`QueryContext.parameters[k - 1]`), always inside a CAST to its planned type. A
source (or the merge) renumbers the ones it uses 1..m and binds the values in that order.
"""

from __future__ import annotations

from sqlglot import exp


def parameter_position(node: exp.Placeholder) -> int:
    """The 0-based client position of a numbered placeholder (`$3` -> 2)."""
    return int(node.name) - 1


def renumbered(tree: exp.Expr) -> tuple[exp.Expr, tuple[int, ...]]:
    """A copy of `tree` with its placeholders numbered 1..m in tree order, and the client
    position each number stands for: what a fragment or the merge binds, by its own count."""
    copy = tree.copy()
    positions: list[int] = []
    for node in list(copy.find_all(exp.Placeholder, bfs=False)):
        positions.append(parameter_position(node))
        node.replace(exp.Placeholder(this=str(len(positions))))
    return copy, tuple(positions)


def parameter_positions(tree: exp.Expr) -> tuple[int, ...]:
    """The client position each of `renumbered(tree)`'s numbers stands for, without copying
    the tree: what a run binds."""
    return tuple(parameter_position(node) for node in tree.find_all(exp.Placeholder, bfs=False))


def without_placeholders(tree: exp.Expr) -> exp.Expr:
    """A copy of `tree` with every placeholder NULL: what describing its types needs (each
    planned placeholder sits inside a CAST, so the types do not change)."""

    def to_null(node: exp.Expr) -> exp.Expr:
        return exp.null() if isinstance(node, exp.Placeholder) else node

    return tree.transform(to_null, copy=True)
