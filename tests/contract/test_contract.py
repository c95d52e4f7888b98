"""One contract suite for every SQL connector: what each declares, proven on the real source.

A case proposes to a connector what the planner proposes (federate.py): `scan`, `apply_filter`
and `apply_projection` on a scan, and whole SELECTs through `apply_query` (filters, projections,
aggregates, joins, top-N, limits, subqueries). Every case either must be pushed, or must be
refused as the source's `ContractSource.refuses` says (tests/contract/sources.py). A pushed case
is checked twice, separately:

- rows, column names and types equal the oracle's answer to the *test's own* canonical SQL (the
  SQL string written in the case, never the connector's handle);
- the SQL the source received carries the pushed clause (WHERE, ORDER BY and its LIMIT value,
  GROUP BY, the join).

The oracle (tests/contract/oracle.py) shares no code with the connectors: it is a plain
in-memory DuckDB filled by INSERTs of the Python rows that sources.py stores in each source,
into tables it declares itself; nothing of meshgate (handles, rendering, engine schemas, Arrow
typing of the fixture tables) is on its path. So a connector that sends LIMIT 8 for a top 7,
or decodes a type wrongly, answers differently from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from meshgate.errors import SourceUnavailable
from meshgate.spi import (
    CANONICAL_DIALECT,
    FilterSupport,
    PushedQuery,
    ScanInput,
    SourceTable,
)
from meshgate.sqlconnector.describe import engine_schema

from .oracle import answer
from .sources import TABLES, ContractSource


def parse(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read=CANONICAL_DIALECT)


ITEMS = ", ".join(f't."{name}" AS "{name}"' for name in TABLES["items"].schema.names)
ITEMS_SQL = f"SELECT {ITEMS} FROM {{items}} AS t"


def offer(source: ContractSource, sql: str) -> PushedQuery | None:
    """Propose a whole SELECT as the planner does: `apply_query` with the tables' declared
    types (TABLES), the handle typed with engine semantics.

    `{items}` / `{owners}` in `sql` name the source's tables.
    """
    names = {name: source.table(name).qualified() for name in TABLES}
    query = parse(sql.format(**names))
    assert isinstance(query, exp.Select)
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    inputs = tuple(
        ScanInput(t.alias_or_name, SourceTable(t.db or None, t.name), tuple(source.columns(t.name)))
        for t in query.find_all(exp.Table)
        if t.db or t.name not in ctes
    )
    unique = tuple({item.alias: item for item in inputs}.values())
    return source.connector.apply_query(query, engine_schema(query, unique), unique)


def scan(source: ContractSource, table: str = "items", alias: str = "t") -> PushedQuery:
    return source.connector.scan(source.table(table), alias, source.columns(table))


def reader(source: ContractSource, handle: PushedQuery) -> pa.RecordBatchReader:
    """The one place this suite runs a handle at its source."""
    return source.connector.execute(handle)


def run(source: ContractSource, handle: PushedQuery) -> pa.Table:
    """Execute at the source; also checks the reader's schema is the handle's."""
    table = reader(source, handle).read_all()
    assert table.schema == handle.schema
    assert source.connector.sent_sql[-1] == source.connector.render(handle)
    return table


def truth(reference: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The oracle's answer to the case's canonical SQL (`{items}`, `{owners}` unqualified)."""
    return answer(reference, sql.format(items="items", owners="owners"))


def unordered(rows: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(row.items())) for row in rows)


def assert_answers(got: pa.Table, oracle: pa.Table, *, ordered: bool = False) -> None:
    """Same column names, same types, same rows (in order, if the query orders them)."""
    assert got.schema.names == oracle.schema.names
    assert got.schema.types == oracle.schema.types
    if ordered:
        assert got.to_pylist() == oracle.to_pylist()
    else:
        assert unordered(got.to_pylist()) == unordered(oracle.to_pylist())


def sent_clause(source: ContractSource, key: str) -> exp.Expr | None:
    """A clause (`where`, `order`, `limit`, `group`, `joins`) of the SQL the source received."""
    sent = sqlglot.parse_one(
        source.connector.sent_sql[-1], read=source.connector.capabilities.dialect
    )
    clause = sent.args.get(key)
    if isinstance(clause, list):
        return clause[0] if clause else None
    return clause if isinstance(clause, exp.Expr) else None


