"""Statement shapes: a query text with the literals of its conditions taken out as parameters,
so that texts differing only in those values share one plan.

A client sending point lookups as `WHERE id = 42`, `WHERE id = 43`, ... sends one shape,
`WHERE id = $1`, which is planned once per caller and bound with each text's value. Only
literals whose value cannot change what the plan means are taken: a number or a string
compared (=, <>, <, <=, >, >=, BETWEEN, IN) with a column, in a WHERE, HAVING or JOIN ... ON
condition. Everything else stays in the text (LIMIT and OFFSET counts, select-list values,
function arguments, LIKE patterns, INTERVALs, typed literals such as DATE '...'), so a
different value there is a different shape.

A shape is recognised from tokens alone: sqlglot's tokenizer is much cheaper than its parser,
and a literal's value never changes how the tokens around it parse. Two texts with the same
tokens apart from the values of a shape's literals are the same statement with other values.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import TokenError
from sqlglot.tokenizer_core import Token, TokenType
from sqlglot.tokens import Tokenizer

from meshgate.query.model import Statement

_LITERALS = frozenset({TokenType.STRING, TokenType.NUMBER})
_COMPARED = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_CONNECTIVES = (exp.And, exp.Or, exp.Not, exp.Paren)
# Numbers typed exactly as DuckDB types the literal (INTEGER, BIGINT, DECIMAL(p, s)).
_INTEGER = re.compile(r"0|[1-9][0-9]{0,17}")
_DECIMAL = re.compile(r"(0|[1-9][0-9]*)\.[0-9]+")
_DECIMAL_DIGITS = 38

TokenKey = tuple[Hashable, ...]


@dataclass(frozen=True)
class Shaped:
    """A statement with some of its literals as parameters `$1..$m`, in text order.

    `parameters` are the ordinals (among the text's literal tokens) of those literals, and
    `values` their values, what the plan binds.
    """

    statement: Statement
    parameters: frozenset[int]
    values: tuple[Any, ...]


_TOKENIZERS = threading.local()  # one per thread: a tokenizer keeps its state while it runs


def statement_tokens(text: str) -> list[Token] | None:
    """The tokens of `text` in meshgate's dialect, or None if it does not tokenize (the
    parser then reports the error)."""
    tokenizer: Tokenizer | None = getattr(_TOKENIZERS, "tokenizer", None)
    if tokenizer is None:
        tokenizer = DuckDB().tokenizer()
        _TOKENIZERS.tokenizer = tokenizer
    try:
        return list(tokenizer.tokenize(text))
    except TokenError:
        return None


def unshaped_key(tokens: Sequence[Token]) -> TokenKey:
    """The tokens with every literal's value left out: what finds a text's shape."""
    return tuple(
        t.token_type if t.token_type in _LITERALS else (t.token_type, t.text) for t in tokens
    )


def shape_key(tokens: Sequence[Token], parameters: frozenset[int]) -> TokenKey:
    """The tokens with the values of the literals `parameters` (ordinals) left out."""
    key: list[Hashable] = []
    ordinal = 0
    for token in tokens:
        if token.token_type in _LITERALS:
            taken = ordinal in parameters
            ordinal += 1
            key.append(token.token_type if taken else (token.token_type, token.text))
        else:
            key.append((token.token_type, token.text))
    return tuple(key)


def bound_values(tokens: Sequence[Token], parameters: frozenset[int]) -> tuple[Any, ...] | None:
    """The values of the literals `parameters` in text order, or None if one of them has no
    parameter value typed as its literal is (a number DuckDB would read as DOUBLE)."""
    values: list[Any] = []
    literals = [t for t in tokens if t.token_type in _LITERALS]
    for ordinal in sorted(parameters):
        if ordinal >= len(literals):
            return None
        value = literal_value(literals[ordinal])
        if value is None:
            return None
        values.append(value)
    return tuple(values)


def literal_value(token: Token) -> Any:
    """The Python value a literal token stands for, typed as DuckDB types the literal: an int
    (INTEGER or BIGINT), a Decimal, a str; None for a number written otherwise (`1e3`, `.5`,
    `007`, or too large), which stays in the text."""
    if token.token_type == TokenType.STRING:
        return token.text
    text = token.text
    if _INTEGER.fullmatch(text):
        number = int(text)
        return number if number < 2**63 else None
    if _DECIMAL.fullmatch(text) and len(text) - 1 <= _DECIMAL_DIGITS:
        return decimal.Decimal(text)
    return None


def shaped(statement: Statement, tokens: Sequence[Token]) -> Shaped | None:
    """`statement` with its condition literals as parameters, or None if it has none (or
    parameters of its own, or is an EXPLAIN, whose plan shows the values).

    `SELECT name FROM crm.customers WHERE id = 42 LIMIT 5` ->
    `SELECT name FROM crm.customers WHERE id = $1 LIMIT 5`, values (42,).
    """
    if statement.explain or statement.parameter_count:
        return None
    ordinals = {t.start: i for i, t in enumerate(t for t in tokens if t.token_type in _LITERALS)}
    literals = [t for t in tokens if t.token_type in _LITERALS]
    tree = statement.tree.copy()
    chosen: list[tuple[int, exp.Literal, Any]] = []
    for node in tree.find_all(exp.Literal):
        start = (node.meta or {}).get("start")
        ordinal = ordinals.get(start) if isinstance(start, int) else None
        if ordinal is None or not _is_condition_value(node):
            continue
        token = literals[ordinal]
        value = literal_value(token)
        if value is None or node.is_string != (token.token_type == TokenType.STRING):
            continue
        if node.this != token.text:
            continue
        chosen.append((ordinal, node, value))
    if not chosen:
        return None
    chosen.sort(key=lambda found: found[0])
    for number, (_, node, _) in enumerate(chosen, start=1):
        node.replace(exp.Placeholder(this=str(number)))
    assert isinstance(tree, exp.Query)
    parameters = frozenset(ordinal for ordinal, _, _ in chosen)
    values = tuple(value for _, _, value in chosen)
    return Shaped(Statement(tree=tree, explain=False, parameter_count=len(values),
                            sql=statement.sql), parameters, values)  # fmt: skip


def _is_condition_value(node: exp.Literal) -> bool:
    """A literal compared with a column, the comparison a conjunct of a WHERE, HAVING or
    JOIN ... ON condition (through AND, OR, NOT and parentheses only)."""
    comparison = node.parent
    if isinstance(comparison, _COMPARED):
        other = comparison.expression if comparison.this is node else comparison.this
    elif isinstance(comparison, exp.Between) and comparison.this is not node:
        other = comparison.this
    elif isinstance(comparison, exp.In) and node.arg_key == "expressions":
        if comparison.args.get("query") is not None or comparison.args.get("unnest"):
            return False
        other = comparison.this
    else:
        return False
    if not isinstance(other, exp.Column) or comparison is None:
        return False
    condition: exp.Expr | None = comparison
    while condition is not None and isinstance(condition.parent, _CONNECTIVES):
        condition = condition.parent
    holder = condition.parent if condition is not None else None
    if isinstance(holder, (exp.Where, exp.Having)):
        return True
    return isinstance(holder, exp.Join) and condition is not None and condition.arg_key == "on"


_TEXT_TYPES = frozenset({exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT,
                         exp.DataType.Type.CHAR, exp.DataType.Type.NVARCHAR,
                         exp.DataType.Type.NCHAR})  # fmt: skip
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?"
)


def binds_as_literal(value: Any, planned: exp.DataType | None) -> bool:
    """Whether `value`, bound where the plan casts it to `planned`, is certain to mean what
    the literal meant in the text: always for a number; for a string, when it is compared as
    text, or is a plain ISO date (timestamp) compared with a DATE (TIMESTAMP). Anything else
    (a string read as a number, a boolean, a malformed date) is planned with its literal, so
    the user gets the answer, or the error, that the literal gives."""
    if not isinstance(value, str):
        return planned is not None
    if planned is None:
        return False
    if planned.this in _TEXT_TYPES:
        return True
    try:
        if planned.this == exp.DataType.Type.DATE and _DATE.fullmatch(value):
            dt.date.fromisoformat(value)
            return True
        if planned.this == exp.DataType.Type.TIMESTAMP and _TIMESTAMP.fullmatch(value):
            dt.datetime.fromisoformat(value)
            return True
    except ValueError:
        return False
    return False
