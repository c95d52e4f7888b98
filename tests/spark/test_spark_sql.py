"""The residual as Spark SQL: DuckDB's semantics written out where Spark's differ."""

from __future__ import annotations

from sqlglot import exp, parse_one

from meshgate.execution.spark import spark_sql


def _spark(sql: str) -> str:
    query = parse_one(sql, dialect="duckdb")
    assert isinstance(query, exp.Query)
    return spark_sql(query, ())[0]


def test_divisions_and_averages_are_over_doubles_as_duckdbs_are() -> None:
    """Spark divides and averages decimals as decimals, rounded (Q8's share, Q1's avg_qty)."""
    assert _spark("SELECT sum(a) / count(b), avg(c), avg(DISTINCT d) FROM t") == (
        "SELECT CAST(SUM(a) AS DOUBLE) / COUNT(b), AVG(CAST(c AS DOUBLE)), "
        "AVG(DISTINCT CAST(d AS DOUBLE)) FROM t")
