"""SQL a newcomer types in the first hour (issue 13), through a real ADBC Flight SQL client:
VALUES lists, result column names, and the messages of the errors they meet first."""

from __future__ import annotations

from collections.abc import Iterator

import adbc_driver_flightsql.dbapi as adbc
import pyarrow as pa
import pytest


@pytest.fixture
def analyst_sql(uri: str) -> Iterator[adbc.Cursor]:
    with adbc.connect(uri, db_kwargs={"username": "analyst", "password": "analyst"},
                      autocommit=True) as conn, conn.cursor() as cursor:  # fmt: skip
        yield cursor


def _answer(cursor: adbc.Cursor, sql: str) -> pa.Table:
    cursor.execute(sql)
    table: pa.Table = cursor.fetch_arrow_table()
    return table


def test_a_bare_values_list_is_a_query_with_duckdb_s_column_names(
    analyst_sql: adbc.Cursor,
) -> None:
    one = _answer(analyst_sql, "VALUES (1)")
    assert one.column_names == ["col0"]
    assert one.to_pylist() == [{"col0": 1}]
    two = _answer(analyst_sql, "VALUES (1, 'a'), (2, 'b')")
    assert two.column_names == ["col0", "col1"]
    assert two.to_pydict() == {"col0": [1, 2], "col1": ["a", "b"]}


def test_a_bare_values_list_may_be_ordered_and_cut(analyst_sql: adbc.Cursor) -> None:
    table = _answer(analyst_sql, "VALUES (2, 'b'), (1, 'a'), (3, 'c') ORDER BY 1 DESC LIMIT 2")
    assert table.to_pydict() == {"col0": [3, 2], "col1": ["c", "b"]}


def test_star_over_unnest_is_named_unnest(analyst_sql: adbc.Cursor) -> None:
    table = _answer(analyst_sql, "SELECT * FROM unnest([1, 2]) ORDER BY 1")
    assert table.to_pydict() == {"unnest": [1, 2]}


def test_values_in_from_is_named_after_the_user_s_columns_then_duckdb_s(
    analyst_sql: adbc.Cursor,
) -> None:
    table = _answer(analyst_sql, "SELECT * FROM (VALUES (1, 'x', true)) AS v(n) WHERE col1 = 'x'")
    assert table.column_names == ["n", "col1", "col2"]
    assert table.to_pylist() == [{"n": 1, "col1": "x", "col2": True}]


def test_a_quoted_alias_comes_back_exactly_as_written(analyst_sql: adbc.Cursor) -> None:
    table = _answer(analyst_sql, 'SELECT 1 AS "Excess Discount Amount", 2 AS Total')
    assert table.column_names == ["Excess Discount Amount", "Total"]


def test_unaliased_expressions_are_named_as_duckdb_names_them(analyst_sql: adbc.Cursor) -> None:
    table = _answer(
        analyst_sql,
        "SELECT count(*), sum(o.amount), current_user, o.customer_id, o.customer_id + 1 "
        "FROM sales.orders AS o GROUP BY o.customer_id ORDER BY 1 DESC LIMIT 1",
    )
    assert table.column_names == [
        "count_star()", "sum(o.amount)", "current_user", "customer_id", "(o.customer_id + 1)",
    ]
    assert table.column("current_user").to_pylist() == ["analyst"]


def test_star_columns_keep_the_product_s_names_beside_named_expressions(
    analyst_sql: adbc.Cursor,
) -> None:
    table = _answer(analyst_sql, "SELECT 1 AS first, *, amount * 2 FROM sales.orders LIMIT 1")
    assert table.column_names == [
        "first", "order_id", "employee_id", "customer_id", "amount", "ts", "(amount * 2)",
    ]


@pytest.fixture
def admin_sql(uri: str) -> Iterator[adbc.Cursor]:
    with adbc.connect(uri, db_kwargs={"username": "admin", "password": "admin"},
                      autocommit=True) as conn, conn.cursor() as cursor:  # fmt: skip
        yield cursor


