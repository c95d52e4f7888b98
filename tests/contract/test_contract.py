"""One contract suite for every SQL connector: what each declares, proven on the real source.

Every case either must be pushed — then the rows equal DuckDB's answer to the same canonical
SQL over the same data, and the SQL the source received carries the pushed clause — or must be
refused, as the source's `ContractSource.refuses` says. Sources list their refusals and INEXACT
answers in tests/contract/conftest.py.
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
    JoinKind,
    PushedQuery,
    ScanInput,
    SourceTable,
)
from meshgate.sqlconnector.describe import engine_schema

from .sources import TABLES, ContractSource


def parse(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read=CANONICAL_DIALECT)


ITEMS = ", ".join(f"t.{name} AS {name}" for name in TABLES["items"].schema.names)


def offer(source: ContractSource, sql: str) -> PushedQuery | None:
    """Propose a whole SELECT as the planner does: `apply_query` with the tables' declared
    types (TABLES), the handle typed with engine semantics.

    `{items}` / `{owners}` in `sql` name the source's tables.
    """
    names = {name: source.table(name).qualified() for name in TABLES}
    query = parse(sql.format(**names))
    assert isinstance(query, exp.Select)
    inputs = tuple(
        ScanInput(t.alias_or_name, SourceTable(t.db or None, t.name), tuple(source.columns(t.name)))
        for t in query.find_all(exp.Table)
    )
    unique = tuple({item.alias: item for item in inputs}.values())
    return source.connector.apply_query(query, engine_schema(query, unique), unique)


def scan(source: ContractSource, table: str = "items", alias: str = "t") -> PushedQuery:
    return source.connector.scan(source.table(table), alias, source.columns(table))


def run(source: ContractSource, handle: PushedQuery) -> list[dict[str, Any]]:
    """Execute at the source; also checks the reader's schema is the handle's."""
    reader = source.connector.execute(handle)
    table = reader.read_all()
    assert table.schema == handle.schema
    assert source.connector.sent_sql[-1] == source.connector.render(handle)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def expected(reference: duckdb.DuckDBPyConnection, handle: PushedQuery) -> list[dict[str, Any]]:
    """DuckDB's answer to the handle's canonical SELECT over the reference tables."""

    def unqualify(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.name in TABLES:
            return exp.Table(this=exp.to_identifier(node.name), alias=node.args.get("alias"))
        return node

    select = handle.select.transform(unqualify, copy=True)
    table = reference.execute(select.sql(CANONICAL_DIALECT)).to_arrow_table()
    rows: list[dict[str, Any]] = table.cast(handle.schema).to_pylist()
    return rows


def unordered(rows: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(row.items())) for row in rows)


def sent_clause(source: ContractSource, key: str) -> exp.Expr | None:
    """A clause (`where`, `order`, `limit`, `group`, `joins`) of the SQL the source received."""
    sent = sqlglot.parse_one(
        source.connector.sent_sql[-1], read=source.connector.capabilities.dialect
    )
    clause = sent.args.get(key)
    if isinstance(clause, list):
        return clause[0] if clause else None
    return clause if isinstance(clause, exp.Expr) else None


# --- scans ----------------------------------------------------------------------------------
def test_scan_returns_every_row_with_engine_types(
    source: ContractSource, reference: duckdb.DuckDBPyConnection
) -> None:
    handle = scan(source)
    assert handle.schema == TABLES["items"].schema
    rows = run(source, handle)
    assert unordered(rows) == unordered(TABLES["items"].to_pylist())
    assert unordered(rows) == unordered(expected(reference, handle))
    assert sent_clause(source, "where") is None


def test_table_columns_name_the_stored_columns(source: ContractSource) -> None:
    names = [c.name for c in source.connector.table_columns(source.table("items"))]
    assert names == TABLES["items"].schema.names


def test_results_stream_in_bounded_batches(source: ContractSource) -> None:
    source.connector.batch_rows = 3
    reader = source.connector.execute(scan(source))
    sizes = [batch.num_rows for batch in reader]
    assert sum(sizes) == len(TABLES["items"])
    assert len(sizes) >= 3
    assert max(sizes) <= 3


def test_closing_the_reader_stops_the_stream(source: ContractSource) -> None:
    source.connector.batch_rows = 2
    reader = source.connector.execute(scan(source))
    assert reader.read_next_batch().num_rows == 2
    reader.close()
    with pytest.raises(pa.ArrowInvalid, match="closed"):
        reader.read_next_batch()
    assert len(run(source, scan(source))) == len(TABLES["items"])


def test_closing_the_reader_releases_the_source(source: ContractSource) -> None:
    assert source.busy is not None, "each contract source says how to observe its hold"
    source.connector.batch_rows = 2
    assert not source.busy()
    reader = source.connector.execute(scan(source))
    reader.read_next_batch()
    assert source.busy(), "a half-read result should still hold the source"
    reader.close()
    assert not source.busy()


def test_concurrent_fragments_do_not_share_state(source: ContractSource) -> None:
    limited = offer(source, f"SELECT {ITEMS} FROM {{items}} AS t LIMIT 2")
    assert limited is not None
    work = [scan(source), limited] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(lambda h: source.connector.execute(h).read_all().num_rows, work))
    assert sizes == [len(TABLES["items"]), 2] * 8


def test_missing_table_is_reported_as_unavailable(source: ContractSource) -> None:
    handle = source.connector.scan(source.table("no_such_table"), "x", source.columns("owners"))
    with pytest.raises(SourceUnavailable) as raised:
        source.connector.execute(handle).read_all()
    # the operator's text (server log, CLI) names the source; a caller's message need not
    assert source.connector.context.name in str(raised.value)


def test_missing_source_is_reported_as_unavailable(source: ContractSource) -> None:
    broken = source.unavailable
    with pytest.raises(SourceUnavailable) as checked:
        broken.check()
    assert broken.context.name in str(checked.value)
    assert "check" in checked.value.message
    with pytest.raises(SourceUnavailable):
        broken.execute(scan(ContractSource(broken, source.schema, broken)))


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
    "filter_timestamptz_lt": "t.at < TIMESTAMPTZ '2024-02-01 00:00:00+00'",
    "filter_case": "CASE WHEN t.qty > 5 THEN 'big' ELSE 'small' END = 'big'",
    "filter_lower": "LOWER(t.name) = 'apple'",
}


def expected_support(source: ContractSource, case: str) -> FilterSupport:
    if case in source.refuses:
        return FilterSupport.UNSUPPORTED
    return FilterSupport.INEXACT if case in source.inexact else FilterSupport.EXACT


def reapply(rows: list[dict[str, Any]], schema: pa.Schema, conjunct: str) -> list[dict[str, Any]]:
    """The engine's second pass over an INEXACT answer."""
    connection = duckdb.connect()
    connection.register("answer", pa.Table.from_pylist(rows, schema))
    answer = connection.execute(f"SELECT * FROM answer AS t WHERE {conjunct}").to_arrow_table()
    result: list[dict[str, Any]] = answer.cast(schema).to_pylist()
    return result


