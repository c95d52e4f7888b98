"""The rows a minimal per-table pushdown of a TPC-H query moves out of PostgreSQL.

For every reference to a PostgreSQL table in the query, the pushdown an expert would write as a
baseline sends that table with every filter that reads that one table alone (the conjuncts of
its WHERE, and of the ON of the join that brings it in, whose columns all belong to it; none
holding a subquery) and only the columns the query needs. Columns do not change the row count,
so each reference is counted with one `SELECT count(*) ... WHERE <its filters>` in PostgreSQL
itself. Joins pushed whole (Q3's customer JOIN orders) can move fewer rows than this baseline;
an engine that pulls tables unfiltered moves more.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import adbc_driver_postgresql.dbapi as pg
import sqlglot
from sqlglot import exp

from benchmarks.tpch import DOMAIN

# TPC-H column prefixes: every column name says which table it belongs to.
PREFIXES = {
    "customer": "c_", "orders": "o_", "nation": "n_", "region": "r_", "supplier": "s_",
    "lineitem": "l_", "part": "p_", "partsupp": "ps_",
}  # fmt: skip


@dataclass(frozen=True)
class Reference:
    """One reference to a PostgreSQL table and the count query of its minimal pushdown."""

    table: str
    alias: str
    count_sql: str


def references(sql: str, postgres_tables: Collection[str], pg_schema: str) -> list[Reference]:
    """The minimal per-table pushdowns of the PostgreSQL tables `sql` reads (DuckDB dialect)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    found = []
    for table in tree.find_all(exp.Table):
        if table.db != DOMAIN or table.name not in postgres_tables:
            continue
        alias = table.alias_or_name
        select = table.find_ancestor(exp.Select)
        conjuncts = _filters_of(table, alias, select) if select is not None else []
        target = exp.Table(this=exp.to_identifier(table.name), db=exp.to_identifier(pg_schema),
                           alias=exp.TableAlias(this=exp.to_identifier(alias)))  # fmt: skip
        count = exp.select("count(*)").from_(target)
        if conjuncts:
            count = count.where(*(c.copy() for c in conjuncts))
        found.append(Reference(table.name, alias, count.sql(dialect="postgres")))
    return found


def _filters_of(table: exp.Table, alias: str, select: exp.Select) -> list[exp.Expr]:
    candidates: list[exp.Expr] = []
    where = select.args.get("where")
    if where is not None:
        candidates.extend(_conjuncts(where.this))
    for join in select.args.get("joins") or ():
        if join.this is table and join.args.get("on") is not None:
            candidates.extend(_conjuncts(join.args["on"]))
    prefix = PREFIXES[table.name]
    return [c for c in candidates if _reads_only(c, alias, prefix)]


def _conjuncts(condition: exp.Expr) -> list[exp.Expr]:
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    return [condition]


def _reads_only(condition: exp.Expr, alias: str, prefix: str) -> bool:
    if condition.find(exp.Select) is not None:
        return False
    columns = list(condition.find_all(exp.Column))
    return bool(columns) and all(
        c.name.startswith(prefix) and c.table in ("", alias) for c in columns
    )


def minimal_rows(
    sql: str, postgres_tables: Collection[str], pg_dsn: str, pg_schema: str
) -> tuple[int, list[tuple[Reference, int]]] | None:
    """Total rows of the minimal pushdown and each reference's; None if `sql` reads no PG table."""
    found = references(sql, postgres_tables, pg_schema)
    if not found:
        return None
    counted = []
    with pg.connect(pg_dsn) as connection, connection.cursor() as cursor:
        for reference in found:
            cursor.execute(reference.count_sql)
            row = cursor.fetchone()
            assert row is not None
            counted.append((reference, int(row[0])))
    return sum(rows for _, rows in counted), counted
