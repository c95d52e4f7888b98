"""The names of a query's result columns: the ones DuckDB gives the query as the user wrote it.

meshgate's dialect is DuckDB's, so a client sees the names DuckDB itself would return: an
alias exactly as written (`AS "Excess Discount Amount"`, `AS Total`), a column by its
relation's name for it (`o.AMOUNT` -> `amount`), any other expression by DuckDB's own text of
it (`count(*)` -> `count_star()`, `sum(l_quantity)`, `(a + 1)`, `current_user`), the columns of
a VALUES list `col0, col1, ...`, and a set operation by its first branch. DuckDB's parser
computes them from the text (nothing is bound or run), so they never depend on how meshgate
rewrote the query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshgate.sql.duckdb_parser import parse_tree, rendered

_TEMPLATE: dict[str, Any] | None = None


def output_names(sql: str, planned: Sequence[str]) -> tuple[str, ...]:
    """The client's column names for the query `sql`, whose plan returns `planned`.

    The plan's names stay where the text does not decide one: a plain column and the columns
    a `*` expands to (named after the product's columns), and every column when DuckDB cannot
    parse the text.
    """
    tree = parse_tree(sql)
    statements = tree.get("statements") if not tree.get("error") else None
    if not isinstance(statements, list) or len(statements) != 1:
        return tuple(planned)
    written = _select_list(statements[0].get("node"))
    if written is None:
        return tuple(planned)
    names = list(planned)
    stars = [i for i, name in enumerate(written) if name is None]
    head = written[: stars[0]] if stars else written
    tail = written[stars[-1] + 1 :] if stars else []
    if (not stars and len(written) != len(planned)) or len(head) + len(tail) > len(planned):
        return tuple(planned)
    for position, name in enumerate(head):
        names[position] = name or names[position]
    for offset, name in enumerate(reversed(tail), start=1):
        names[-offset] = name or names[-offset]
    return tuple(names)


def _select_list(node: Any) -> list[str | None] | None:
    """Each select-list entry's name (None for a star), from the first SELECT of `node`."""
    while isinstance(node, dict) and node.get("type") == "SET_OPERATION_NODE":
        node = node.get("left")
    if not isinstance(node, dict) or node.get("type") != "SELECT_NODE":
        return None
    entries = node.get("select_list")
    if not isinstance(entries, list):
        return None
    return [_name(entry) for entry in entries]


def _name(entry: dict[str, Any]) -> str | None:
    if entry.get("alias"):
        return str(entry["alias"])
    kind = entry.get("class")
    if kind == "STAR":
        return None
    if kind == "COLUMN_REF":
        return ""  # DuckDB names it as its relation does, whatever the case it was written in
    return _expression_text(entry) or ""  # "": the plan's name


def _expression_text(entry: dict[str, Any]) -> str | None:
    """DuckDB's text of one expression: how its binder names an unaliased column."""
    global _TEMPLATE  # noqa: PLW0603 - DuckDB's own tree of `SELECT 1`, built once
    if _TEMPLATE is None:
        _TEMPLATE = parse_tree("SELECT 1")
    statement = dict(_TEMPLATE["statements"][0])
    statement["node"] = {**statement["node"], "select_list": [entry]}
    text = rendered({**_TEMPLATE, "statements": [statement]})
    prefix = "SELECT "
    return text[len(prefix) :] if text is not None and text.startswith(prefix) else None