@pytest.mark.parametrize("case", list(FILTERS))
def test_filter(source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str) -> None:
    handle = scan(source)
    conjunct = parse(FILTERS[case])
    applied = source.connector.apply_filter(handle, [conjunct])
    support = expected_support(source, case)
    truth = expected(
        reference, PushedQuery(handle.select.where(conjunct.copy()), handle.schema, handle.inputs)
    )
    assert truth, "every filter case selects some rows"
    if support is FilterSupport.UNSUPPORTED:
        assert applied is None
        return
    assert applied is not None
    assert applied.support == (support,)
    assert applied.handle.has_inexact_filter == (support is FilterSupport.INEXACT)
    rows = run(source, applied.handle)
    where = sent_clause(source, "where")
    assert where is not None
    assert {c.name for c in where.find_all(exp.Column)} == {
        c.name for c in conjunct.find_all(exp.Column)
    }
    if support is FilterSupport.EXACT:
        assert unordered(rows) == unordered(truth)
    else:
        assert set(unordered(truth)) < set(unordered(rows)), "INEXACT case should over-select"
        assert unordered(reapply(rows, applied.handle.schema, FILTERS[case])) == unordered(truth)


def test_all_conjuncts_are_answered_in_one_call(
    source: ContractSource, reference: duckdb.DuckDBPyConnection
) -> None:
    handle = scan(source)
    conjuncts = [parse("t.qty > 0"), parse("LOWER(t.name) <> 'zzz'"), parse("t.qty = ?")]
    applied = source.connector.apply_filter(handle, conjuncts)
    assert applied is not None
    lower = expected_support(source, "filter_lower")
    assert applied.support == (FilterSupport.EXACT, lower, FilterSupport.UNSUPPORTED)
    pushed = [
        c for c, s in zip(conjuncts, applied.support, strict=True) if s is FilterSupport.EXACT
    ]
    truth = expected(
        reference, PushedQuery(handle.select.where(*pushed), handle.schema, handle.inputs)
    )
    assert unordered(run(source, applied.handle)) == unordered(truth)


def test_placeholders_are_never_pushed(source: ContractSource) -> None:
    assert source.connector.apply_filter(scan(source), [parse("t.qty = ?")]) is None


def test_no_filter_is_pushed_above_a_limit(source: ContractSource) -> None:
    limited = offer(source, f"SELECT {ITEMS} FROM {{items}} AS t LIMIT 3")
    assert limited is not None
    assert source.connector.apply_filter(limited, [parse("t.qty = 7")]) is None


