"""The PostgreSQL connector against a real PostgreSQL: types, streaming, parameters, cancel."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pytest
from meshgate_postgres import PostgresConnector, physical_decimals, scaled_decimals
from sqlglot import exp, parse_one

from meshgate.errors import QueryCancelled, SourceUnavailable
from meshgate.spi import ConnectorContext, PushedQuery, QueryContext, SourceTable
from tests.postgres.proposals import offer

pytestmark = pytest.mark.postgres


def run_sql(dsn: str, *statements: str) -> None:
    with pg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def query_rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with pg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def connector(dsn: str, **options: Any) -> PostgresConnector:
    return PostgresConnector(ConnectorContext("warehouse", {"dsn": dsn, **options}, Path(".")))


@pytest.fixture
def source(pg_database: str) -> Iterator[PostgresConnector]:
    run_sql(
        pg_database,
        """CREATE TABLE typed (
            id int PRIMARY KEY, amount numeric(15,2), wide numeric(38,10), huge numeric(60,4),
            free numeric, hundreds numeric(5,-2), tiny numeric(3,5), ts timestamptz,
            plain timestamp, day date, span interval, flag boolean, label text, raw bytea,
            ints int[], prices numeric(6,2)[], address inet, big bigint, ratio float8)""",
        """INSERT INTO typed VALUES
            (1, 12345678901.99, 1234567890123456789012345678.0123456789,
             12345678901234567890123456789012.1234, 1.23456789012345,
             1234500, 0.00123, '2024-03-10 23:30:00-05', '2024-03-10 23:30:00', '2024-02-29',
             '1 month 2 days 00:00:03.5', true, 'héllo ✓', '\\x00ff', '{1,NULL,3}',
             '{1.50,2.25}', '10.1.2.3', 9007199254740993, 0.5),
            (2, -0.01, -0.0000000001, -1.0001, -123456789.9876543216, -100, -0.00001,
             NULL, NULL, '0001-01-01', '-3 hours', false, '', '', '{}', '{}', NULL, -1, -2.5),
            (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
             NULL, NULL, NULL, NULL, NULL)""",
    )
    conn = connector(pg_database)
    yield conn
    conn.close()


def scan(conn: PostgresConnector, table: str = "typed", alias: str = "t") -> PushedQuery:
    source_table = SourceTable("public", table)
    return conn.scan(source_table, alias, conn.table_columns(source_table))


def test_column_types_map_postgres_types_to_arrow(source: PostgresConnector) -> None:
    types = {c.name: c.type for c in source.table_columns(SourceTable("public", "typed"))}
    assert types == {
        "id": pa.int32(),
        "amount": pa.decimal128(15, 2),
        "wide": pa.decimal128(38, 10),
        "huge": pa.decimal128(38, 4),
        "free": pa.decimal128(38, 9),
        "hundreds": pa.decimal128(7, 0),
        "tiny": pa.decimal128(5, 5),
        "ts": pa.timestamp("us", tz="UTC"),
        "plain": pa.timestamp("us"),
        "day": pa.date32(),
        "span": pa.month_day_nano_interval(),
        "flag": pa.bool_(),
        "label": pa.string(),
        "raw": pa.binary(),
        "ints": pa.list_(pa.int32()),
        "prices": pa.list_(pa.decimal128(6, 2)),
        "address": pa.string(),
        "big": pa.int64(),
        "ratio": pa.float64(),
    }
    nullable = {c.name: c.nullable for c in source.table_columns(SourceTable("public", "typed"))}
    assert nullable["id"] is False
    assert nullable["amount"] is True


def test_values_round_trip_exactly(source: PostgresConnector) -> None:
    handle = scan(source)
    table = source.execute(handle).read_all()
    assert table.schema == handle.schema
    first, second, third = table.sort_by("id").to_pylist()
    assert first["amount"] == Decimal("12345678901.99")
    assert first["wide"] == Decimal("1234567890123456789012345678.0123456789")
    assert first["huge"] == Decimal("12345678901234567890123456789012.1234")
    assert first["free"] == Decimal("1.234567890")  # unconstrained -> (38, 9), rounded there
    assert first["hundreds"] == Decimal("1234500")
    assert first["tiny"] == Decimal("0.00123")
    assert first["ts"] == dt.datetime(2024, 3, 11, 4, 30, tzinfo=dt.UTC)
    assert first["plain"] == dt.datetime(2024, 3, 10, 23, 30)
    assert first["day"] == dt.date(2024, 2, 29)
    assert first["span"] == pa.MonthDayNano([1, 2, 3_500_000_000])
    assert first["flag"] is True
    assert first["label"] == "héllo ✓"
    assert first["raw"] == b"\x00\xff"
    assert first["ints"] == [1, None, 3]
    assert first["prices"] == [Decimal("1.50"), Decimal("2.25")]
    assert first["address"] == "10.1.2.3/32"
    assert first["big"] == 9007199254740993
    assert second["amount"] == Decimal("-0.01")
    assert second["wide"] == Decimal("-0.0000000001")
    assert second["free"] == Decimal("-123456789.987654322")  # rounded half away from zero
    assert second["hundreds"] == Decimal("-100")
    assert second["tiny"] == Decimal("-0.00001")
    assert second["day"] == dt.date(1, 1, 1)
    assert second["span"] == pa.MonthDayNano([0, 0, -3 * 3600 * 10**9])
    assert second["label"] == ""
    assert second["ints"] == []
    assert all(value is None for key, value in third.items() if key != "id")


def test_decimal_columns_are_rounded_by_postgres_and_sent_unscaled_or_as_text(
    source: PostgresConnector,
) -> None:
    sql = source.render(scan(source))
    # Up to 18 digits: the unscaled BIGINT; wider: text that Arrow parses exactly.
    assert 'CAST(CAST("t"."amount" AS DECIMAL(15, 2)) * 100 AS BIGINT) AS "amount"' in sql
    assert 'CAST(CAST("t"."hundreds" AS DECIMAL(7, 0)) AS BIGINT) AS "hundreds"' in sql
    assert 'CAST(CAST("t"."wide" AS DECIMAL(38, 10)) AS TEXT) AS "wide"' in sql
    assert '"t"."id" AS "id"' in sql


def test_the_columns_read_back_as_scaled_are_the_ones_sent_scaled(
    source: PostgresConnector,
) -> None:
    """Each execute learns the scaled outputs without rewriting the SELECT; they must be the
    very outputs the cached rendering sends as unscaled BIGINTs."""
    handles = [scan(source), offer(source, "SELECT t.id AS id, t.amount * 2 AS twice, "
                                   "t.wide AS wide FROM public.typed AS t")]
    for handle in handles:
        assert handle is not None
        assert scaled_decimals(handle) == physical_decimals(handle)[1]
    assert scaled_decimals(scan(source))  # `amount` and `hundreds` at least


def test_the_largest_unscaled_decimals_round_trip(source: PostgresConnector) -> None:
    cases = (("999999999999999999", pa.decimal128(18, 0)),
             ("-999999999999999999", pa.decimal128(18, 0)),
             ("0.000000000000000001", pa.decimal128(18, 18)),
             ("-99999999.9999999999", pa.decimal128(18, 10)))
    for literal, target in cases:
        handle = _raw(source, f"SELECT CAST({literal} AS NUMERIC) AS x",
                      pa.schema([("x", target)]))
        assert source.execute(handle).read_all().column("x").to_pylist() == [Decimal(literal)]


def test_ordering_by_a_decimal_output_still_sorts_numbers(source: PostgresConnector) -> None:
    query = parse_one(
        "SELECT t.id AS id, t.amount AS amount FROM public.typed AS t "
        "WHERE t.amount IS NOT NULL ORDER BY amount DESC",
        read="duckdb",
    )
    assert isinstance(query, exp.Select)
    schema = pa.schema([("id", pa.int32()), ("amount", pa.decimal128(15, 2))])
    pushed = source.apply_query(query, schema)
    assert pushed is not None
    assert 'ORDER BY "t"."amount" DESC' in source.render(pushed)
    rows = source.execute(pushed).read_all().to_pylist()
    assert [row["amount"] for row in rows] == [Decimal("12345678901.99"), Decimal("-0.01")]


def test_aggregates_are_pushed_and_typed_like_duckdb(source: PostgresConnector) -> None:
    pushed = offer(source, "SELECT SUM(t.amount) AS total, COUNT(*) AS n FROM public.typed AS t")
    assert pushed is not None
    assert "SUM(" in source.render(pushed)
    rows = source.execute(pushed).read_all()
    assert rows.schema.field("total").type == pa.decimal128(38, 2)
    assert rows.to_pylist() == [{"total": Decimal("12345678901.98"), "n": 3}]


def test_stream_arrives_in_batches_not_all_at_once(pg_database: str) -> None:
    run_sql(
        pg_database,
        "CREATE TABLE numbers AS SELECT g AS n, (g / 100.0)::numeric(12,2) AS price "
        "FROM generate_series(1, 3000000) AS g",
    )
    conn = connector(pg_database)
    reader = conn.execute(scan(conn, "numbers", "x"))
    sizes = [batch.num_rows for batch in reader]
    conn.close()
    assert sum(sizes) == 3_000_000
    assert len(sizes) > 1
    assert max(sizes) < 3_000_000


def test_parameters_are_bound_never_spliced(source: PostgresConnector) -> None:
    handle = scan(source)
    attack = "x' OR '1'='1"
    select = handle.select.copy().where(
        exp.EQ(this=exp.column("label", table="t"), expression=exp.Placeholder(this="1"))
    )
    filtered = PushedQuery(select=select, schema=handle.schema, inputs=handle.inputs)
    sql = source.render(filtered)
    assert "$1" in sql
    assert attack not in sql
    attacked = source.execute(filtered, QueryContext.standalone(parameters=(attack,)))
    assert attacked.read_all().num_rows == 0
    found = source.execute(filtered, QueryContext.standalone(parameters=("héllo ✓",))).read_all()
    assert found.column("id").to_pylist() == [1]
    assert query_rows(source.pool.dsn, "SELECT count(*) FROM typed") == [(3,)]


def test_sessions_are_read_only(source: PostgresConnector) -> None:
    with source.pool.connection() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_setting('transaction_read_only')")
        assert cursor.fetchall() == [("on",)]


def _running(dsn: str, marker: str) -> list[str]:
    rows = query_rows(
        dsn,
        "SELECT state FROM pg_stat_activity WHERE query ILIKE '%" + marker + "%' "
        "AND pid <> pg_backend_pid() AND datname = current_database()",
    )
    return [str(state) for (state,) in rows if state == "active"]


def _wait_until_idle(dsn: str, marker: str, seconds: float) -> float:
    start = time.perf_counter()
    while _running(dsn, marker):
        if time.perf_counter() - start > seconds:
            pytest.fail(f"the query {marker} still runs on the server {seconds}s after close")
        time.sleep(0.05)
    return time.perf_counter() - start


def _raw(conn: PostgresConnector, sql: str, schema: pa.Schema) -> PushedQuery:
    """A handle whose SELECT is `sql` (for server-side behaviour the planner never builds)."""
    select = parse_one(sql, read="postgres")
    assert isinstance(select, exp.Select)
    return PushedQuery(select=select, schema=schema, inputs=())


def test_closing_the_reader_cancels_a_huge_scan(pg_database: str) -> None:
    conn = connector(pg_database, pool_size=1)
    marker = "cancel_marker_scan"
    handle = _raw(
        conn,
        # In the select list the set-returning function streams (in FROM it would materialise).
        f"SELECT generate_series(1, 10000000000) AS {marker}",
        pa.schema([(marker, pa.int64())]),
    )
    reader = conn.execute(handle)
    assert reader.read_next_batch().num_rows > 0
    assert _running(pg_database, marker)
    started = time.perf_counter()
    reader.close()
    _wait_until_idle(pg_database, marker, 5)
    assert time.perf_counter() - started < 5
    # The one pooled connection survived the cancel and serves the next query.
    again = conn.execute(_raw(conn, "SELECT 1 AS one", pa.schema([("one", pa.int32())])))
    assert again.read_all().to_pylist() == [{"one": 1}]
    conn.close()


def test_closing_the_reader_cancels_a_sleeping_statement(pg_database: str) -> None:
    """The server sleeps 60 s after the first batch; closing must not wait for it."""
    conn = connector(pg_database)
    marker = "cancel_marker_sleep"
    handle = _raw(
        conn,
        f"SELECT g AS {marker}, pg_sleep(CASE WHEN g = 2500000 THEN 60 ELSE 0 END) AS z "
        "FROM generate_series(1, 3000000) AS g",
        pa.schema([(marker, pa.int64()), ("z", pa.string())]),
    )
    reader = conn.execute(handle)
    reader.read_next_batch()
    time.sleep(0.5)
    assert _running(pg_database, marker)
    started = time.perf_counter()
    reader.close()
    _wait_until_idle(pg_database, marker, 5)
    assert time.perf_counter() - started < 5
    conn.close()


def test_cancel_from_another_thread_reports_cancelled(pg_database: str) -> None:
    """pg_cancel_backend (an operator, or the server's deadline) surfaces as QueryCancelled."""
    conn = connector(pg_database, pool_size=1)
    handle = _raw(conn, "SELECT pg_sleep(30) AS z", pa.schema([("z", pa.string())]))

    def cancel_soon() -> None:
        time.sleep(1)
        run_sql(
            pg_database,
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
            "WHERE query ILIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid() "
            "AND datname = current_database()",
        )

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    started = time.perf_counter()
    with pytest.raises(QueryCancelled, match="the query was cancelled while PostgreSQL ran it"):
        conn.execute(handle).read_all()
    canceller.join()
    assert time.perf_counter() - started < 10
    conn.close()


def test_joins_and_filters_push_down_as_one_query(pg_database: str) -> None:
    run_sql(
        pg_database,
        "CREATE TABLE customers (id int PRIMARY KEY, name text)",
        "CREATE TABLE orders (id int PRIMARY KEY, customer int, total numeric(10,2))",
        "INSERT INTO customers VALUES (1, 'ada'), (2, 'bob')",
        "INSERT INTO orders VALUES (10, 1, 5.50), (11, 1, 4.50), (12, 3, 1.00)",
    )
    conn = connector(pg_database)
    joined = offer(
        conn,
        "SELECT c.id AS id, c.name AS name, o.id AS order_id, o.customer AS customer, "
        "o.total AS total FROM public.customers AS c LEFT JOIN public.orders AS o "
        "ON o.customer = c.id WHERE c.name <> 'zed'",
    )
    assert joined is not None
    sql = conn.render(joined)
    assert "LEFT JOIN" in sql
    assert "WHERE" in sql
    rows = conn.execute(joined).read_all().sort_by([("order_id", "ascending")])
    assert rows.to_pylist() == [
        {"id": 1, "name": "ada", "order_id": 10, "customer": 1, "total": Decimal("5.50")},
        {"id": 1, "name": "ada", "order_id": 11, "customer": 1, "total": Decimal("4.50")},
        {"id": 2, "name": "bob", "order_id": None, "customer": None, "total": None},
    ]
    conn.close()


def test_division_by_a_column_is_not_pushed(source: PostgresConnector) -> None:
    handle = scan(source)
    by_column = parse_one("t.big / t.id > 1", read="duckdb")
    by_literal = parse_one("t.big / 2 > 1", read="duckdb")
    answer = source.apply_filter(handle, [by_column, by_literal])
    assert answer is not None
    assert [s.value for s in answer.support] == ["unsupported", "exact"]
    assert "DOUBLE PRECISION" in source.render(answer.handle)


def test_database_collation_is_detected_at_check(pg_server_dsn: str) -> None:
    name = f"meshgate_test_collation_{int(time.time() * 1000) % 10**9}"
    run_sql(pg_server_dsn, f"CREATE DATABASE {name} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(pg_server_dsn)
        dsn = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
        run_sql(dsn, "CREATE TABLE words (word text, fancy text COLLATE \"en-x-icu\")")
        conn = connector(dsn)
        conn.check()
        assert conn._bytewise is True
        handle = scan(conn, "words", "w")
        sql = conn.render(handle)
        assert '"w"."word" AS' in sql  # already bytewise: sent as is, indexes stay usable
        assert '"w"."fancy" COLLATE "C" AS' in sql
        conn.close()
    finally:
        run_sql(pg_server_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_text_of_other_collations_orders_bytewise_like_the_engine(pg_database: str) -> None:
    run_sql(
        pg_database,
        'CREATE TABLE words (id int, word text COLLATE "en-x-icu")',
        "INSERT INTO words VALUES (1, 'b'), (2, 'B'), (3, 'a'), (4, 'A'), (5, 'é'), (6, '_')",
    )
    conn = connector(pg_database)
    handle = scan(conn, "words", "w")
    top = offer(conn, "SELECT w.id AS id, w.word AS word FROM public.words AS w "
                "ORDER BY w.word LIMIT 10")  # fmt: skip
    assert top is not None
    assert [r["word"] for r in conn.execute(top).read_all().to_pylist()] == sorted(
        ["b", "B", "a", "A", "é", "_"]
    )
    ranged = conn.apply_filter(handle, [parse_one("w.word < 'a'", read="duckdb")])
    assert ranged is not None
    assert sorted(r["word"] for r in conn.execute(ranged.handle).read_all().to_pylist()) == [
        "A", "B", "_"
    ]
    literal_only = conn.apply_filter(handle, [parse_one("'b' < 'a'", read="duckdb")])
    assert literal_only is None
    conn.close()


def test_source_down_is_unavailable_with_a_helpful_message() -> None:
    conn = connector("postgresql://meshgate:s3cret-pw@127.0.0.1:1/sales")
    with pytest.raises(SourceUnavailable) as raised:
        conn.check()
    message = raised.value.message  # what a caller may read: what to check, no names
    assert "check that the server runs" in message
    assert "127.0.0.1" not in message
    operator = str(raised.value)  # what `meshgate check` and the server log show
    assert "127.0.0.1:1/sales" in operator
    assert "meshgate" in operator
    assert "s3cret-pw" not in operator


def test_missing_database_is_unavailable_naming_it(pg_server_dsn: str) -> None:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(pg_server_dsn)
    dsn = urlunsplit((parts.scheme, parts.netloc, "/no_such_database_here", "", ""))
    with pytest.raises(SourceUnavailable, match="no_such_database_here"):
        connector(dsn).check()


def test_missing_table_is_reported(source: PostgresConnector) -> None:
    with pytest.raises(SourceUnavailable, match=r"no table 'public\.nope'"):
        source.table_columns(SourceTable("public", "nope"))


def test_numeric_overflow_at_the_planned_precision_is_a_query_error(
    source: PostgresConnector,
) -> None:
    from meshgate.errors import QueryValueError, Status

    handle = _raw(
        source, "SELECT t.amount AS amount FROM public.typed AS t",
        pa.schema([("amount", pa.decimal128(5, 2))]),
    )
    with pytest.raises(QueryValueError) as raised:
        source.execute(handle).read_all()
    assert raised.value.status is Status.INVALID_ARGUMENT
    assert "(a value is out of range)" in raised.value.message
    assert "typed" not in raised.value.message  # no physical names in what the caller sees
    assert raised.value.detail is not None
    assert "overflow" in raised.value.detail


def test_numeric_nan_is_refused_not_turned_into_a_number(source: PostgresConnector) -> None:
    from meshgate.errors import UnsupportedQuery

    handle = _raw(
        source, "SELECT CAST('NaN' AS NUMERIC) AS x", pa.schema([("x", pa.decimal128(38, 9))])
    )
    with pytest.raises(UnsupportedQuery, match="NaN"):
        source.execute(handle).read_all()
    scaled = _raw(source, "SELECT CAST('NaN' AS NUMERIC) AS x",  # sent as an unscaled BIGINT
                  pa.schema([("x", pa.decimal128(15, 2))]))
    with pytest.raises(UnsupportedQuery, match="NaN"):
        source.execute(scaled).read_all()


def test_options_are_validated() -> None:
    from meshgate.errors import ConfigError

    with pytest.raises(ConfigError, match="needs the option `dsn`"):
        PostgresConnector(ConnectorContext("warehouse", {}, Path(".")))
    with pytest.raises(ConfigError, match="pool_size"):
        connector("postgresql://x@localhost/db", pool_size=0)
    with pytest.raises(ConfigError, match="partitions"):
        connector("postgresql://x@localhost/db", partitions="many")


def test_dsn_descriptions_never_show_the_password() -> None:
    from meshgate_postgres.pool import describe_dsn

    assert describe_dsn("postgresql://ann:pw@db.example:6543/sales") == (
        "db.example:6543/sales as user 'ann'"
    )
    assert describe_dsn("host=db.example port=5433 dbname=hr user=bob password='p w'") == (
        "db.example:5433/hr as user 'bob'"
    )


def test_a_pooled_connection_killed_while_idle_is_replaced(source: PostgresConnector) -> None:
    one = _raw(source, "SELECT 1 AS one", pa.schema([("one", pa.int32())]))
    assert source.execute(one).read_all().num_rows == 1
    assert source.pool.borrowed == 0
    run_sql(
        source.pool.dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    time.sleep(0.2)
    assert source.execute(one).read_all().to_pylist() == [{"one": 1}]


def test_only_date_parts_with_identical_semantics_are_pushed(source: PostgresConnector) -> None:
    handle = scan(source)
    cases = {
        "EXTRACT(year FROM t.day) = 2024": "exact",
        "MONTH(t.day) = 2": "exact",
        "EXTRACT(week FROM t.day) = 9": "unsupported",  # ISO weeks vs PostgreSQL's numbering
        "YEAR(t.ts) = 2024": "unsupported",  # depends on the session time zone
        "CAST(t.ratio AS INT) = 0": "unsupported",  # rounding of doubles differs
        "CAST(t.id AS BIGINT) = 1": "exact",
    }
    answer = source.apply_filter(handle, [parse_one(c, read="duckdb") for c in cases])
    assert answer is not None
    assert [s.value for s in answer.support] == list(cases.values())
    rows = source.execute(answer.handle).read_all()
    assert rows.column("id").to_pylist() == [1]


def test_types_without_an_arrow_twin_arrive_as_postgres_text(pg_database: str) -> None:
    run_sql(
        pg_database,
        "CREATE TABLE odd (u uuid, jb jsonb, tz timetz, m money, r int4range, bits bit(3), "
        "moments timestamptz[], tags text[])",
        "INSERT INTO odd VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"b\": [1, 2]}', "
        "'12:00+02', 12.5, '[1,5)', B'101', '{2024-01-01 10:00+00}', '{a,NULL}')",
    )
    conn = connector(pg_database)
    handle = scan(conn, "odd", "o")
    assert set(handle.schema.names) - {"moments", "tags"} == {
        f.name for f in handle.schema if f.type == pa.string()
    }
    [row] = conn.execute(handle).read_all().to_pylist()
    assert row == {
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "jb": '{"b": [1, 2]}',
        "tz": "12:00:00+02",
        "m": "$12.50",
        "r": "[1,5)",
        "bits": "101",
        "moments": [dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)],
        "tags": ["a", None],
    }
    conn.close()


def test_planner_estimates_need_statistics_of_every_table_read(pg_database: str) -> None:
    """EXPLAIN's estimated_rows: unknown (None) until ANALYZE; then PostgreSQL's estimate
    from its histograms, close to the 100 rows that match."""
    run_sql(pg_database, "CREATE TABLE facts (id int, amount int)",
            "INSERT INTO facts SELECT g, g FROM generate_series(1, 1000) AS g")
    conn = connector(pg_database)
    try:
        condition = parse_one("t.amount > 900", read="duckdb")
        applied = conn.apply_filter(scan(conn, "facts"), [condition])
        assert applied is not None
        assert conn.estimate_rows(scan(conn, "facts")) is None, "never analysed: unknown"
        assert conn.estimate_rows(applied.handle) is None, "a guess without statistics"
        run_sql(pg_database, "ANALYZE facts")
        assert conn.estimate_rows(scan(conn, "facts")) == 1000
        estimate = conn.estimate_rows(applied.handle)
        assert estimate is not None
        assert 80 <= estimate <= 120
    finally:
        conn.close()
