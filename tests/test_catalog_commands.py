"""DESCRIBE, SHOW and information_schema answer from meshgate's catalog, under the caller's grants.

On the demo mesh: `partner` reads the sales domain only (with the mesh-wide pii rule masking
sales.customers.email), `analyst` reads sales and hr (hr.employees masked and filtered),
`admin` reads everything. Nothing may name a source, a physical table or a physical column.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshgate.errors import ColumnNotFound, ForbiddenStatement, ProductNotFound
from meshgate.service import QueryService

# The demo's physical names: sources, the customers table and its renamed columns.
PHYSICAL = ("sales_db", "hr_db", "finance_lake", "customer_master", "cust_no", "cust_name",
            "contact_email")  # fmt: skip
NOT_FOUND = (
    "data product {!r} does not exist or you are not allowed to read it; "
    "list the products you can read with `SELECT * FROM meshgate.products`"
)


@pytest.fixture(scope="module")
def service(demo_dir: Path) -> Iterator[QueryService]:
    svc = QueryService.from_config(demo_dir)
    yield svc
    svc.close()


def rows(service: QueryService, sql: str, user: str, **options: Any) -> list[dict[str, Any]]:
    table = service.query(sql, service.principal(user), **options)
    answer: list[dict[str, Any]] = table.to_pylist()
    return answer


def test_describe_lists_the_contract_columns_as_duckdb_does(service: QueryService) -> None:
    table = service.query("DESCRIBE sales.orders", service.principal("partner"))
    assert table.column_names == ["column_name", "column_type", "null", "key", "default", "extra"]
    assert table.to_pylist() == [
        {"column_name": name, "column_type": kind, "null": "YES",
         "key": "PRI" if name == "order_id" else None, "default": None, "extra": None}
        for name, kind in (("order_id", "BIGINT"), ("employee_id", "BIGINT"),
                           ("customer_id", "BIGINT"), ("amount", "DECIMAL(12,2)"),
                           ("ts", "TIMESTAMP WITH TIME ZONE"))
    ]  # fmt: skip


def test_describe_names_product_columns_never_source_columns(service: QueryService) -> None:
    described = rows(service, "DESCRIBE sales.customers", "admin")
    assert [r["column_name"] for r in described] == [
        "customer_id", "name", "email", "country", "signup_date", "is_vip"]  # fmt: skip
    assert [r["column_type"] for r in described][:2] == ["BIGINT", "VARCHAR"]


def test_a_masked_column_is_listed_with_the_type_the_caller_receives(
    service: QueryService,
) -> None:
    analyst = {r["column_name"]: r for r in rows(service, "DESCRIBE hr.employees", "analyst")}
    admin = {r["column_name"]: r for r in rows(service, "DESCRIBE hr.employees", "admin")}
    assert list(analyst) == list(admin)
    assert analyst["salary"]["column_type"] == "DECIMAL(10,2)"
    received = service.query("SELECT salary, ssn FROM hr.employees LIMIT 1",
                             service.principal("analyst")).schema  # fmt: skip
    assert str(received.field("salary").type) == "decimal128(10, 2)"
    assert {n for n, r in analyst.items() if r["extra"] == "masked"} == {"ssn", "email", "salary"}
    assert {n for n, r in admin.items() if r["extra"] == "masked"} == set()
    partner = rows(service, "DESCRIBE sales.customers", "partner")
    assert [r["column_name"] for r in partner if r["extra"] == "masked"] == ["email"]


@pytest.mark.parametrize("user", ["partner", "analyst"])
@pytest.mark.parametrize("target", ["finance.budgets", "FINANCE.BUDGETS", "demo.finance.budgets"])
def test_describe_of_an_ungranted_product_answers_like_a_missing_one(
    service: QueryService, user: str, target: str
) -> None:
    missing = target.replace("budgets", "no_such_product").replace("BUDGETS", "NO_SUCH_PRODUCT")
    answers = []
    for name in (target, missing):
        with pytest.raises(ProductNotFound) as raised:
            service.query(f"DESCRIBE {name}", service.principal(user))
        # The message names the product as domain.product, whichever way it was written.
        answers.append(raised.value.message.replace(name.lower().removeprefix("demo."),
                                                    "<name>"))
        with pytest.raises(ProductNotFound) as queried:
            service.query(f"SELECT * FROM {name}", service.principal(user))
        assert queried.value.message == raised.value.message
    assert answers[0] == answers[1] == NOT_FOUND.format("<name>")
    assert rows(service, f"DESCRIBE {target}", "admin")


def test_describe_of_hr_for_the_partner_is_not_found_but_for_the_analyst_answers(
    service: QueryService,
) -> None:
    with pytest.raises(ProductNotFound) as raised:
        service.query("DESCRIBE hr.employees", service.principal("partner"))
    assert raised.value.message == NOT_FOUND.format("hr.employees")
    assert rows(service, "DESCRIBE hr.employees", "analyst")


def test_unquoted_names_match_whatever_their_case(service: QueryService) -> None:
    expected = rows(service, "DESCRIBE sales.orders", "partner")
    for sql in ("describe SALES.ORDERS", "DESCRIBE Sales.Orders;", "DESCRIBE demo.sales.orders",
                "DESCRIBE DEMO.SALES.ORDERS"):
        assert rows(service, sql, "partner") == expected, sql
    assert rows(service, "DESCRIBE ORDERS", "partner", default_domain="sales") == expected


def test_describe_of_the_catalog_relations(service: QueryService) -> None:
    products = [r["column_name"] for r in rows(service, "DESCRIBE meshgate.products", "partner")]
    assert products == ["domain", "product", "description", "owner", "version", "tags", "kind",
                        "deprecated", "successor", "sunset", "last_checked_at",
                        "quality_status", "failed_expectations", "freshness_age_seconds",
                        "freshness_ok", "row_count_estimate"]
    columns = [r["column_name"] for r in
               rows(service, "DESCRIBE information_schema.columns", "partner")]  # fmt: skip
    assert columns[:5] == ["table_catalog", "table_schema", "table_name", "column_name",
                           "ordinal_position"]  # fmt: skip
    with pytest.raises(ProductNotFound) as raised:
        service.query("DESCRIBE information_schema.views", service.principal("admin"))
    assert raised.value.message == NOT_FOUND.format("information_schema.views")


@pytest.mark.parametrize(("user", "domains"), [
    ("partner", {"sales"}), ("analyst", {"sales", "hr"}), ("admin", {"sales", "hr", "finance"}),
])  # fmt: skip
def test_information_schema_tables_lists_the_granted_products(
    service: QueryService, user: str, domains: set[str]
) -> None:
    listed = rows(service, "SELECT table_catalog, table_schema, table_name, table_type "
                  "FROM information_schema.tables", user)  # fmt: skip
    products = rows(service, "SELECT domain, product FROM meshgate.products", user)
    assert {(r["table_schema"], r["table_name"]) for r in listed
            if r["table_type"] == "BASE TABLE"} == {(p["domain"], p["product"]) for p in products}
    assert {r["table_schema"] for r in listed} == domains | {"meshgate", "information_schema"}
    assert {r["table_catalog"] for r in listed} == {"demo"}
    system = {(r["table_schema"], r["table_name"]) for r in listed
              if r["table_type"] == "SYSTEM TABLE"}  # fmt: skip
    meshgate = ("domains", "products", "columns", "query_history", "quality_results", "lineage",
                "usage")
    information = ("tables", "columns", "schemata", "table_constraints", "key_column_usage")
    assert system == {("meshgate", t) for t in meshgate} | {
        ("information_schema", t) for t in information}


@pytest.mark.parametrize(("user", "domains"), [
    ("partner", {"sales"}), ("analyst", {"sales", "hr"}), ("admin", {"sales", "hr", "finance"}),
])  # fmt: skip
def test_schemata_and_show_schemas_list_the_granted_domains(
    service: QueryService, user: str, domains: set[str]
) -> None:
    schemata = rows(service, "SELECT catalog_name, schema_name FROM information_schema.schemata",
                    user)  # fmt: skip
    assert [r["schema_name"] for r in schemata] == sorted(
        domains | {"meshgate", "information_schema"})
    shown = rows(service, "SHOW SCHEMAS", user)
    assert [(r["database_name"], r["schema_name"]) for r in shown] == [
        (r["catalog_name"], r["schema_name"]) for r in schemata]  # fmt: skip
    assert [r["current"] for r in shown] == [False] * len(schemata)
    current = rows(service, "SHOW SCHEMAS", user, default_domain="sales")
    assert [r["schema_name"] for r in current if r["current"]] == ["sales"]


def test_schemata_rows_follow_the_standard(service: QueryService) -> None:
    unset = {"default_character_set_catalog": None, "default_character_set_schema": None,
             "default_character_set_name": None, "sql_path": None}  # fmt: skip
    assert rows(service, "SELECT * FROM information_schema.schemata", "partner") == [
        {"catalog_name": "demo", "schema_name": "information_schema", "schema_owner": None,
         **unset},
        {"catalog_name": "demo", "schema_name": "meshgate", "schema_owner": None, **unset},
        {"catalog_name": "demo", "schema_name": "sales", "schema_owner": "sales-data@example.com",
         **unset},
    ]  # fmt: skip


def test_information_schema_columns_follow_the_standard(service: QueryService) -> None:
    columns = rows(service, "SELECT * FROM information_schema.columns "
                   "WHERE table_schema = 'sales' AND table_name = 'orders'", "partner")
    assert [c["ordinal_position"] for c in columns] == [1, 2, 3, 4, 5]
    amount = columns[3]
    assert amount["column_name"] == "amount"
    assert amount["data_type"] == "DECIMAL(12,2)"
    assert (amount["numeric_precision"], amount["numeric_precision_radix"],
            amount["numeric_scale"]) == (12, 10, 2)  # fmt: skip
    assert amount["is_nullable"] == "YES"
    assert amount["column_comment"] == "Order total in USD."
    assert columns[0]["numeric_precision"] == 64


@pytest.mark.parametrize("user", ["partner", "analyst", "admin"])
def test_nothing_names_a_source_or_physical_table(service: QueryService, user: str) -> None:
    answers = [service.query(sql, service.principal(user)).to_pylist() for sql in (
        "SELECT * FROM information_schema.tables", "SELECT * FROM information_schema.columns",
        "SELECT * FROM information_schema.schemata", "SHOW TABLES", "SHOW SCHEMAS",
        "DESCRIBE sales.customers")]  # fmt: skip
    text = repr(answers)
    for name in PHYSICAL:
        assert name not in text


def test_show_tables_lists_the_session_domain_or_every_product(service: QueryService) -> None:
    assert rows(service, "SHOW TABLES", "partner") == [
        {"name": "sales.customers"}, {"name": "sales.order_items"}, {"name": "sales.orders"}]
    assert [r["name"] for r in rows(service, "SHOW TABLES", "analyst")] == [
        "hr.departments", "hr.employees", "sales.customers", "sales.order_items", "sales.orders"]
    assert rows(service, "SHOW TABLES", "analyst", default_domain="hr") == [
        {"name": "departments"}, {"name": "employees"}]
    assert rows(service, "SHOW TABLES FROM HR", "analyst") == [
        {"name": "departments"}, {"name": "employees"}]
    assert rows(service, "show tables from demo.hr", "analyst") == [
        {"name": "departments"}, {"name": "employees"}]
    assert rows(service, "SHOW TABLES FROM meshgate", "partner") == [
        {"name": n} for n in ("columns", "domains", "lineage", "products", "quality_results",
                              "query_history", "usage")]
    # An ungranted domain lists nothing, exactly like a domain that does not exist.
    assert rows(service, "SHOW TABLES FROM hr", "partner") == []
    assert rows(service, "SHOW TABLES FROM no_such_domain", "partner") == []
    assert rows(service, "SHOW TABLES FROM other_mesh.sales", "partner") == []


def test_catalog_relations_combine_in_a_select(service: QueryService) -> None:
    assert rows(service, "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'sales' ORDER BY table_name", "partner") == [
        {"table_name": "customers"}, {"table_name": "order_items"}, {"table_name": "orders"}]
    joined = rows(service, "SELECT t.table_name, count(*) AS n FROM information_schema.tables t "
                  "JOIN information_schema.columns c ON c.table_schema = t.table_schema "
                  "AND c.table_name = t.table_name JOIN meshgate.products p "
                  "ON p.domain = t.table_schema AND p.product = t.table_name "
                  "GROUP BY t.table_name ORDER BY t.table_name", "partner")  # fmt: skip
    assert joined == [{"table_name": "customers", "n": 6}, {"table_name": "order_items", "n": 5},
                      {"table_name": "orders", "n": 5}]  # fmt: skip


def test_the_column_typo_hint_leads_to_describe(service: QueryService) -> None:
    partner = service.principal("partner")
    with pytest.raises(ColumnNotFound) as raised:
        service.query("SELECT amout FROM sales.orders", partner)
    assert raised.value.message.endswith(
        "; list a product's columns with DESCRIBE domain.product "
        "(or SELECT column_name FROM information_schema.columns)"
    )
    names = [r["column_name"] for r in rows(service, "DESCRIBE sales.orders", "partner")]
    assert "amount" in names


def test_catalog_commands_are_audited_as_sent(service: QueryService) -> None:
    rows(service, "describe SALES.ORDERS", "partner")
    with pytest.raises(ForbiddenStatement):
        service.query("SHOW ALL TABLES", service.principal("partner"))
    records = [r for r in service.audit.records("partner")
               if r.sql in ("describe SALES.ORDERS", "SHOW ALL TABLES")]  # fmt: skip
    assert [(r.sql, r.outcome) for r in records][-2:] == [
        ("describe SALES.ORDERS", "ok"), ("SHOW ALL TABLES", "denied")]


def test_tables_and_columns_rows_in_full(service: QueryService) -> None:
    tables = rows(service, "SELECT * FROM information_schema.tables", "partner")
    assert tables[0]["table_schema"] == "information_schema"
    assert [(t["table_schema"], t["table_name"]) for t in tables] == sorted(
        (t["table_schema"], t["table_name"]) for t in tables)
    orders = next(t for t in tables if t["table_name"] == "orders")
    assert orders == {
        "table_catalog": "demo", "table_schema": "sales", "table_name": "orders",
        "table_type": "BASE TABLE", "is_insertable_into": "NO", "is_typed": "NO",
        "table_comment": "One row per customer order, 2024-2025; amount is the sum of its "
                         "order lines.",
    }  # fmt: skip
    domains = next(t for t in tables if t["table_name"] == "domains")
    assert domains == {**orders, "table_schema": "meshgate", "table_name": "domains",
                       "table_type": "SYSTEM TABLE", "table_comment": None}  # fmt: skip
    columns = rows(service, "SELECT * FROM information_schema.columns", "analyst")
    keys = [(c["table_schema"], c["table_name"], c["ordinal_position"]) for c in columns]
    assert keys == sorted(keys)
    salary = next(c for c in columns if c["column_name"] == "salary")
    assert salary == {
        "table_catalog": "demo", "table_schema": "hr", "table_name": "employees",
        "column_name": "salary", "ordinal_position": 5, "column_default": None,
        "is_nullable": "YES", "data_type": "DECIMAL(10,2)", "character_maximum_length": None,
        "numeric_precision": 10, "numeric_precision_radix": 10, "numeric_scale": 2,
        "column_comment": salary["column_comment"], "is_masked": "YES",
    }  # fmt: skip
    assert salary["column_comment"]
    products = next(c for c in columns
                    if (c["table_schema"], c["column_name"]) == ("meshgate", "products"))
    assert products == {
        "table_catalog": "demo", "table_schema": "meshgate", "table_name": "domains",
        "column_name": "products", "ordinal_position": 4, "column_default": None,
        "is_nullable": "YES", "data_type": "BIGINT", "character_maximum_length": None,
        "numeric_precision": 64, "numeric_precision_radix": 2, "numeric_scale": 0,
        "column_comment": None, "is_masked": "NO",
    }  # fmt: skip
    by_type = {c["data_type"]: c for c in columns}
    double = by_type["DOUBLE"]
    assert (double["numeric_precision"], double["numeric_precision_radix"],
            double["numeric_scale"]) == (53, 2, None)  # fmt: skip
    assert by_type["VARCHAR"]["numeric_precision"] is None


def test_not_null_columns_stay_not_null_unless_masked(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A NOT NULL contract column is `NO`; masked for the caller (redact gives NULL) it is `YES`."""
    from meshgate.demo.generate import prepare_demo

    directory = prepare_demo(tmp_path_factory.mktemp("not-null"))
    sales = directory / "sales.yaml"
    text = sales.read_text(encoding="utf-8")
    for column in ("order_id", "email"):
        text = text.replace(f"{{name: {column}, type:", f"{{name: {column}, nullable: false, type:")
    text = text.replace('{name: amount, type: "DECIMAL(12,2)"', "{name: amount, type: FLOAT")
    sales.write_text(text, encoding="utf-8")
    svc = QueryService.from_config(directory)
    try:
        def nulls(user: str, product: str) -> dict[str, Any]:
            return {r["column_name"]: r["null"] for r in rows(svc, f"DESCRIBE {product}", user)}

        assert nulls("partner", "sales.orders")["order_id"] == "NO"
        assert nulls("partner", "sales.orders")["amount"] == "YES"
        assert nulls("admin", "sales.customers")["email"] == "NO"
        assert nulls("partner", "sales.customers")["email"] == "YES"
        [amount] = rows(svc, "SELECT data_type, numeric_precision, numeric_precision_radix, "
                        "numeric_scale FROM information_schema.columns "
                        "WHERE column_name = 'amount' AND table_name = 'orders'", "partner")
        assert amount == {"data_type": "FLOAT", "numeric_precision": 24,
                          "numeric_precision_radix": 2, "numeric_scale": None}  # fmt: skip
    finally:
        svc.close()


