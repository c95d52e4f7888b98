"""Holes the adversarial suite found in the engine, each pinned by the query that showed it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshgate.demo.generate import build_tables
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
