"""Capability sets SQL connectors build their tables from, and the check of one node.

A connector declares what it evaluates exactly as the engine does (`Capabilities` in the SPI)
as unions of these sets, e.g. `COMPARISONS | BOOLEAN_LOGIC | frozenset({exp.Like})`; the
contract suite (tests/contract) proves each declaration against the real source.
"""

from __future__ import annotations

from sqlglot import exp

from meshgate.spi import CANONICAL_DIALECT, Capabilities, JoinKind

# Node classes every SELECT a handle can hold is made of; never a capability of their own.
STRUCTURAL: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Select, exp.From, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered,
        exp.Limit, exp.Offset, exp.Join, exp.Column, exp.Identifier, exp.Table, exp.TableAlias,
        exp.Alias, exp.Literal, exp.Boolean, exp.Null, exp.DataType, exp.DataTypeParam,
        exp.Paren, exp.Star, exp.Distinct, exp.Var,
    }
)  # fmt: skip

COMPARISONS: frozenset[type[exp.Expr]] = frozenset(
    {exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between, exp.Is}
)
BOOLEAN_LOGIC: frozenset[type[exp.Expr]] = frozenset({exp.And, exp.Or, exp.Not})
# Null-safe comparisons and arithmetic every SQL source spells alike (division is typed later).
ARITHMETIC: frozenset[type[exp.Expr]] = frozenset(
    {exp.NullSafeEQ, exp.NullSafeNEQ, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg}
)

# What a DuckDB-dialect source (the engine's own dialect) evaluates exactly as the engine does.
CANONICAL_EXPRESSIONS: frozenset[type[exp.Expr]] = (
    COMPARISONS
    | BOOLEAN_LOGIC
    | ARITHMETIC
    | frozenset(
        {
            exp.IntDiv, exp.Like, exp.ILike, exp.Escape, exp.Case, exp.If, exp.Cast,
            exp.TryCast, exp.Coalesce, exp.Nullif, exp.Lower, exp.Upper, exp.Length,
            exp.Substring, exp.Trim, exp.Concat, exp.DPipe, exp.StartsWith, exp.Contains,
            exp.StrPosition, exp.Left, exp.Right, exp.Replace, exp.Abs, exp.Round, exp.Floor,
            exp.Ceil, exp.Sign, exp.Sqrt, exp.Greatest, exp.Least, exp.Extract, exp.Year,
            exp.Month, exp.Day, exp.DayOfWeek, exp.TimestampTrunc, exp.DateTrunc, exp.DateDiff,
            exp.Interval, exp.Subquery, exp.Exists, exp.Union, exp.Intersect, exp.Except,
            exp.With, exp.CTE,
        }
    )
)  # fmt: skip
CANONICAL_AGGREGATES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.CountIf, exp.LogicalAnd,
        exp.LogicalOr, exp.Stddev, exp.StddevSamp, exp.StddevPop, exp.Variance,
        exp.VariancePop,
    }
)  # fmt: skip

# A source that runs on DuckDB itself evaluates everything exactly as the merge does.
ENGINE_CAPABILITIES = Capabilities(
    dialect=CANONICAL_DIALECT,
    expressions=CANONICAL_EXPRESSIONS,
    aggregates=CANONICAL_AGGREGATES,
    join_kinds=frozenset(JoinKind),
    text_ordering_matches_engine=True,
    text_equality_matches_engine=True,
    decorrelates_subqueries=True,
)


def declares(node: exp.Expr, capabilities: Capabilities) -> bool:
    """Whether the capability table lists `node` (its class, function name or join kind).

    e.g. a `RIGHT JOIN` node with `join_kinds={INNER, LEFT}` -> False.
    """
    if isinstance(node, exp.Join):
        return join_kind(node) in capabilities.join_kinds
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in capabilities.functions
    if type(node) in STRUCTURAL | capabilities.expressions | capabilities.aggregates:
        return True
    return isinstance(node, exp.Func) and node.sql_name().lower() in capabilities.functions


def join_kind(join: exp.Join) -> JoinKind:
    """The kind of one JOIN clause; a join with no condition (or `CROSS JOIN`) is CROSS."""
    side = (join.side or "").upper()
    if side in ("LEFT", "RIGHT", "FULL"):
        return JoinKind[side]
    if (join.kind or "").upper() == "CROSS" or not (join.args.get("on") or join.args.get("using")):
        return JoinKind.CROSS
    return JoinKind.INNER