def sent_limit(source: ContractSource) -> int:
    limit = sent_clause(source, "limit")
    assert isinstance(limit, exp.Limit)
    value = limit.expression
    assert isinstance(value, exp.Literal)
    return int(value.this)


# --- scans ----------------------------------------------------------------------------------
def test_scan_returns_every_row_with_engine_types(
    source: ContractSource, reference: duckdb.DuckDBPyConnection
) -> None:
    handle = scan(source)
    rows = run(source, handle)
    assert_answers(rows, truth(reference, ITEMS_SQL))
    assert sent_clause(source, "where") is None


def test_table_columns_name_the_stored_columns(source: ContractSource) -> None:
    names = [c.name for c in source.connector.table_columns(source.table("items"))]
    assert names == TABLES["items"].schema.names


def test_results_stream_in_bounded_batches(source: ContractSource) -> None:
    source.connector.batch_rows = 3
    sizes = [batch.num_rows for batch in reader(source, scan(source))]
    assert sum(sizes) == len(TABLES["items"])
    assert len(sizes) >= 3
    assert max(sizes) <= 3


def test_closing_the_reader_stops_the_stream(source: ContractSource) -> None:
    source.connector.batch_rows = 2
    stream = reader(source, scan(source))
    assert stream.read_next_batch().num_rows == 2
    stream.close()
    with pytest.raises(pa.ArrowInvalid, match="closed"):
        stream.read_next_batch()
    assert len(run(source, scan(source))) == len(TABLES["items"])


def test_closing_the_reader_releases_the_source(source: ContractSource) -> None:
    assert source.busy is not None, "each contract source says how to observe its hold"
    source.connector.batch_rows = 2
    assert not source.busy()
    stream = reader(source, scan(source))
    stream.read_next_batch()
    assert source.busy(), "a half-read result should still hold the source"
    stream.close()
    assert not source.busy()


def test_concurrent_fragments_do_not_share_state(source: ContractSource) -> None:
    limited = offer(source, f"{ITEMS_SQL} LIMIT 2")
    assert limited is not None
    work = [scan(source), limited] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(lambda h: reader(source, h).read_all().num_rows, work))
    assert sizes == [len(TABLES["items"]), 2] * 8


def test_missing_table_is_reported_as_unavailable(source: ContractSource) -> None:
    handle = source.connector.scan(source.table("no_such_table"), "x", source.columns("owners"))
    with pytest.raises(SourceUnavailable) as raised:
        reader(source, handle).read_all()
    # the operator's text (server log, CLI) names the source and the missing table
    assert source.connector.context.name in str(raised.value)
    assert "no_such_table" in str(raised.value)


def test_missing_source_is_reported_as_unavailable(source: ContractSource) -> None:
    broken = source.unavailable
    with pytest.raises(SourceUnavailable) as checked:
        broken.check()
    assert broken.context.name in str(checked.value)
    assert "check" in checked.value.message
    elsewhere = ContractSource(broken, source.schema, broken)
    with pytest.raises(SourceUnavailable, match=f"'{broken.context.name}'") as raised:
        reader(elsewhere, scan(elsewhere)).read_all()
    assert "check" in raised.value.message