@pytest.mark.parametrize("order", ["lower(region)", "CASE WHEN n > 0 THEN region END"])
def test_an_order_by_expression_on_an_alias_survives_decorrelating_an_in_subquery(
    admin_sql: adbc.Cursor, order: str
) -> None:
    # The IN-subquery (another source) becomes a join `_u_0` that has a `region` column too.
    table = _answer(
        admin_sql,
        "SELECT region, count(*) AS n FROM hr.employees "
        "WHERE region IN (SELECT region FROM finance.revenue_by_region) "
        f"GROUP BY region ORDER BY {order}",
    )
    assert table.column("region").to_pylist() == ["APAC", "EU", "US"]


def test_an_unqualified_product_gets_a_hint_among_the_caller_s_products(
    analyst_sql: adbc.Cursor,
) -> None:
    with pytest.raises(adbc.ProgrammingError) as raised:
        analyst_sql.execute("SELECT count(*) FROM orders")
    assert (
        "data product 'orders' does not exist or you are not allowed to read it; did you mean "
        "sales.orders? list the products you can read with `SELECT * FROM meshgate.products`"
    ) in str(raised.value)


def test_an_ungranted_near_product_is_not_suggested(analyst_sql: adbc.Cursor) -> None:
    # finance.budgets exists, but analyst is not granted finance
    with pytest.raises(adbc.ProgrammingError) as raised:
        analyst_sql.execute("SELECT * FROM budgets")
    assert "does not exist or you are not allowed to read it; list the products" in str(
        raised.value
    )
    assert "finance" not in str(raised.value)


def test_what_adbc_adds_to_every_error_is_pyarrow_s_and_the_driver_s(
    analyst_sql: adbc.Cursor,
) -> None:
    # Measured, not chosen (README, "Errors reach ADBC as ..."): pyarrow's Flight server appends
    # ". Detail: Python exception: <type>" to every INVALID_ARGUMENT/NOT_FOUND raised from
    # Python, and the ADBC driver "(<gRPC code>; <call>)". Should either change, this fails and
    # the README's explanation must follow.
    with pytest.raises(adbc.ProgrammingError) as raised:
        analyst_sql.execute("SELECT * FROM sales.nope")
    assert str(raised.value) == (
        "NOT_FOUND: [FlightSQL] data product 'sales.nope' does not exist or you are not allowed "
        "to read it; list the products you can read with `SELECT * FROM meshgate.products`. "
        "Detail: Python exception: NotFound (NotFound; Prepare)"
    )


def test_a_plain_column_is_named_as_its_product_names_it(analyst_sql: adbc.Cursor) -> None:
    table = _answer(analyst_sql, "SELECT AMOUNT, o.Order_Id FROM sales.orders AS o LIMIT 1")
    assert table.column_names == ["amount", "order_id"]


def test_strict_pushdown_is_a_connection_option_in_adbc(uri: str) -> None:
    """The README's advice: ADBC sends session options given in `conn_kwargs`; in `db_kwargs`
    the driver refuses them before it connects."""
    sql = "SELECT count(*) AS n FROM sales.customers WHERE regexp_matches(name, '^A')"
    option = {"adbc.flight.sql.session.option.strict_pushdown": "true"}
    login = {"username": "analyst", "password": "analyst"}
    with (
        adbc.connect(uri, db_kwargs=login, conn_kwargs=option, autocommit=True) as conn,
        conn.cursor() as cursor,
        pytest.raises(adbc.ProgrammingError) as refused,
    ):
        cursor.execute(sql)
    assert "strict pushdown" in str(refused.value)
    with pytest.raises(adbc.ProgrammingError) as misplaced:
        adbc.connect(uri, db_kwargs={**login, **option}, autocommit=True)
    assert "Unknown database option" in str(misplaced.value)
