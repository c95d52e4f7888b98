"""Whole-query proposals as the planner makes them, for the PostgreSQL connector tests."""

from __future__ import annotations

from sqlglot import exp, parse_one

from meshgate.spi import Connector, PushedQuery, ScanInput, SourceTable
from meshgate.sqlconnector.describe import engine_schema


def offer(conn: Connector, sql: str) -> PushedQuery | None:
    """`apply_query` of a canonical SELECT, its tables typed as the source declares them and
    the handle typed with engine semantics (what `Planner` sends)."""
    query = parse_one(sql, read="duckdb")
    assert isinstance(query, exp.Select)
    inputs: dict[str, ScanInput] = {}
    for table in query.find_all(exp.Table):
        source_table = SourceTable(table.db or None, table.name)
        columns = tuple(conn.table_columns(source_table))
        alias = table.alias_or_name
        inputs.setdefault(alias, ScanInput(alias, source_table, columns))
    planned = tuple(inputs.values())
    return conn.apply_query(query, engine_schema(query, planned), planned)
