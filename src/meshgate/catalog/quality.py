"""Quality expectations as queries, their results, and what they say of a product's health.

Each expectation becomes one aggregate query over the product as clients name it, so it runs
through the normal pipeline (policies, pushdown, audit) and the source answers with one row:
`not_null(email)` is `SELECT count(*) - count(email) FROM sales.customers`, never a scan the
engine counts. The query returns one number, the observed value: bad rows for most kinds, the
row count for `row_count`, the newest timestamp for `freshness`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlglot import exp

from meshgate.catalog.catalog import DataProduct
from meshgate.catalog.config import ExpectationConfig, duration_seconds

PASS = "pass"
FAIL = "fail"
ERROR = "error"  # the check could not run (source down, bad custom SQL): a failure
UNKNOWN = "unknown"


@dataclass(frozen=True)
class QualityResult:
    """One run of one expectation, as the results store keeps it."""

    product: str  # domain.product
    expectation: str  # ExpectationConfig.name, e.g. not_null(email)
    outcome: str  # PASS, FAIL or ERROR
    observed: float | None  # bad rows, the row count, or the freshness age in seconds
    checked_at: dt.datetime  # UTC
    duration_seconds: float
    detail: str = ""  # what was expected, or why the check could not run


@dataclass(frozen=True)
class ProductHealth:
    """A product's latest results summed up for `meshgate.products`."""

    last_checked_at: dt.datetime | None
    status: str  # PASS, FAIL or UNKNOWN
    failed: tuple[str, ...]
    freshness_age_seconds: float | None
    freshness_ok: bool | None
    row_count_estimate: int | None


class QualityLog(Protocol):
    """What the catalog reads of the results store."""

    def results(self, products: Sequence[str]) -> list[QualityResult]:
        """Every result of these products, oldest first."""

    def latest(self, products: Sequence[str]) -> list[QualityResult]:
        """The latest result of each expectation of these products."""

    def row_count_estimates(self) -> dict[str, int]:
        """The latest row count estimate per product (domain.product), where one is known."""


def check_query(product: DataProduct, expectation: ExpectationConfig) -> exp.Query:
    """The one aggregate query that measures `expectation` on `product`.

    e.g. accepted_values(status) -> SELECT count(*) FROM d.p WHERE status NOT IN ('a', 'b').
    """
    table = exp.table_(product.name, db=product.domain, quoted=True)
    if expectation.not_null is not None:
        column = _column(expectation.not_null)
        bad = exp.Sub(this=exp.Count(this=exp.Star()), expression=exp.Count(this=column))
        return exp.select(exp.alias_(bad, "observed")).from_(table)
    if expectation.unique is not None:
        keys = [_column(c) for c in expectation.columns()]
        duplicates = (
            exp.select(*keys).from_(table)
            .where(exp.and_(*(exp.Not(this=exp.Is(this=k.copy(), expression=exp.Null()))
                              for k in keys)))
            .group_by(*(k.copy() for k in keys))
            .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
        )  # fmt: skip
        return exp.select(exp.alias_(exp.Count(this=exp.Star()), "observed")).from_(
            duplicates.subquery("duplicated_keys")
        )
    if expectation.accepted_values is not None:
        spec = expectation.accepted_values
        column = _column(spec.column)
        accepted = [_value(product, spec.column, v) for v in spec.values]
        outside = exp.Not(this=exp.In(this=column, expressions=accepted))
        return _bad_rows(table, outside)
    if expectation.range is not None:
        bounds = expectation.range
        outside_bounds: list[exp.Expr] = []
        if bounds.min is not None:
            low = _value(product, bounds.column, bounds.min)
            outside_bounds.append(exp.LT(this=_column(bounds.column), expression=low))
        if bounds.max is not None:
            high = _value(product, bounds.column, bounds.max)
            outside_bounds.append(exp.GT(this=_column(bounds.column), expression=high))
        return _bad_rows(table, exp.or_(*outside_bounds))
    if expectation.row_count is not None:
        return exp.select(exp.alias_(exp.Count(this=exp.Star()), "observed")).from_(table)
    if expectation.freshness is not None:
        newest = exp.Max(this=_column(expectation.freshness.column))
        return exp.select(exp.alias_(newest, "observed")).from_(table)
    raise ValueError(f"{expectation.kind} has no query of its own")  # sql: the user's query


def judge(
    expectation: ExpectationConfig, observed: object, checked_at: dt.datetime
) -> tuple[str, float | None, str]:
    """(outcome, observed value as stored, what was expected) for one query's answer."""
    if expectation.freshness is not None:
        fresh = expectation.freshness
        limit = duration_seconds(fresh.max_age)
        expected = f"newest {fresh.column} at most {fresh.max_age} old"
        if observed is None:
            return FAIL, None, f"{expected}; the product has no rows"
        age = (checked_at - _as_utc(observed)).total_seconds()
        return (PASS if age <= limit else FAIL), age, expected
    if expectation.row_count is not None:
        count = _number(observed)
        low, high = expectation.row_count.min, expectation.row_count.max
        ok = (low is None or count >= low) and (high is None or count <= high)
        bounds = " and ".join(p for p in (f">= {low}" if low is not None else "",
                                          f"<= {high}" if high is not None else "") if p)
        return (PASS if ok else FAIL), count, f"row count {bounds}"
    bad = _number(observed)
    return (PASS if bad == 0 else FAIL), bad, "0 bad rows"


def health(
    product: DataProduct,
    declared: Sequence[ExpectationConfig],
    results: Sequence[QualityResult],
    row_count_estimate: int | None,
) -> ProductHealth:
    """The latest result of each declared expectation: all pass -> pass, any fails -> fail,
    else (never checked, or not every expectation yet) unknown."""
    latest: dict[str, QualityResult] = {}
    for result in results:
        if result.product == product.qualified_name:
            latest[result.expectation] = result
    current = [latest[e.name] for e in declared if e.name in latest]
    failed = tuple(r.expectation for r in current if r.outcome != PASS)
    if failed:
        status = FAIL
    elif declared and len(current) == len(declared):
        status = PASS
    else:
        status = UNKNOWN
    fresh = next((latest.get(e.name) for e in declared if e.freshness is not None), None)
    return ProductHealth(
        max((r.checked_at for r in current), default=None),
        status,
        failed,
        None if fresh is None else fresh.observed,
        None if fresh is None or fresh.outcome == ERROR else fresh.outcome == PASS,
        row_count_estimate,
    )


def _bad_rows(table: exp.Table, condition: exp.Expr) -> exp.Query:
    return (exp.select(exp.alias_(exp.Count(this=exp.Star()), "observed"))
            .from_(table).where(condition))  # fmt: skip


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _value(product: DataProduct, column: str, value: str | int | float | bool) -> exp.Expr:
    """A literal; text given for a column of another type (a date bound) is cast to it."""
    literal = exp.convert(value)
    declared = next(c.sql_type for c in product.columns if c.name == column)
    if isinstance(value, str) and not declared.is_type(*exp.DataType.TEXT_TYPES):
        return exp.Cast(this=literal, to=declared.copy())
    return literal


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"the check returned {value!r}, not a number") from None
    return float(value)


def _as_utc(value: object) -> dt.datetime:
    """A timestamp or date as an aware UTC instant (naive values are taken as UTC)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise ValueError(f"freshness needs a timestamp; the column's newest value is {value!r}")
