"""Size limits on client SQL, checked before the parser and after it (`server.limits`).

sqlglot's parser recurses once per nesting level and its simplifier is quadratic in the
length of an OR chain and cubic in an AND chain (measured: 200 ANDed conditions took 25 s,
300 took 79 s), so oversized input must be refused before those stages run, with an
INVALID_ARGUMENT that names the limit, instead of a RecursionError or a query that sits in
the optimiser for minutes. Every check here is linear in the text or the tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp

from meshgate.errors import SqlTooLarge

# What may hide a parenthesis: quoted strings and identifiers, comments; and parentheses.
_PAREN_SCAN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|[()]",
                         re.DOTALL)  # fmt: skip


@dataclass(frozen=True)
class SqlLimits:
    """The deployment's `server.limits` that bound one statement's text and tree."""

    max_sql_length: int = 1_000_000
    max_expression_depth: int = 150
    max_in_list: int = 10_000
    max_boolean_terms: int = 64


def check_text(sql: str, limits: SqlLimits) -> None:
    """Refuse text too long, or nested deeper in parentheses than any tree may be, unparsed."""
    if len(sql) > limits.max_sql_length:
        raise SqlTooLarge(
            f"the SQL text has {len(sql):,} characters, more than this server accepts "
            f"({limits.max_sql_length:,}, server.limits.max_sql_length); send a shorter "
            "statement (long IN lists of values belong in a table or a join)"
        )
    depth = deepest = 0
    for match in _PAREN_SCAN.finditer(sql):
        token = match.group()
        if token == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif token == ")":
            depth -= 1
    if deepest > limits.max_expression_depth:
        raise _too_deep(f"nests parentheses {deepest} levels deep", limits)


def check_tree(tree: exp.Expr, limits: SqlLimits) -> None:
    """Refuse a parsed statement nested too deeply, with too long an IN list, or too long a
    chain of AND / OR; iterative, so a deep tree cannot exhaust the stack here."""
    stack: list[tuple[exp.Expr, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_expression_depth:
            raise _too_deep(f"is nested more than {limits.max_expression_depth} levels deep",
                            limits)  # fmt: skip
        if isinstance(node, exp.In) and len(node.expressions) > limits.max_in_list:
            raise SqlTooLarge(
                f"an IN list has {len(node.expressions):,} values, more than this server "
                f"accepts ({limits.max_in_list:,}, server.limits.max_in_list); split the "
                "query, or join with a product that holds the values"
            )
        if isinstance(node, exp.And | exp.Or) and not _continues_chain(node):
            terms = _chain_length(node)
            if terms > limits.max_boolean_terms:
                word = "AND" if isinstance(node, exp.And) else "OR"
                raise SqlTooLarge(
                    f"a chain of {word} joins {terms} conditions, more than this server "
                    f"accepts ({limits.max_boolean_terms}, server.limits.max_boolean_terms); "
                    "write comparisons of one column with many values as "
                    "`column IN (value, ...)`, or split the query"
                )
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def _continues_chain(node: exp.Expr) -> bool:
    """Whether `node` is an inner link of a longer chain of its own connector (counted once,
    at the chain's top, so counting stays linear)."""
    parent = node.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    return type(parent) is type(node)


def _chain_length(top: exp.Expr) -> int:
    """How many conditions a chain of one connector joins, through parentheses (which the
    simplifier removes before its quadratic work)."""
    count = 0
    pending = [top]
    while pending:
        node = pending.pop()
        inner = node.unnest()
        if type(inner) is type(top):
            pending.extend((inner.this, inner.expression))
        else:
            count += 1
    return count


def _too_deep(what: str, limits: SqlLimits) -> SqlTooLarge:
    return SqlTooLarge(
        f"the statement {what}, more than this server accepts "
        f"({limits.max_expression_depth}, server.limits.max_expression_depth); flatten it: "
        "use IN (...) instead of chains of OR, CTEs (WITH) instead of nested subqueries"
    )