# --- filters --------------------------------------------------------------------------------
FILTERS: dict[str, str] = {
    "filter_int_eq": "t.qty = 7",
    "filter_between": "t.qty BETWEEN 2 AND 7",
    "filter_in": "t.id IN (1, 3, 5)",
    "filter_is_null": "t.name IS NULL",
    "filter_is_not_null": "t.price IS NOT NULL",
    "filter_not_or": "NOT (t.qty > 5) OR t.active",
    "filter_bool": "t.active = TRUE",
    "filter_text_eq": "t.name = 'Apple'",
    "filter_text_lt": "t.name < 'b'",
    "filter_like": "t.name LIKE 'a%'",
    "filter_not_like": "t.name NOT LIKE 'a%'",
    "filter_ilike": "t.name ILIKE 'A%'",
    "filter_arithmetic": "t.qty * 2 - 1 > 5",
    "filter_int_division": "t.qty / 2 = 3.5",
    "filter_floor_division": "t.qty // 2 = -3",
    "filter_decimal_gt": "t.price > 2.5",
    "filter_date_ge": "t.day >= DATE '2024-02-01'",
    "filter_timestamptz_lt": "t.\"at\" < TIMESTAMPTZ '2024-02-01 00:00:00+00'",
    "filter_case": "CASE WHEN t.qty > 5 THEN 'big' ELSE 'small' END = 'big'",
    "filter_lower": "LOWER(t.name) = 'apple'",
    "filter_substring": "SUBSTRING(t.name, 2, 3) = 'ppl'",
    # a negative start counts from the end in DuckDB, from before the first character in
    # PostgreSQL
    "filter_substring_from_end": "SUBSTRING(t.name, -3, 2) = 'pl'",
}


def expected_support(source: ContractSource, case: str) -> FilterSupport:
    if case in source.refuses:
        return FilterSupport.UNSUPPORTED
    return FilterSupport.INEXACT if case in source.inexact else FilterSupport.EXACT


def reapply(rows: pa.Table, conjunct: str) -> pa.Table:
    """The engine's second pass over an INEXACT answer."""
    connection = duckdb.connect()
    connection.register("answer", rows)
    again = connection.execute(f"SELECT * FROM answer AS t WHERE {conjunct}").to_arrow_table()
    return again.cast(rows.schema)


def assert_sent_filter(source: ContractSource, conjunct: str) -> None:
    """The source received a WHERE over exactly the conjunct's columns."""
    where = sent_clause(source, "where")
    assert where is not None
    assert {c.name for c in where.find_all(exp.Column)} == {
        c.name for c in parse(conjunct).find_all(exp.Column)
    }


@pytest.mark.parametrize("case", list(FILTERS))
def test_filter(source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str) -> None:
    applied = source.connector.apply_filter(scan(source), [parse(FILTERS[case])])
    support = expected_support(source, case)
    oracle = truth(reference, f"{ITEMS_SQL} WHERE {FILTERS[case]}")
    assert oracle.num_rows, "every filter case selects some rows"
    if support is FilterSupport.UNSUPPORTED:
        assert applied is None
        return
    assert applied is not None
    assert applied.support == (support,)
    assert applied.handle.has_inexact_filter == (support is FilterSupport.INEXACT)
    rows = run(source, applied.handle)
    assert_sent_filter(source, FILTERS[case])
    if support is FilterSupport.EXACT:
        assert_answers(rows, oracle)
    else:
        assert set(unordered(oracle.to_pylist())) < set(unordered(rows.to_pylist())), (
            "INEXACT case should over-select"
        )
        assert_answers(reapply(rows, FILTERS[case]), oracle)


@pytest.mark.parametrize("case", list(FILTERS))
def test_filter_in_a_whole_query(
    source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str
) -> None:
    """The planner's joined groups and whole subtrees carry their filters in `apply_query`,
    which takes a query only if every conjunct is EXACT."""
    sql = f"{ITEMS_SQL} WHERE {FILTERS[case]}"
    applied = offer(source, sql)
    if expected_support(source, case) is not FilterSupport.EXACT:
        assert applied is None
        return
    assert applied is not None
    assert_answers(run(source, applied), truth(reference, sql))
    assert_sent_filter(source, FILTERS[case])


def test_all_conjuncts_are_answered_in_one_call(
    source: ContractSource, reference: duckdb.DuckDBPyConnection
) -> None:
    conjuncts = ["t.qty > 0", "LOWER(t.name) <> 'zzz'", "t.qty = ?"]
    applied = source.connector.apply_filter(scan(source), [parse(c) for c in conjuncts])
    assert applied is not None
    lower = expected_support(source, "filter_lower")
    assert applied.support == (FilterSupport.EXACT, lower, FilterSupport.UNSUPPORTED)
    pushed = [
        c for c, s in zip(conjuncts, applied.support, strict=True) if s is FilterSupport.EXACT
    ]
    oracle = truth(reference, f"{ITEMS_SQL} WHERE {' AND '.join(pushed)}")
    assert_answers(run(source, applied.handle), oracle)