# --- limit and top-N ------------------------------------------------------------------------
def test_limit(source: ContractSource) -> None:
    applied = offer(source, f"SELECT {ITEMS} FROM {{items}} AS t LIMIT 3")
    assert applied is not None
    assert applied.has_limit
    rows = run(source, applied)
    assert len(rows) == 3
    assert set(unordered(rows)) <= set(unordered(TABLES["items"].to_pylist()))
    limit = sent_clause(source, "limit")
    assert limit is not None
    assert limit.expression.this == "3"


def test_limit_is_refused_above_an_inexact_filter(source: ContractSource) -> None:
    like = FILTERS["filter_like"]
    limited = offer(source, f"SELECT {ITEMS} FROM {{items}} AS t WHERE {like} LIMIT 2")
    if expected_support(source, "filter_like") is not FilterSupport.INEXACT:
        assert limited is not None
        return
    assert limited is None
    top = offer(source, f"SELECT {ITEMS} FROM {{items}} AS t WHERE {like} ORDER BY t.id LIMIT 2")
    assert top is None


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
    applied = offer(source, f"SELECT {ITEMS} FROM {{items}} AS t ORDER BY {TOPN[case]} LIMIT 7")
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    assert applied.has_limit
    rows = run(source, applied)
    assert rows == expected(reference, applied)
    assert sent_clause(source, "order") is not None
    assert sent_clause(source, "limit") is not None


def test_nulls_sort_last_like_the_engine(source: ContractSource) -> None:
    for keys in ("t.qty, t.id", "t.qty DESC, t.id"):
        applied = offer(source, f"SELECT {ITEMS} FROM {{items}} AS t ORDER BY {keys} LIMIT 8")
        assert applied is not None
        qty = [row["qty"] for row in run(source, applied)]
        assert qty[-2:] == [None, None]
        assert None not in qty[:-2]


def test_text_sorts_by_code_point(source: ContractSource) -> None:
    applied = offer(source, f"SELECT {ITEMS} FROM {{items}} AS t ORDER BY t.name LIMIT 8")
    if not source.connector.capabilities.text_ordering_matches_engine:
        assert applied is None
        return
    assert applied is not None
    names = [row["name"] for row in run(source, applied)]
    assert names == ["Apple", "Cherry", "Zebra", "apple", "apricot", "banana", "éclair", None]


# --- projection -----------------------------------------------------------------------------
PROJECTIONS: dict[str, list[str]] = {
    "projection_rename": ["t.name AS label", "t.price AS price", "t.at AS at"],
    "projection_arithmetic": ["t.id AS id", "t.qty * 2 + 1 AS twice"],
    "projection_int_division": ["t.id AS id", "t.qty / 2 AS half"],
}


@pytest.mark.parametrize("case", list(PROJECTIONS))
def test_projection(
    source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str
) -> None:
    applied = source.connector.apply_projection(scan(source), [parse(p) for p in PROJECTIONS[case]])
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    rows = run(source, applied)
    assert unordered(rows) == unordered(expected(reference, applied))
    sent = sqlglot.parse_one(
        source.connector.sent_sql[-1], read=source.connector.capabilities.dialect
    )
    assert [e.alias_or_name for e in sent.expressions] == applied.schema.names


def test_integer_division_keeps_engine_semantics(source: ContractSource) -> None:
    applied = source.connector.apply_projection(
        scan(source), [parse("t.id AS id"), parse("t.qty / 2 AS half")]
    )
    if "projection_int_division" in source.refuses:
        assert applied is None
        return
    assert applied is not None
    assert applied.schema.field("half").type == pa.float64()
    halves = {row["id"]: row["half"] for row in run(source, applied)}
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
    outputs = ", ".join([*group_by, *aggregates])
    applied = offer(source, f"SELECT {outputs} FROM {{items}} AS t{grouping}")
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    assert applied.has_aggregate
    rows = run(source, applied)
    assert unordered(rows) == unordered(expected(reference, applied))
    assert (sent_clause(source, "group") is not None) == bool(group_by)
    sent = source.connector.sent_sql[-1].upper()
    for aggregate in aggregates:
        assert aggregate.split("(")[0] + "(" in sent


def test_sum_of_integers_has_the_engine_type(source: ContractSource) -> None:
    applied = offer(source, "SELECT SUM(t.qty) AS total FROM {items} AS t")
    assert applied is not None
    assert applied.schema.field("total").type == pa.decimal128(38, 0)
    assert run(source, applied)[0]["total"] == 20


def test_no_filter_is_pushed_above_an_aggregate(source: ContractSource) -> None:
    applied = offer(source, "SELECT t.active, COUNT(*) AS n FROM {items} AS t GROUP BY t.active")
    assert applied is not None
    assert source.connector.apply_filter(applied, [parse("t.qty = 7")]) is None


