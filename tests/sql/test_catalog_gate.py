"""The gate admits DESCRIBE and SHOW in exactly the forms meshgate answers, nothing more.

`parse_request` is what a front end calls; anything that is not one of these forms goes to
the query gate (`parse_statement`, which still refuses every DESCRIBE and SHOW: product
definitions and policy expressions may never be one) or is refused with the list of forms.
"""

from __future__ import annotations

import pytest

from meshgate.errors import READ_ONLY, ForbiddenStatement, SqlSyntaxError
from meshgate.query.model import CatalogCommand, Statement
from meshgate.sql.parse import parse_request, parse_statement

ADMITTED = [
    ("DESCRIBE sales.orders", "describe", (("sales", False), ("orders", False))),
    ("describe SALES.ORDERS;", "describe", (("SALES", False), ("ORDERS", False))),
    ('DESCRIBE "Sales"."Orders"', "describe", (("Sales", True), ("Orders", True))),
    ("DESCRIBE demo.sales.orders", "describe",
     (("demo", False), ("sales", False), ("orders", False))),
    ("DESCRIBE orders", "describe", (("orders", False),)),
    # A keyword spelt as itself is a name where DuckDB takes one (not leading if reserved).
    ("DESCRIBE sales.date", "describe", (("sales", False), ("date", False))),
    ("DESCRIBE sales.order", "describe", (("sales", False), ("order", False))),
    ("DESCRIBE /* the orders */ sales.orders ;;", "describe",
     (("sales", False), ("orders", False))),
    ("SHOW TABLES", "show_tables", ()),
    ("show tables;", "show_tables", ()),
    ("SHOW TABLES FROM sales", "show_tables", (("sales", False),)),
    ("SHOW TABLES FROM demo.sales", "show_tables", (("demo", False), ("sales", False))),
    ('SHOW TABLES FROM "Sales"', "show_tables", (("Sales", True),)),
    ("SHOW SCHEMAS", "show_schemas", ()),
    ("  show schemas ; ", "show_schemas", ()),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "kind", "name"), ADMITTED, ids=[a[0] for a in ADMITTED])
def test_catalog_commands_are_admitted_in_their_exact_forms(
    sql: str, kind: str, name: tuple[tuple[str, bool], ...]
) -> None:
    assert parse_request(sql) == CatalogCommand(kind, name, sql)  # type: ignore[arg-type]


_FORMS = (
    "meshgate answers DESCRIBE domain.product, SHOW TABLES [FROM domain] and SHOW SCHEMAS; "
    "for anything else query information_schema.tables, .columns or .schemata"
)
NEAR_MISSES = [
    "DESCRIBE",
    "DESCRIBE;",
    "DESCRIBE SELECT 1",
    "DESCRIBE (SELECT 1)",
    "DESCRIBE sales.orders x",
    "DESCRIBE sales.orders, hr.employees",
    "DESCRIBE a.b.c.d",
    "DESCRIBE sales.",
    "DESCRIBE .orders",
    "DESCRIBE sales..orders",
    "DESCRIBE 'orders'",
    "DESCRIBE 'data.csv'",
    "DESCRIBE sales.'orders'",
    "DESCRIBE ?",
    "DESCRIBE $1",
    "DESCRIBE 1",
    "DESCRIBE select.x",
    "DESCRIBE order.x",
    "DESCRIBE read_csv('/etc/passwd')",
    "DESCRIBE sales.orders.x.y",
    "SHOW",
    "SHOW;",
    "SHOW ALL TABLES",
    "SHOW TABLES FROM",
    "SHOW TABLES FROM a.b.c",
    "SHOW TABLES IN sales",
    "SHOW TABLES FROM 'sales'",
    "SHOW TABLES LIKE 'x%'",
    "SHOW TABLES sales",
    'SHOW "TABLES"',
    'SHOW "SCHEMAS"',
    "SHOW SCHEMAS FROM demo",
    "SHOW SCHEMAS x",
    "SHOW DATABASES",
    "SHOW memory_limit",
    "SHOW sales.orders",
    "SHOW USERS",
]


@pytest.mark.parametrize("sql", NEAR_MISSES)
def test_other_forms_are_refused_with_the_forms_meshgate_answers(sql: str) -> None:
    word = sql.split(maxsplit=1)[0].rstrip(";").upper()
    with pytest.raises(ForbiddenStatement) as raised:
        parse_request(sql)
    assert raised.value.message == f"this form of {word} is not supported: {_FORMS}"


def test_a_catalog_command_is_one_statement() -> None:
    for sql in ("SHOW TABLES; DROP TABLE x", "DESCRIBE sales.orders; DESCRIBE hr.employees"):
        with pytest.raises(ForbiddenStatement) as raised:
            parse_request(sql)
        assert raised.value.message == "send one statement at a time: this text holds 2 statements"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SUMMARIZE sales.orders", f"SUMMARIZE statements are not allowed: {READ_ONLY}"),
        ("DESC sales.orders", f"DESC statements are not allowed: {READ_ONLY}"),
        ("EXPLAIN DESCRIBE sales.orders",
         "EXPLAIN DESCRIBE is not supported: EXPLAIN shows a query's plan; run DESCRIBE itself"),
        ("explain show tables",
         "EXPLAIN SHOW is not supported: EXPLAIN shows a query's plan; run SHOW itself"),
        ("PRAGMA show_tables", f"PRAGMA statements are not allowed: {READ_ONLY}"),
    ],
)
def test_other_statements_stay_refused(sql: str, message: str) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_request(sql)
    assert raised.value.message == message


def test_a_quoted_keyword_is_a_name_not_the_command() -> None:
    with pytest.raises(SqlSyntaxError):
        parse_request('"DESCRIBE" sales.orders')


def test_queries_go_through_the_query_gate() -> None:
    request = parse_request("SELECT 1 AS one")
    assert isinstance(request, Statement)
    assert request.tree.sql() == "SELECT 1 AS one"
    with pytest.raises(ForbiddenStatement):
        parse_request("SELECT * FROM read_csv('/etc/passwd')")


@pytest.mark.parametrize("sql", [a[0] for a in ADMITTED])
def test_the_query_gate_still_refuses_catalog_commands(sql: str) -> None:
    """Product definitions and policy expressions are parsed by `parse_statement`: never a
    DESCRIBE or SHOW there."""
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    word = sql.split(maxsplit=1)[0].upper()
    assert raised.value.message == f"{word} statements are not allowed: {READ_ONLY}"