def test_placeholders_are_never_pushed(source: ContractSource) -> None:
    assert source.connector.apply_filter(scan(source), [parse("t.qty = ?")]) is None


def test_no_filter_is_pushed_above_a_limit(source: ContractSource) -> None:
    limited = offer(source, f"{ITEMS_SQL} LIMIT 3")
    assert limited is not None
    assert source.connector.apply_filter(limited, [parse("t.qty = 7")]) is None


# --- limit and top-N ------------------------------------------------------------------------
def test_limit(source: ContractSource, reference: duckdb.DuckDBPyConnection) -> None:
    applied = offer(source, f"{ITEMS_SQL} LIMIT 3")
    assert applied is not None
    assert applied.has_limit
    rows = run(source, applied)
    assert rows.num_rows == 3
    everything = truth(reference, ITEMS_SQL)
    assert rows.schema.types == everything.schema.types
    assert set(unordered(rows.to_pylist())) <= set(unordered(everything.to_pylist()))
    assert sent_limit(source) == 3


def test_limit_is_refused_above_an_inexact_filter(source: ContractSource) -> None:
    like = FILTERS["filter_like"]
    limited = offer(source, f"{ITEMS_SQL} WHERE {like} LIMIT 2")
    if expected_support(source, "filter_like") is not FilterSupport.INEXACT:
        assert limited is not None
        return
    assert limited is None
    assert offer(source, f"{ITEMS_SQL} WHERE {like} ORDER BY t.id LIMIT 2") is None


TOPN: dict[str, str] = {
    "topn_qty_asc": "t.qty, t.id",
    "topn_qty_desc": "t.qty DESC, t.id",
    "topn_qty_nulls_first": "t.qty ASC NULLS FIRST, t.id",
    "topn_qty_desc_nulls_first": "t.qty DESC NULLS FIRST, t.id DESC",
    "topn_name": "t.name, t.id",
    "topn_price": "t.price DESC, t.id",
    "topn_day": "t.day, t.id",
}


@pytest.mark.parametrize("case", list(TOPN))
def test_topn(source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str) -> None:
    sql = f"{ITEMS_SQL} ORDER BY {TOPN[case]} LIMIT 7"
    applied = offer(source, sql)
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    assert applied.has_limit
    assert_answers(run(source, applied), truth(reference, sql), ordered=True)
    order = sent_clause(source, "order")
    assert isinstance(order, exp.Order)
    keys = [key.this for key in order.expressions]
    assert [k.name for k in keys if isinstance(k, exp.Column)][-1] == "id"
    assert sent_limit(source) == 7


def test_nulls_sort_last_like_the_engine(
    source: ContractSource, reference: duckdb.DuckDBPyConnection
) -> None:
    for keys in ("t.qty, t.id", "t.qty DESC, t.id"):
        sql = f"{ITEMS_SQL} ORDER BY {keys} LIMIT 8"
        applied = offer(source, sql)
        assert applied is not None
        rows = run(source, applied)
        assert_answers(rows, truth(reference, sql), ordered=True)
        qty = rows.column("qty").to_pylist()
        assert qty[-2:] == [None, None]
        assert None not in qty[:-2]


def test_text_sorts_by_code_point(
    source: ContractSource, reference: duckdb.DuckDBPyConnection
) -> None:
    sql = f"{ITEMS_SQL} ORDER BY t.name LIMIT 8"
    applied = offer(source, sql)
    if not source.connector.capabilities.text_ordering_matches_engine:
        assert applied is None
        return
    assert applied is not None
    names = run(source, applied).column("name").to_pylist()
    assert names == ["Apple", "Cherry", "Zebra", "apple", "apricot", "banana", "éclair", None]
    assert names == truth(reference, sql).column("name").to_pylist()


# --- projection -----------------------------------------------------------------------------
PROJECTIONS: dict[str, list[str]] = {
    "projection_rename": ["t.name AS label", "t.price AS price", 't."at" AS "at"'],
    "projection_arithmetic": ["t.id AS id", "t.qty * 2 + 1 AS twice"],
    "projection_int_division": ["t.id AS id", "t.qty / 2 AS half"],
}


