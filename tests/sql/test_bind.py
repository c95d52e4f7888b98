"""Binding is total and follows SQL's scoping rules (ARCHITECTURE.md §4.4, §4.8).

Unit tests bind against the demo catalog as `analyst` (granted sales.* and hr.*). Where a query
uses only CTEs, the bound tree is run in a plain DuckDB: a wrong binding would change the answer.
The last tests go through QueryService, as a client's query would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from meshgate.catalog.catalog import CatalogView
from meshgate.errors import ProductNotFound, UnsupportedQuery
from meshgate.principal import Principal
from meshgate.query.model import BoundQuery
from meshgate.query.names import LOCAL_CATALOG, PRODUCT_META
from meshgate.service import QueryService
from meshgate.sql.bind import _Binder, bind
from meshgate.sql.parse import parse_statement
from meshgate.sql.principal_functions import substitute_principal

PROBE = (
    "SELECT s.name, s.setting FROM (WITH pg_settings AS (SELECT 1 AS x) SELECT x FROM "
    "pg_settings) a CROSS JOIN pg_settings AS s"
)


@pytest.fixture(scope="module")
def service(demo_dir: Path) -> Iterator[QueryService]:
    svc = QueryService.from_config(demo_dir)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def analyst(service: QueryService) -> Principal:
    return service.principal("analyst")


@pytest.fixture(scope="module")
def view(service: QueryService, analyst: Principal) -> CatalogView:
    return service.catalog.view(analyst)


def bound(sql: str, view: CatalogView, default_domain: str | None = None) -> BoundQuery:
    return bind(parse_statement(sql).tree, view, view.principal, default_domain)


def answer(result: BoundQuery) -> list[tuple[object, ...]]:
    """What DuckDB answers for a bound tree that reads CTEs only."""
    assert not result.products
    return duckdb.connect().sql(result.tree.sql("duckdb")).fetchall()


def product_refs(result: BoundQuery) -> list[str]:
    return sorted(
        t.meta[PRODUCT_META].qualified_name
        for t in result.tree.find_all(exp.Table)
        if PRODUCT_META in t.meta
    )


# --- CTE scoping -----------------------------------------------------------------------------
def test_the_probe_no_longer_reads_the_engine_settings(view: CatalogView) -> None:
    with pytest.raises(ProductNotFound) as raised:
        bound(PROBE, view)
    assert raised.value.name == "pg_settings"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM (WITH c AS (SELECT 1 AS x) SELECT x FROM c) a, c",
        "SELECT (WITH c AS (SELECT 1 AS x) SELECT x FROM c), (SELECT x FROM c)",
        "SELECT 1 WHERE EXISTS (WITH c AS (SELECT 1 AS x) SELECT 1 FROM c) AND 1 IN (TABLE_REF)",
        "(WITH c AS (SELECT 1 AS x) SELECT x FROM c) UNION ALL SELECT x FROM c",
        "SELECT x FROM c UNION ALL (WITH c AS (SELECT 1 AS x) SELECT x FROM c)",
        "WITH a AS (SELECT x FROM c), c AS (SELECT 1 AS x) SELECT * FROM a",
        "WITH c AS (SELECT x FROM c) SELECT * FROM c",
        "SELECT * FROM (SELECT 1 AS y) o, LATERAL (WITH c AS (SELECT 1 AS x) SELECT x FROM c), c",
        "WITH a AS (WITH c AS (SELECT 1 AS x) SELECT x FROM c) SELECT * FROM a, c",
    ],
)
def test_a_cte_is_invisible_outside_its_with(view: CatalogView, sql: str) -> None:
    with pytest.raises(ProductNotFound) as raised:
        bound(sql.replace("TABLE_REF", "SELECT x FROM c"), view)
    assert raised.value.name == "c"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("WITH c AS (SELECT 1 AS x) SELECT x FROM c UNION ALL SELECT x + 1 FROM c", [(1,), (2,)]),
        ("WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS x FROM a) SELECT x FROM b", [(2,)]),
        (
            "WITH a AS (SELECT 1 AS x) "
            "SELECT i.x, a.x FROM (WITH a AS (SELECT 2 AS x) SELECT x FROM a) i, a",
            [(2, 1)],
        ),
        (
            "WITH a AS (SELECT 1 AS x) SELECT (WITH b AS (SELECT x + 1 AS x FROM a) "
            "SELECT x FROM b)",
            [(2,)],
        ),
        (
            "WITH a AS (SELECT 1 AS x), t AS (SELECT 1 AS x UNION ALL SELECT 2) "
            "SELECT t.x FROM t WHERE EXISTS (SELECT 1 FROM a WHERE a.x = t.x)",
            [(1,)],
        ),
        (
            "WITH a AS (SELECT 1 AS x UNION ALL SELECT 2) "
            "SELECT a.x, l.y FROM a, LATERAL (SELECT a.x * 10 AS y FROM a AS b WHERE b.x = a.x) l "
            "ORDER BY 1",
            [(1, 10), (2, 20)],
        ),
        (
            "WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM t WHERE n < 3) "
            "SELECT count(*) FROM t",
            [(3,)],
        ),
        ('WITH "X" AS (SELECT 1 AS x) SELECT x.x FROM x', [(1,)]),
        ("WITH c AS (SELECT 1 AS x) SELECT c FROM (SELECT 7 AS c) AS c", [(7,)]),
    ],
)
def test_ctes_in_scope_bind_as_sql_scopes_them(
    view: CatalogView, sql: str, expected: list[tuple[object, ...]]
) -> None:
    assert answer(bound(sql, view)) == expected


def test_a_cte_shadows_a_product_only_inside_its_scope(view: CatalogView) -> None:
    inner_only = bound("WITH orders AS (SELECT 1 AS x) SELECT x FROM orders", view, "sales")
    assert not inner_only.products
    both = bound(
        "SELECT count(*) FROM (WITH orders AS (SELECT 1 AS x) SELECT x FROM orders) a, orders",
        view,
        "sales",
    )
    assert product_refs(both) == ["sales.orders"]


def test_a_cte_may_read_the_product_it_shadows(view: CatalogView) -> None:
    result = bound(
        "WITH orders AS (SELECT order_id FROM orders WHERE order_id < 3) SELECT * FROM orders",
        view,
        "sales",
    )
    assert product_refs(result) == ["sales.orders"]


def test_every_cte_gets_a_name_no_user_text_or_internal_name_can_shadow(
    view: CatalogView,
) -> None:
    result = bound(
        "WITH __fragment_1 AS (SELECT 1 AS x), f1 AS (SELECT 2 AS x) "
        "SELECT * FROM __fragment_1, f1, sales.orders",
        view,
    )
    defined = {cte.alias_or_name for cte in result.tree.find_all(exp.CTE)}
    assert len(defined) == 2
    assert not defined & {"__fragment_1", "f1"}
    unqualified = {t.name for t in result.tree.find_all(exp.Table) if not t.db}
    assert unqualified == defined
    # Column references keep working through the alias the user wrote (or implied).
    assert {t.alias_or_name for t in result.tree.find_all(exp.Table)} == {
        "__fragment_1",
        "f1",
        "orders",
    }


# --- nothing but products, CTEs and system tables ------------------------------------------
UNREACHABLE = [
    "pg_settings",
    "duckdb_settings",
    "duckdb_tables",
    "sqlite_master",
    "main.sqlite_master",
    "pg_catalog.pg_tables",
    "information_schema.views",
    "information_schema.referential_constraints",
    "system.information_schema.tables",
    "other_mesh.information_schema.tables",
    "system.main.duckdb_settings",
    "temp.main.x",
    "memory.main.x",
    "f1",
    "__fragment_1",
    "system_products",
    '"$local"."$default".system_products',
    '"$local"."$default".x',
    '"$source:sales_db"."$default".orders',
    '"$source:hr_db"."$default".employees',
    'demo."$local".system_products',
    "finance.budgets",
    "demo.finance.budgets",
    "other_mesh.sales.orders",
]
PLACES = [
    "SELECT * FROM {t}",
    "WITH c AS (SELECT * FROM {t}) SELECT * FROM c",
    "SELECT * FROM sales.orders WHERE EXISTS (SELECT 1 FROM {t})",
    "SELECT * FROM sales.orders o, LATERAL (SELECT * FROM {t}) l",
    "SELECT order_id FROM sales.orders UNION ALL SELECT 1 FROM {t}",
    "SELECT * FROM sales.orders o JOIN {t} AS x ON TRUE",
]


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("table", UNREACHABLE)
@pytest.mark.parametrize("default_domain", [None, "sales"])
def test_engine_source_and_internal_names_are_unreachable(
    view: CatalogView, table: str, place: str, default_domain: str | None
) -> None:
    # Parsed without the gate (which already refuses some of these as paths): binding alone
    # must leave no way to an engine's or a source's catalog, nor to meshgate's own names.
    tree = sqlglot.parse_one(place.format(t=table), read="duckdb")
    assert isinstance(tree, exp.Query)
    with pytest.raises(ProductNotFound):
        bind(tree, view, view.principal, default_domain)


def test_system_tables_bind_to_the_callers_rows(view: CatalogView) -> None:
    result = bound("SELECT p.product FROM meshgate.products AS p", view)
    [table] = list(result.tree.find_all(exp.Table))
    assert table.catalog == LOCAL_CATALOG
    assert table.alias_or_name == "p"
    domains = set(result.local_tables["system_products"].column("domain").to_pylist())
    assert domains == {"sales", "hr"}


# --- table modifiers that would be lost -------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "feature"),
    [
        ("SELECT * FROM sales.orders TABLESAMPLE (1 ROWS)", "TABLESAMPLE"),
        ("SELECT * FROM sales.orders PIVOT (count(*) FOR employee_id IN (1))", "PIVOT"),
        ("SELECT * FROM sales.orders AT (TIMESTAMP => '2024-01-01')", "time travel"),
        ("SELECT * FROM ONLY sales.orders", "ONLY"),
        ("SELECT * FROM sales.orders WITH ORDINALITY", "WITH ORDINALITY"),
        ("SELECT * FROM meshgate.products TABLESAMPLE (1 ROWS)", "TABLESAMPLE"),
        ("WITH c AS (SELECT 1 AS x) SELECT * FROM c TABLESAMPLE (1 ROWS)", "TABLESAMPLE"),
    ],
)
def test_the_binder_refuses_what_a_table_reference_would_lose(
    view: CatalogView, sql: str, feature: str
) -> None:
    # Parsed without the gate: the binder must hold even if the gate missed a form.
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(tree, exp.Query)
    with pytest.raises(UnsupportedQuery) as raised:
        bind(tree, view, view.principal)
    assert raised.value.message.startswith(feature)
    assert "is not supported yet" in raised.value.message


@pytest.mark.parametrize(
    ("sql", "feature"),
    [
        (
            "SELECT count(*) FROM (sales.orders o JOIN sales.customers c "
            "ON o.customer_id = c.customer_id)",
            "a parenthesised join",
        ),
        ("SELECT a FROM sales.orders AS o(a, b)", "column aliases"),
        ("WITH c AS (SELECT 1 AS x) SELECT y FROM c AS d(y)", "column aliases"),
    ],
)
def test_gated_queries_with_lossy_table_forms_are_refused(
    view: CatalogView, sql: str, feature: str
) -> None:
    with pytest.raises(UnsupportedQuery) as raised:
        bound(sql, view)
    assert raised.value.message.startswith(feature)


# --- principal functions ----------------------------------------------------------------------
def evaluate(sql: str, principal: Principal) -> tuple[list[tuple[object, ...]], list[str]]:
    tree = substitute_principal(parse_statement(sql).tree, principal)
    relation = duckdb.connect().sql(tree.sql("duckdb"))
    return relation.fetchall(), [str(t) for t in relation.types]


def test_principal_functions_become_the_callers_values() -> None:
    ann = Principal("ann", frozenset({"sales", "auditor"}), {"region": "EU"})
    rows, types = evaluate(
        "SELECT current_user, current_roles(), user_attribute('region'), "
        "USER_ATTRIBUTE('missing'), 'auditor' = ANY(current_roles()) AS audits",
        ann,
    )
    assert rows == [("ann", ["auditor", "sales"], "EU", None, True)]
    assert types == ["VARCHAR", "VARCHAR[]", "VARCHAR", "VARCHAR", "BOOLEAN"]


def test_a_principal_without_roles_has_an_empty_typed_list() -> None:
    rows, types = evaluate("SELECT current_roles() AS r", Principal("x", frozenset()))
    assert rows == [([],)]
    assert types == ["VARCHAR[]"]


def test_projected_principal_functions_keep_their_names_as_columns() -> None:
    tree = substitute_principal(
        parse_statement("SELECT current_user, user_attribute('region'), current_user AS me").tree,
        Principal("ann", frozenset()),
    )
    assert isinstance(tree, exp.Select)
    assert tree.named_selects == ["current_user", "user_attribute('region')", "me"]


@pytest.mark.parametrize(
    "call",
    ["user_attribute(name)", "user_attribute(1)", "user_attribute('a', 'b')", "user_attribute()"],
)
def test_user_attribute_needs_one_string_literal(call: str) -> None:
    tree = parse_statement(f"SELECT {call} FROM sales.orders").tree
    with pytest.raises(UnsupportedQuery) as raised:
        substitute_principal(tree, Principal("ann", frozenset(), {"region": "EU"}))
    assert "string literal" in raised.value.message


def test_substitution_works_on_a_policy_expression_and_leaves_the_input_alone() -> None:
    condition = sqlglot.parse_one("region = user_attribute('region')", read="duckdb")
    substituted = substitute_principal(condition, Principal("ann", frozenset(), {"region": "EU"}))
    assert substituted.sql("duckdb") == "region = 'EU'"
    assert condition.sql("duckdb") == "region = USER_ATTRIBUTE('region')"


def test_bind_uses_the_principal_it_is_given_not_the_views(
    service: QueryService, view: CatalogView
) -> None:
    admin = service.principal("admin")
    result = bind(parse_statement("SELECT current_user AS me").tree, view, admin)
    assert duckdb.connect().sql(result.tree.sql("duckdb")).fetchall() == [("admin",)]


# --- end to end, as analyst -------------------------------------------------------------------
def test_the_probe_answers_not_found_end_to_end(service: QueryService, analyst: Principal) -> None:
    with pytest.raises(ProductNotFound) as raised:
        service.query(PROBE, analyst)
    assert raised.value.status.value == "NOT_FOUND"


def test_legal_cte_shadowing_end_to_end(service: QueryService, analyst: Principal) -> None:
    direct = service.query(
        "SELECT count(*) AS n FROM hr.employees WHERE region = 'EU'", analyst
    ).to_pylist()
    shadowed = service.query(
        "WITH employees AS (SELECT id FROM employees WHERE region = 'EU') "
        "SELECT count(*) AS n FROM employees",
        analyst,
        default_domain="hr",
    ).to_pylist()
    assert shadowed == direct
    assert direct[0]["n"] > 0


def test_principal_functions_end_to_end(service: QueryService, analyst: Principal) -> None:
    eu = service.query(
        "SELECT count(*) AS n FROM hr.employees WHERE region = 'EU'", analyst
    ).to_pylist()
    mine = service.query(
        "SELECT count(*) AS n FROM hr.employees WHERE region = user_attribute('region') "
        "AND 'analyst' = ANY(current_roles())",
        analyst,
    ).to_pylist()
    assert mine == eu


def test_tablesample_is_refused_not_dropped_end_to_end(
    service: QueryService, analyst: Principal
) -> None:
    with pytest.raises(UnsupportedQuery):
        service.query("SELECT count(*) FROM sales.orders TABLESAMPLE (1 ROWS)", analyst)


# --- what the user reads when binding refuses -------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "dialect", "message"),
    [
        ("SELECT * FROM sales.orders TABLESAMPLE (1 ROWS)", "duckdb",
         "TABLESAMPLE is not supported yet; take a sample with ORDER BY random() LIMIT n"),
        # Forms no entry of the binder's table names: the generic refusal, by the arg's name.
        ("SELECT * FROM sales.orders INDEXED BY idx", "sqlite",
         "INDEXED on a table reference is not supported yet; reference the table plainly"),
        ("SELECT * FROM sales.orders PARTITION (p1)", "mysql",
         "PARTITION on a table reference is not supported yet; reference the table plainly"),
        ("SELECT * FROM sales.orders AS o(a, b)", "duckdb",
         "column aliases on a table reference (FROM t AS x(a, b)) are not supported yet; "
         "rename the columns in the SELECT list"),
        # The table function is quoted back as DuckDB spells it, the dialect the user wrote.
        ("SELECT * FROM read_parquet(['a.parquet', 'b.parquet'])", "duckdb",
         "table expression READ_PARQUET(['a.parquet', 'b.parquet']) is not a data product; "
         "reference products as domain.product"),
    ],
)  # fmt: skip
def test_a_refused_table_reference_says_what_and_what_to_do(
    view: CatalogView, sql: str, dialect: str, message: str
) -> None:
    tree = sqlglot.parse_one(sql, read=dialect)
    assert isinstance(tree, exp.Query)
    with pytest.raises(UnsupportedQuery) as raised:
        bind(tree, view, view.principal)
    assert raised.value.message == message


@pytest.mark.parametrize(
    ("sql", "default_domain", "name", "hint"),
    [
        ("SELECT * FROM othercat.sales.orders", None, "othercat.sales.orders",
         "did you mean sales.orders? "),
        ("SELECT * FROM orders", None, "orders", "did you mean sales.orders? "),
        ("SELECT * FROM finance.orders", None, "finance.orders", "did you mean sales.orders? "),
        ("SELECT * FROM sales.order", None, "sales.order",
         "did you mean sales.orders or sales.order_items? "),
        ("SELECT * FROM employe", None, "employe", "did you mean hr.employees? "),
        ("SELECT * FROM meshgate.secrets", None, "meshgate.secrets", ""),
        ("SELECT * FROM finance.budgets", "sales", "finance.budgets", ""),
    ],
)  # fmt: skip
def test_not_found_names_the_reference_as_written_and_the_caller_s_near_products(
    view: CatalogView, sql: str, default_domain: str | None, name: str, hint: str
) -> None:
    with pytest.raises(ProductNotFound) as raised:
        bound(sql, view, default_domain)
    assert raised.value.name == name
    assert raised.value.message == (
        f"data product {name!r} does not exist or you are not allowed to read it; {hint}"
        "list the products you can read with `SELECT * FROM meshgate.products`"
    )


@pytest.mark.parametrize("sql", ["SELECT * FROM budgets", "SELECT * FROM finance.budget",
                                 "SELECT * FROM sales.budgets"])  # fmt: skip
def test_an_ungranted_product_is_never_suggested(
    service: QueryService, view: CatalogView, sql: str
) -> None:
    # admin, granted finance, is told about finance.budgets; analyst is not granted finance
    admin = service.catalog.view(service.principal("admin"))
    with pytest.raises(ProductNotFound) as told:
        bound(sql, admin)
    assert "did you mean finance.budgets?" in told.value.message
    with pytest.raises(ProductNotFound) as raised:
        bound(sql, view)
    assert "did you mean" not in raised.value.message
    assert "finance" not in raised.value.message.replace(raised.value.name, "")


def test_a_product_definition_s_view_suggests_nothing(
    service: QueryService, analyst: Principal
) -> None:
    # Definitions bind against every product (their owner's rights): a hint would name
    # products the caller may not read.
    every_product = CatalogView(service.catalog, analyst, service.catalog.products)
    with pytest.raises(ProductNotFound) as raised:
        bound("SELECT * FROM finance.budget", every_product)
    assert "did you mean" not in raised.value.message


def test_a_reference_the_walk_never_reached_fails_closed(view: CatalogView) -> None:
    """The last check refuses any table reference left unresolved, whatever the reason."""
    tree = sqlglot.parse_one("SELECT * FROM read_parquet(['x.parquet']) AS t", read="duckdb")
    binder = _Binder(view, None)
    with pytest.raises(UnsupportedQuery) as raised:
        binder.require_total(tree)
    assert raised.value.message == (
        "meshgate could not resolve the table reference READ_PARQUET(['x.parquet']) AS t; "
        "reference products as domain.product"
    )


@pytest.mark.parametrize("name", ['"Order Totals"', '"select"', '"x""y"', '"Ünïcode"'])
def test_ctes_whose_names_need_quotes_bind_and_run(view: CatalogView, name: str) -> None:
    result = bound(
        f"WITH {name} AS (SELECT 1 AS x) SELECT t.x, (SELECT count(*) FROM {name}) AS n "
        f"FROM {name} AS t",
        view,
    )
    assert answer(result) == [(1, 1)]


# --- columns qualified by domain and product --------------------------------------------------

@pytest.mark.parametrize("sql", [
    # SQLAlchemy writes every column as schema.table.column
    "SELECT hr.employees.id, hr.employees.region FROM hr.employees "
    "WHERE hr.employees.id < 10 ORDER BY hr.employees.id",
    "SELECT demo.hr.employees.id, demo.hr.employees.region FROM demo.hr.employees "
    "WHERE demo.hr.employees.id < 10 ORDER BY 1",
    "SELECT HR.EMPLOYEES.ID AS id, hr.Employees.Region AS region FROM hr.employees "
    "WHERE id < 10 ORDER BY 1",
    "SELECT e.id, e.region FROM hr.employees e WHERE e.id < 10 AND EXISTS ("
    "SELECT 1 FROM hr.departments WHERE hr.departments.id = e.department_id) ORDER BY 1",
])
def test_columns_qualified_by_domain_and_product_read_that_product(
    service: QueryService, analyst: Principal, sql: str
) -> None:
    plain = ("SELECT id, region FROM hr.employees WHERE id < 10 AND department_id IS NOT NULL "
             "ORDER BY id")
    assert service.query(sql, analyst).to_pylist() == service.query(plain, analyst).to_pylist()


def test_a_struct_field_of_an_alias_is_not_taken_for_a_domain(view: CatalogView) -> None:
    result = bound("SELECT e.name.first FROM hr.employees e", view)
    column = next(result.tree.find_all(exp.Column))
    assert (column.db, column.table, column.name) == ("e", "name", "first")
