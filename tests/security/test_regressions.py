"""Holes the adversarial suite found in the engine, each pinned by the query that showed it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshgate.demo.generate import build_tables
from meshgate.errors import ParameterError, QueryValueError, Status
from meshgate.service import QueryService


@pytest.fixture(scope="module")
def demo_service(demo_dir: Path) -> Iterator[QueryService]:
    service = QueryService.from_config(demo_dir)
    yield service
    service.close()


@pytest.mark.parametrize("user", ["admin", "analyst"])
def test_partitioned_window_over_a_fragment_stream_keeps_every_row(
    demo_service: QueryService, user: str
) -> None:
    """DuckDB 1.5 rewrote a partitioned window into a self-join of the scan, reading the
    one-shot fragment stream twice: the query answered no rows at all."""
    rows = demo_service.query(
        "SELECT region, id, count(*) OVER (PARTITION BY region) AS n FROM hr.employees",
        demo_service.principal(user),
    ).to_pylist()
    employees = build_tables().hr["employees"].to_pylist()
    regions = {"admin": {"EU", "US", "APAC"}, "analyst": {"EU"}}[user]
    visible = [e for e in employees if e["region"] in regions]
    per_region = {r: sum(1 for e in visible if e["region"] == r) for r in regions}
    assert sorted((r["region"], r["id"], r["n"]) for r in rows) == sorted(
        (e["region"], e["id"], per_region[e["region"]]) for e in visible
    )


def test_a_projected_parameter_of_another_type_is_a_user_error(demo_service: QueryService) -> None:
    """`SELECT ? AS v` is prepared as INTEGER (the placeholder has no type); executing it with
    text failed casting the rows to the announced schema: an internal error."""
    analyst = demo_service.principal("analyst")
    sql = "SELECT ? AS v, count(*) AS n FROM hr.employees"
    with pytest.raises(ParameterError, match=r"CAST\(\? AS VARCHAR\)") as caught:
        demo_service.query(sql, analyst, ("text",))
    assert caught.value.status is Status.INVALID_ARGUMENT
    assert demo_service.query(sql, analyst, (7,)).to_pylist() == [{"v": 7, "n": 376}]
    cast = "SELECT CAST(? AS VARCHAR) AS v, count(*) AS n FROM hr.employees"
    assert demo_service.query(cast, analyst, ("text",)).to_pylist() == [{"v": "text", "n": 376}]


@pytest.mark.parametrize(("sql", "kind"), [
    ("SELECT CAST(name AS INTEGER) FROM hr.employees",
     "a cast or comparison to INTEGER failed: a value could not be converted"),
    ("SELECT id FROM hr.employees WHERE hire_date > 'notadate'",
     "a cast or comparison to DATE failed: a text value is not a valid date or time"),
    ("SELECT CAST(ssn AS DATE) FROM hr.employees",
     "a cast or comparison to DATE failed: a text value is not a valid date or time"),
])
def test_a_value_error_is_the_query_s_fault_and_quotes_no_value(
    demo_service: QueryService, sql: str, kind: str
) -> None:
    """A failed cast in the merge answered UNAVAILABLE ("a source is down") and quoted the
    row's value it failed on."""
    with pytest.raises(QueryValueError) as caught:
        demo_service.query(sql, demo_service.principal("analyst"))
    assert caught.value.status is Status.INVALID_ARGUMENT
    assert caught.value.message == (
        f"a value in this query cannot be computed ({kind}); check the casts, the literals "
        "compared with columns and the arithmetic in the query"
    )
    # the engine's own text, which quotes the value, is the operator's only
    assert caught.value.detail is not None
    assert caught.value.detail.startswith("the merge: Conversion Error:")