def test_every_catalog_surface_spells_a_type_the_same_way(service: QueryService) -> None:
    # One convention, DuckDB's: a BI tool comparing meshgate.columns with information_schema
    # or DESCRIBE must not see TEXT in one place and VARCHAR in another.
    joined = rows(service, """
        SELECT m.domain, m.product, m.column_name, m.data_type AS system_type,
               i.data_type AS standard_type
        FROM meshgate.columns m JOIN information_schema.columns i
          ON m.domain = i.table_schema AND m.product = i.table_name
         AND m.column_name = i.column_name""", "admin")
    assert len(joined) == len(rows(service, "SELECT * FROM meshgate.columns", "admin")) > 20
    assert [r for r in joined if r["system_type"] != r["standard_type"]] == []
    described = {r["column_name"]: r["column_type"]
                 for r in rows(service, "DESCRIBE sales.orders", "admin")}
    system = {r["column_name"]: r["system_type"] for r in joined
              if (r["domain"], r["product"]) == ("sales", "orders")}
    assert described == system
    assert {"VARCHAR", "INTEGER", "TIMESTAMP WITH TIME ZONE"} <= {
        r["system_type"] for r in joined}


def test_describe_marks_the_declared_primary_key_as_duckdb_does(service: QueryService) -> None:
    keys = {r["column_name"]: r["key"] for r in rows(service, "DESCRIBE sales.order_items",
                                                      "partner")}
    assert keys == {"order_id": "PRI", "line_no": "PRI", "sku": None, "quantity": None,
                    "unit_price": None}  # fmt: skip


