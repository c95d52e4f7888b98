"""The type a prepared statement announces for each parameter, read from where it is used.

JDBC's `setInt` / `setDate` bind into a column of the announced type and refuse a mismatch
(flightsql-clients.md P6), so a parameter compared with a column takes that column's type as
the caller sees it (a masked or filtered product's barrier column included). Only where the
query says nothing (a parameter in a function call, in arithmetic, selected as a value) is it
announced as text, which any client can bind and which the plan then types by its value.
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from meshgate.errors import ConfigError
from meshgate.query.model import SecuredQuery
from meshgate.rewrite.barrier import RewrittenQuery
from meshgate.rewrite.rules import physical_schema, qualify_query
from meshgate.spi import CANONICAL_DIALECT
from meshgate.spi.parameters import parameter_position
from meshgate.types import arrow_type

UNKNOWN_PARAMETER_TYPE = pa.string()

_COMPARED = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ,
             exp.NullSafeNEQ)  # fmt: skip
_TEXT_MATCH = (exp.Like, exp.ILike)
_UNTYPED = {exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL}
_COUNT = exp.DataType.build("BIGINT")
_TEXT = exp.DataType.build("VARCHAR")


def parameter_schema(secured: SecuredQuery, count: int) -> pa.Schema:
    """One field per client parameter, named by position ("0", "1", ... as ADBC names what
    it binds), typed by `parameter_sql_types`; text where nothing is known.

    `SELECT * FROM "$src".s.orders AS o WHERE o.id = $1 LIMIT $2` -> `0: int64, 1: int64`.
    """
    found = parameter_sql_types(secured, count)
    return pa.schema([pa.field(str(i), _arrow(t)) for i, t in enumerate(found)])


def parameter_sql_types(secured: SecuredQuery, count: int) -> tuple[exp.DataType | None, ...]:
    """The SQL type of each parameter `$k` (by client position) from its first use that
    tells: a comparison, BETWEEN or IN with a typed expression, LIKE (text), a CAST, LIMIT or
    OFFSET (BIGINT); None where no use tells."""
    schema = physical_schema(secured.tables, secured.local_tables, secured.barriers)
    tree = qualify_query(secured.tree, schema)
    annotate_types(tree, schema=schema, dialect=CANONICAL_DIALECT)
    found: list[exp.DataType | None] = [None] * count
    for node in tree.find_all(exp.Placeholder, bfs=False):
        position = parameter_position(node)
        if 0 <= position < count and found[position] is None:
            found[position] = use_type(node)
    return tuple(found)


def use_type(node: exp.Placeholder) -> exp.DataType | None:
    """The type a placeholder takes from the expression it sits in (after annotate_types)."""
    child: exp.Expr = node
    parent = node.parent
    while isinstance(parent, exp.Paren):
        child, parent = parent, parent.parent
    if isinstance(parent, exp.Cast):
        return parent.to
    if isinstance(parent, exp.Limit | exp.Offset):
        return _COUNT
    if isinstance(parent, _TEXT_MATCH):
        return _TEXT
    others: list[exp.Expr] = []
    if isinstance(parent, _COMPARED):
        others = [parent.expression if parent.this is child else parent.this]
    elif isinstance(parent, exp.Between):
        others = [parent.args["low"], parent.args["high"]] if parent.this is child \
            else [parent.this]
    elif isinstance(parent, exp.In):
        others = list(parent.expressions) if parent.this is child else [parent.this]
    for other in others:
        if other is child:
            continue
        typed = other.type
        if isinstance(typed, exp.DataType) and typed.this not in _UNTYPED:
            return typed
    return None


def _arrow(sql_type: exp.DataType | None) -> pa.DataType:
    if sql_type is None:
        return UNKNOWN_PARAMETER_TYPE
    try:
        return arrow_type(sql_type)
    except ConfigError:  # a type clients cannot be offered as a parameter: bind it as text
        return UNKNOWN_PARAMETER_TYPE


def planned_types(rewritten: RewrittenQuery, count: int) -> tuple[exp.DataType | None, ...]:
    """The type each of the first `count` parameters is cast to in a rewritten query (its
    tree or a barrier body a predicate moved into); None for one the plan holds as NULL."""
    found: list[exp.DataType | None] = [None] * count
    trees = [rewritten.tree, *(b.body for b in rewritten.barriers.values())]
    for tree in trees:
        for cast in tree.find_all(exp.Cast):
            if isinstance(cast.this, exp.Placeholder):
                position = parameter_position(cast.this)
                if 0 <= position < count and found[position] is None:
                    found[position] = cast.to
    return tuple(found)