# --- joins ----------------------------------------------------------------------------------
JOINS: dict[str, tuple[JoinKind, str | None, str | None, str | None]] = {
    # kind, condition, filter on items t, filter on owners o
    "join_inner": (JoinKind.INNER, "t.id = o.item_id", "t.qty > 1", None),
    "join_left": (JoinKind.LEFT, "t.id = o.item_id", None, "o.owner <> 'cy'"),
    "join_right": (JoinKind.RIGHT, "t.id = o.item_id", None, None),
    "join_full": (JoinKind.FULL, "t.id = o.item_id", None, None),
    "join_cross": (JoinKind.CROSS, None, "t.id < 3", None),
}


JOIN_KEYWORDS = {JoinKind.INNER: "JOIN", JoinKind.LEFT: "LEFT JOIN", JoinKind.RIGHT: "RIGHT JOIN",
                 JoinKind.FULL: "FULL JOIN", JoinKind.CROSS: "CROSS JOIN"}  # fmt: skip


def join_sql(kind: JoinKind, condition: str | None, left: str | None, right: str | None) -> str:
    """items t joined to owners o; the right side's filter of a LEFT JOIN goes into ON."""
    on = [c for c in (condition, right if kind is JoinKind.LEFT else None) if c]
    where = [f for f in (left, None if kind is JoinKind.LEFT else right) if f]
    return (
        "SELECT t.id AS id, t.name AS name, o.item_id AS item_id, o.owner AS owner "
        f"FROM {{items}} AS t {JOIN_KEYWORDS[kind]} {{owners}} AS o"
        + (f" ON {' AND '.join(on)}" if on else "")
        + (f" WHERE {' AND '.join(where)}" if where else "")
    )


@pytest.mark.parametrize("case", list(JOINS))
def test_join(source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str) -> None:
    kind = JOINS[case][0]
    applied = offer(source, join_sql(*JOINS[case]))
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    rows = run(source, applied)
    truth = expected(reference, applied)
    assert unordered(rows) == unordered(truth)
    join = sent_clause(source, "joins")
    assert isinstance(join, exp.Join)
    assert (join.side or None) == {
        JoinKind.LEFT: "LEFT",
        JoinKind.RIGHT: "RIGHT",
        JoinKind.FULL: "FULL",
    }.get(kind)
    if case == "join_left":
        # The right side's filter must restrict matches, not drop unmatched items.
        assert {r["id"] for r in rows} == set(range(1, 9))
        assert "cy" not in {r["owner"] for r in rows}
        on = join.args.get("on")
        assert isinstance(on, exp.Expr)
        assert "cy" in on.sql()


def test_join_on_a_date_equality(
    source: ContractSource, reference: duckdb.DuckDBPyConnection
) -> None:
    applied = offer(
        source,
        "SELECT t.id AS id, t.day AS day, u.id AS other FROM {items} AS t "
        "JOIN {items} AS u ON t.day = u.day",
    )
    if "join_on_date" in source.refuses:
        assert applied is None
        return
    assert applied is not None
    assert unordered(run(source, applied)) == unordered(expected(reference, applied))


# --- whole-subtree pushdown -----------------------------------------------------------------
QUERIES: dict[str, str] = {
    "query_group": "SELECT t.name AS name, COUNT(*) AS n, SUM(t.qty) AS total "
    "FROM {items} AS t WHERE t.qty > 1 GROUP BY t.name",
    "query_join": "SELECT t.id AS id, o.owner AS owner FROM {items} AS t "
    "JOIN {owners} AS o ON t.id = o.item_id WHERE t.qty >= 2",
    "query_like": "SELECT t.id AS id FROM {items} AS t WHERE t.name LIKE 'a%'",
    "query_subquery": "SELECT t.id AS id, t.name AS name FROM {items} AS t "
    "WHERE t.id IN (SELECT o.item_id FROM {owners} AS o WHERE o.owner <> 'cy')",
}


@pytest.mark.parametrize("case", list(QUERIES))
def test_whole_query(
    source: ContractSource, reference: duckdb.DuckDBPyConnection, case: str
) -> None:
    prefix = f"{source.schema}." if source.schema else ""
    sql = QUERIES[case].format(items=f"{prefix}items", owners=f"{prefix}owners")
    query = parse(sql)
    assert isinstance(query, exp.Select)
    schema = (
        reference.execute(QUERIES[case].format(items="items", owners="owners") + " LIMIT 0")
        .to_arrow_table()
        .schema
    )
    applied = source.connector.apply_query(query, schema)
    if case in source.refuses:
        assert applied is None
        return
    assert applied is not None
    assert applied.schema == schema
    assert engine_schema(applied.select, applied.inputs).names == schema.names
    rows = run(source, applied)
    assert unordered(rows) == unordered(expected(reference, applied))
    assert sent_clause(source, "where") is not None