def test_primary_keys_are_listed_only_for_products_the_caller_may_read(
    service: QueryService,
) -> None:
    sql = """SELECT k.table_schema || '.' || k.table_name AS product, k.column_name,
                    k.ordinal_position, c.constraint_type
             FROM information_schema.key_column_usage AS k
             JOIN information_schema.table_constraints AS c USING (constraint_name)
             ORDER BY product, ordinal_position"""
    everything = [(r["product"], r["column_name"], r["ordinal_position"], r["constraint_type"])
                  for r in rows(service, sql, "admin")]  # fmt: skip
    assert everything == [
        ("finance.budgets", "budget_id", 1, "PRIMARY KEY"),
        ("hr.employees", "id", 1, "PRIMARY KEY"),
        ("sales.order_items", "order_id", 1, "PRIMARY KEY"),
        ("sales.order_items", "line_no", 2, "PRIMARY KEY"),
        ("sales.orders", "order_id", 1, "PRIMARY KEY"),
    ]
    assert {r["product"] for r in rows(service, sql, "partner")} == {
        "sales.order_items", "sales.orders"}  # fmt: skip
    assert "finance.budgets" not in {r["product"] for r in rows(service, sql, "analyst")}
    assert rows(service, "SELECT DISTINCT constraint_name FROM information_schema."
                "table_constraints WHERE table_schema = 'finance'", "analyst") == []
