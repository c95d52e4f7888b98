"""`streams`: what a source in meshgate's process may still run for an out-of-process residual
(row by row, in bounded memory), and what it may not (it would hold the rows)."""

from __future__ import annotations

import pytest
from sqlglot import exp, parse_one

from meshgate.planner.federate import streams

STREAMING = [
    "SELECT a, b + 1 AS c FROM t WHERE b > 2",
    "SELECT a FROM t LIMIT 10",
    "SELECT a FROM t ORDER BY a LIMIT 10",
    "SELECT a FROM (SELECT a, b FROM t WHERE b = 1 OFFSET 0) AS s WHERE a > 1",
    "SELECT CASE WHEN a > 1 THEN 'x' ELSE 'y' END AS m FROM t",
]
HOLDING = [
    "SELECT a, sum(b) FROM t GROUP BY a",
    "SELECT count(*) FROM t",
    "SELECT DISTINCT a FROM t",
    "SELECT a FROM t ORDER BY a",
    "SELECT a, row_number() OVER (ORDER BY b) FROM t",
    "SELECT t.a FROM t JOIN u ON t.a = u.a",
    "SELECT t.a FROM t CROSS JOIN u",
    "SELECT a FROM t WHERE a IN (SELECT a FROM u)",
    "SELECT a FROM (SELECT a FROM t GROUP BY a) AS s",
    "SELECT a FROM t UNION ALL SELECT a FROM u",
]


@pytest.mark.parametrize("sql", STREAMING)
def test_streams(sql: str) -> None:
    query = parse_one(sql, dialect="duckdb")
    assert isinstance(query, exp.Query)
    assert streams(query)


@pytest.mark.parametrize("sql", HOLDING)
def test_holds_rows(sql: str) -> None:
    query = parse_one(sql, dialect="duckdb")
    assert isinstance(query, exp.Query)
    assert not streams(query)