@pytest.mark.parametrize("case", list(PROJECTIONS))
def test_projection(
    source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str
) -> None:
    outputs = PROJECTIONS[case]
    applied = source.connector.apply_projection(scan(source), [parse(p) for p in outputs])
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    rows = run(source, applied)
    assert_answers(rows, truth(reference, f"SELECT {', '.join(outputs)} FROM {{items}} AS t"))
    sent = sqlglot.parse_one(
        source.connector.sent_sql[-1], read=source.connector.capabilities.dialect
    )
    assert [e.alias_or_name for e in sent.expressions] == rows.schema.names


def test_integer_division_keeps_engine_semantics(source: ContractSource) -> None:
    applied = source.connector.apply_projection(
        scan(source), [parse("t.id AS id"), parse("t.qty / 2 AS half")]
    )
    if "projection_int_division" in source.refuses:
        assert applied is None
        return
    assert applied is not None
    rows = run(source, applied)
    assert rows.schema.field("half").type == pa.float64()
    halves = dict(zip(rows.column("id").to_pylist(), rows.column("half").to_pylist(), strict=True))
    assert halves[1] == 3.5
    assert halves[4] == -3.5


# --- aggregation ----------------------------------------------------------------------------
AGGREGATIONS: dict[str, tuple[list[str], list[str]]] = {
    "agg_by_active": (
        ["t.active"],
        ["COUNT(*) AS n", "COUNT(t.price) AS priced", "SUM(t.qty) AS total",
         "MIN(t.qty) AS low", "MAX(t.name) AS last_name"],
    ),
    "agg_global": ([], ["COUNT(*) AS n", "SUM(t.qty) AS total", "MAX(t.qty) AS high"]),
    "agg_count_distinct": (["t.active"], ["COUNT(DISTINCT t.qty) AS kinds"]),
    "agg_sum_price": (["t.active"], ["SUM(t.price) AS revenue"]),
    "agg_avg": (["t.active"], ["AVG(t.qty) AS mean"]),
    "agg_min_day": ([], ["MIN(t.day) AS first_day"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(AGGREGATIONS))
def test_aggregation(
    source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str
) -> None:
    group_by, aggregates = AGGREGATIONS[case]
    grouping = f" GROUP BY {', '.join(group_by)}" if group_by else ""
    sql = f"SELECT {', '.join([*group_by, *aggregates])} FROM {{items}} AS t{grouping}"
    applied = offer(source, sql)
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    assert applied.has_aggregate
    assert_answers(run(source, applied), truth(reference, sql))
    assert (sent_clause(source, "group") is not None) == bool(group_by)
    sent = source.connector.sent_sql[-1].upper()
    for aggregate in aggregates:
        assert aggregate.split("(")[0] + "(" in sent


def test_sum_of_integers_has_the_engine_type(
    source: ContractSource, reference: duckdb.DuckDBPyConnection
) -> None:
    sql = "SELECT SUM(t.qty) AS total FROM {items} AS t"
    applied = offer(source, sql)
    assert applied is not None
    rows = run(source, applied)
    assert rows.schema.field("total").type == pa.decimal128(38, 0)
    assert rows.column("total").to_pylist() == [20]
    assert_answers(rows, truth(reference, sql))


def test_no_filter_is_pushed_above_an_aggregate(source: ContractSource) -> None:
    applied = offer(source, "SELECT t.active, COUNT(*) AS n FROM {items} AS t GROUP BY t.active")
    assert applied is not None
    assert source.connector.apply_filter(applied, [parse("t.qty = 7")]) is None


# --- joins ----------------------------------------------------------------------------------
JOIN_OUTPUTS = "SELECT t.id AS id, t.name AS name, o.item_id AS item_id, o.owner AS owner "
JOINS: dict[str, tuple[str | None, str]] = {
    # the side the source must receive, and the query; a LEFT JOIN's filter on its right side
    # goes into ON, so it restricts matches instead of dropping unmatched items
    "join_inner": (
        None,
        f"{JOIN_OUTPUTS}FROM {{items}} AS t JOIN {{owners}} AS o ON t.id = o.item_id "
        "WHERE t.qty > 1",
    ),
    "join_left": (
        "LEFT",
        f"{JOIN_OUTPUTS}FROM {{items}} AS t LEFT JOIN {{owners}} AS o "
        "ON t.id = o.item_id AND o.owner <> 'cy'",
    ),
    "join_right": (
        "RIGHT",
        f"{JOIN_OUTPUTS}FROM {{items}} AS t RIGHT JOIN {{owners}} AS o ON t.id = o.item_id",
    ),
    "join_full": (
        "FULL",
        f"{JOIN_OUTPUTS}FROM {{items}} AS t FULL JOIN {{owners}} AS o ON t.id = o.item_id",
    ),
    "join_cross": (
        None,
        f"{JOIN_OUTPUTS}FROM {{items}} AS t CROSS JOIN {{owners}} AS o WHERE t.id < 3",
    ),
}


@pytest.mark.parametrize("case", list(JOINS))
def test_join(source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str) -> None:
    side, sql = JOINS[case]
    applied = offer(source, sql)
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    rows = run(source, applied)
    assert_answers(rows, truth(reference, sql))
    join = sent_clause(source, "joins")
    assert isinstance(join, exp.Join)
    assert (join.side or None) == side
    if case == "join_left":
        assert set(rows.column("id").to_pylist()) == set(range(1, 9))
        assert "cy" not in rows.column("owner").to_pylist()
        on = join.args.get("on")
        assert isinstance(on, exp.Expr)
        assert "cy" in on.sql()


def test_join_on_a_date_equality(
    source: ContractSource, reference: duckdb.DuckDBPyConnection
) -> None:
    sql = (
        "SELECT t.id AS id, t.day AS day, u.id AS other FROM {items} AS t "
        "JOIN {items} AS u ON t.day = u.day"
    )
    applied = offer(source, sql)
    if "join_on_date" in source.refuses:
        assert applied is None
        return
    assert applied is not None
    assert_answers(run(source, applied), truth(reference, sql))


# --- whole-subtree pushdown -----------------------------------------------------------------
QUERIES: dict[str, str] = {
    "query_group": "SELECT t.name AS name, COUNT(*) AS n, SUM(t.qty) AS total "
    "FROM {items} AS t WHERE t.qty > 1 GROUP BY t.name",
    "query_join": "SELECT t.id AS id, o.owner AS owner FROM {items} AS t "
    "JOIN {owners} AS o ON t.id = o.item_id WHERE t.qty >= 2",
    # how the planner pushes a group of scans of one source (federate.py `_push_group`)
    "query_group_of_scans": 'SELECT t.id AS "t__id", o.owner AS "o__owner" '
    "FROM {items} AS t CROSS JOIN {owners} AS o WHERE t.id = o.item_id AND t.qty >= 2",
    "query_like": "SELECT t.id AS id FROM {items} AS t WHERE t.name LIKE 'a%'",
    "query_subquery": "SELECT t.id AS id, t.name AS name FROM {items} AS t "
    "WHERE t.id IN (SELECT o.item_id FROM {owners} AS o WHERE o.owner <> 'cy')",
    # a CTE the query reads twice, as the planner keeps it (federate.py `_place_shared`)
    "query_shared_cte": "WITH c AS MATERIALIZED (SELECT o.item_id AS item_id, COUNT(*) AS n "
    "FROM {owners} AS o GROUP BY o.item_id) SELECT t.id AS id, c.n AS n FROM {items} AS t "
    "JOIN c AS c ON c.item_id = t.id "
    "WHERE t.qty > 0 AND c.n = (SELECT MAX(c2.n) AS m FROM c AS c2)",
}


@pytest.mark.parametrize("case", list(QUERIES))
def test_whole_query(
    source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str
) -> None:
    applied = offer(source, QUERIES[case])
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    oracle = truth(reference, QUERIES[case])
    assert applied.schema.names == oracle.schema.names
    assert_answers(run(source, applied), oracle)
    assert sent_clause(source, "where") is not None
