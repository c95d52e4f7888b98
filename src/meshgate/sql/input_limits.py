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

# What may hide a token: quoted strings and identifiers, comments; and the tokens counted.
_SCAN = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|[(),]"
    r"|\b(?:AND|OR|IN|BETWEEN|WHEN|THEN|ELSE|END|SELECT|FROM|WHERE|ON|HAVING|QUALIFY)\b",
    re.DOTALL | re.IGNORECASE)  # fmt: skip
# Words that end one expression and start another: a chain never spans them (nor a comma).
_SEPARATORS = frozenset({"WHEN", "THEN", "ELSE", "END", "SELECT", "FROM", "WHERE", "ON",
                         "HAVING", "QUALIFY"})  # fmt: skip


@dataclass
class _Group:
    """One level of parentheses (or the whole text) while scanning: what it holds."""

    in_list: bool = False  # opened right after IN
    items: int = 1
    ands: int = 0
    ors: int = 0
    betweens: int = 0  # each BETWEEN's AND is no connector


@dataclass(frozen=True)
class SqlLimits:
    """The deployment's `server.limits` that bound one statement's text and tree."""

    max_sql_length: int = 1_000_000
    max_expression_depth: int = 150
    max_in_list: int = 1_000
    max_boolean_terms: int = 64


def check_text(sql: str, limits: SqlLimits) -> None:
    """Refuse text too long, nested deeper in parentheses than any tree may be, or with an
    IN list or an AND / OR chain past its limit, before the parser spends seconds on it.

    One regular-expression scan: strings, quoted names and comments are skipped; each level
    of parentheses counts its commas (an IN list's values) and its ANDs and ORs. A chain
    spread over several parenthesised groups is caught after parsing (`check_tree`).
    """
    if len(sql) > limits.max_sql_length:
        raise SqlTooLarge(
            f"the SQL text has {len(sql):,} characters, more than this server accepts "
            f"({limits.max_sql_length:,}, server.limits.max_sql_length); send a shorter "
            "statement (long IN lists of values belong in a table or a join)"
        )
    groups = [_Group()]
    previous_end, previous = 0, ""
    for match in _SCAN.finditer(sql):
        token = match.group().upper()
        group = groups[-1]
        if token == "(":
            after_in = previous == "IN" and not sql[previous_end:match.start()].strip()
            groups.append(_Group(in_list=after_in))
            if len(groups) - 1 > limits.max_expression_depth:
                raise _too_deep(f"nests parentheses more than {limits.max_expression_depth} "
                                "levels deep", limits)  # fmt: skip
        elif token == ")" and len(groups) > 1:
            groups.pop()
        elif token == ",":
            group.items += 1
            group.ands = group.ors = group.betweens = 0
            if group.in_list and group.items > limits.max_in_list:
                raise _long_in_list(f"more than {limits.max_in_list:,}", limits)
        elif token in _SEPARATORS:
            group.ands = group.ors = group.betweens = 0
        elif token in ("AND", "OR", "BETWEEN"):
            if token == "AND":
                group.ands += 1
            elif token == "OR":
                group.ors += 1
            else:
                group.betweens += 1
            terms = max(group.ors, group.ands - group.betweens) + 1
            if terms > limits.max_boolean_terms:
                word = "OR" if group.ors + 1 == terms else "AND"
                raise _long_chain(word, f"more than {limits.max_boolean_terms}", limits)
        previous_end, previous = match.end(), token


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
            raise _long_in_list(f"{len(node.expressions):,}", limits)
        if isinstance(node, exp.And | exp.Or) and not _continues_chain(node):
            terms = _chain_length(node)
            if terms > limits.max_boolean_terms:
                word = "AND" if isinstance(node, exp.And) else "OR"
                raise _long_chain(word, str(terms), limits)
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


def _long_in_list(count: str, limits: SqlLimits) -> SqlTooLarge:
    return SqlTooLarge(
        f"an IN list has {count} values, more than this server accepts "
        f"({limits.max_in_list:,}, server.limits.max_in_list); split the query, or join with "
        "a product that holds the values"
    )


def _long_chain(word: str, count: str, limits: SqlLimits) -> SqlTooLarge:
    return SqlTooLarge(
        f"a chain of {word} joins {count} conditions, more than this server accepts "
        f"({limits.max_boolean_terms}, server.limits.max_boolean_terms); write comparisons "
        "of one column with many values as `column IN (value, ...)`, or split the query"
    )


def _too_deep(what: str, limits: SqlLimits) -> SqlTooLarge:
    return SqlTooLarge(
        f"the statement {what}, more than this server accepts "
        f"({limits.max_expression_depth}, server.limits.max_expression_depth); flatten it: "
        "use IN (...) instead of chains of OR, CTEs (WITH) instead of nested subqueries"
    )
