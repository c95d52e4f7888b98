"""ADBC (adbc-driver-flightsql, the Go driver) as a notebook uses it: get_objects at every
depth and with every filter, table schemas, cancel, session catalog and schema.

What each call may show is exactly what the caller may read: analyst sees the sales and hr
products and the meshgate system tables, never finance, whichever depth or filter asks.
Runs over plaintext and TLS (`endpoint`). Prepared statements and binds are in
test_prepared_full.py, get_info in test_sqlinfo.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import pytest

from tests.server.flightsql_clients import Endpoint
from tests.server.test_metadata import SYSTEM_TABLES

ANALYST_TABLES = {
    "hr": ["departments", "employees"],
    "meshgate": SYSTEM_TABLES,
    "sales": ["customers", "order_items", "orders"],
}
DEPTHS = ["catalogs", "db_schemas", "tables", "columns", "all"]


@pytest.fixture(scope="module")
def connection(endpoint: Endpoint) -> Iterator[adbc.Connection]:
    with endpoint.adbc("analyst") as conn:
        yield conn


@pytest.fixture(scope="module")
def query_columns(connection: adbc.Connection) -> dict[tuple[str, str], list[str]]:
    """Each readable table's columns as a query returns them."""
    found = {}
    with connection.cursor() as cursor:
        for domain, tables in ANALYST_TABLES.items():
            for table in tables:
                cursor.execute(f"SELECT * FROM {domain}.{table} LIMIT 0")
                found[(domain, table)] = cursor.fetch_arrow_table().schema.names
    return found


def _objects(connection: adbc.Connection, depth: str = "all", **filters: Any
             ) -> list[dict[str, Any]]:
    reader = connection.adbc_get_objects(depth=depth, **filters)  # type: ignore[arg-type]
    rows: list[dict[str, Any]] = reader.read_all().to_pylist()
    return rows


def _tables(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(schema["db_schema_name"], table["table_name"]): table
            for catalog in objects for schema in catalog["catalog_db_schemas"] or []
            for table in schema["db_schema_tables"] or []}


@pytest.mark.parametrize("depth", DEPTHS)
def test_get_objects_at_each_depth_shows_what_the_caller_may_read(
        connection: adbc.Connection, query_columns: dict[tuple[str, str], list[str]],
        depth: str) -> None:
    objects = _objects(connection, depth)
    assert [c["catalog_name"] for c in objects] == ["demo"]
    schemas = objects[0]["catalog_db_schemas"]
    if depth == "catalogs":
        assert schemas is None
        return
    assert [s["db_schema_name"] for s in schemas] == sorted(ANALYST_TABLES)
    if depth == "db_schemas":
        assert all(s["db_schema_tables"] is None for s in schemas)
        return
    tables = _tables(objects)
    assert sorted(tables) == sorted(query_columns)
    for (domain, name), table in tables.items():
        assert table["table_type"] == ("SYSTEM TABLE" if domain == "meshgate" else "TABLE")
        if depth == "tables":
            assert table["table_columns"] is None
            continue
        columns = table["table_columns"]
        assert [c["column_name"] for c in columns] == query_columns[(domain, name)]
        assert [c["ordinal_position"] for c in columns] == list(range(1, len(columns) + 1))
        assert all(c["xdbc_type_name"] for c in columns), (domain, name)
        assert {(c["xdbc_scope_schema"], c["xdbc_scope_table"]) for c in columns} == {
            (domain, name)}


@pytest.mark.parametrize(("filters", "expected"), [
    ({"catalog_filter": "demo"}, "all"),
    ({"catalog_filter": "elsewhere"}, []),
    ({"db_schema_filter": "s%"}, [("sales", t) for t in ANALYST_TABLES["sales"]]),
    ({"db_schema_filter": "hr"}, [("hr", t) for t in ANALYST_TABLES["hr"]]),
    ({"db_schema_filter": "finance"}, []),
    ({"db_schema_filter": "fin%"}, []),
    ({"table_name_filter": "order%"}, [("sales", "order_items"), ("sales", "orders")]),
    ({"table_name_filter": "budgets"}, []),
    ({"table_name_filter": "%e%", "db_schema_filter": "h_"},
     [("hr", "departments"), ("hr", "employees")]),
    ({"table_types_filter": ["SYSTEM TABLE"]}, [("meshgate", t) for t in SYSTEM_TABLES]),
    ({"table_types_filter": ["TABLE"]},
     [(d, t) for d in ("hr", "sales") for t in ANALYST_TABLES[d]]),
    ({"table_types_filter": ["VIEW"]}, []),
], ids=lambda value: repr(value)[:40] if isinstance(value, dict) else "")
def test_get_objects_filters(connection: adbc.Connection, filters: dict[str, Any],
                             expected: list[tuple[str, str]] | str) -> None:
    tables = sorted(_tables(_objects(connection, "tables", **filters)))
    want = sorted((d, t) for d, ts in ANALYST_TABLES.items() for t in ts) \
        if expected == "all" else expected
    assert tables == want


def test_an_ungranted_domain_is_absent_at_every_depth_and_filter(
        connection: adbc.Connection, endpoint: Endpoint) -> None:
    with endpoint.adbc("admin") as admin:
        budgets = _tables(_objects(admin, "columns", db_schema_filter="finance"))[
            ("finance", "budgets")]
    only_budgets = [c["column_name"] for c in budgets["table_columns"]]
    for depth in DEPTHS:
        for filters in ({}, {"db_schema_filter": "finance"}, {"table_name_filter": "budgets"},
                        *({"column_name_filter": name} for name in only_budgets)):
            text = repr(_objects(connection, depth, **filters))
            assert "finance" not in text, (depth, filters)
            assert "budgets" not in text, (depth, filters)


def test_a_column_filter_keeps_matching_columns_of_each_table(
        connection: adbc.Connection, query_columns: dict[tuple[str, str], list[str]]) -> None:
    objects = _objects(connection, "columns", db_schema_filter="hr",
                       table_name_filter="employees", column_name_filter="s%")
    [(key, table)] = _tables(objects).items()
    assert key == ("hr", "employees")
    assert [c["column_name"] for c in table["table_columns"]] == [
        c for c in query_columns[key] if c.startswith("s")]


def test_get_table_schema_of_a_system_table_and_with_a_catalog(
        connection: adbc.Connection) -> None:
    schema = connection.adbc_get_table_schema("products", catalog_filter="demo",
                                              db_schema_filter="meshgate")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM meshgate.products LIMIT 0")
        queried = cursor.fetch_arrow_table().schema
    assert schema.remove_metadata().equals(queried.remove_metadata())
    with pytest.raises(adbc.Error, match=r"^NOT_FOUND: No table found"):
        connection.adbc_get_table_schema("products", catalog_filter="elsewhere",
                                         db_schema_filter="meshgate")


# Streams 400 million rows: it runs for minutes unless cancelled.
ENDLESS = "SELECT a.order_id, b.order_id AS other FROM sales.orders a CROSS JOIN sales.orders b"


def test_cancel_from_another_thread_ends_the_stream_and_the_server_keeps_serving(
        connection: adbc.Connection) -> None:
    cursor = connection.cursor()
    cursor.execute(ENDLESS)
    batches: list[int] = []
    failures: list[BaseException] = []

    def fetch() -> None:
        try:
            for batch in cursor.fetch_record_batch():
                batches.append(batch.num_rows)
        except BaseException as exc:
            failures.append(exc)

    reader = threading.Thread(target=fetch, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not batches and time.monotonic() < deadline:
        time.sleep(0.05)
    assert batches, "no batch arrived"
    cancelled_at = time.monotonic()
    cursor.adbc_cancel()
    reader.join(10)
    assert not reader.is_alive(), "the stream did not end within 10 s of the cancel"
    assert time.monotonic() - cancelled_at < 5
    [failure] = failures
    assert "cancel" in str(failure).lower()
    assert sum(batches) < 400_000_000
    cursor.close()
    with connection.cursor() as again:  # the same connection goes on
        again.execute("SELECT count(*) FROM sales.orders")
        assert again.fetchone() == (20_000,)


@pytest.fixture
def fresh(endpoint: Endpoint) -> Iterator[adbc.Connection]:
    with endpoint.adbc("analyst") as conn:
        yield conn


def test_session_catalog_is_settable_to_the_mesh_only(fresh: adbc.Connection) -> None:
    fresh.adbc_connection.set_options(**{"adbc.connection.catalog": "demo"})
    assert fresh.adbc_current_catalog == "demo"
    with pytest.raises(adbc.ProgrammingError,
                       match=r"INVALID_ARGUMENT: .*Could not set option\(s\) 'catalog'"):
        fresh.adbc_connection.set_options(**{"adbc.connection.catalog": "elsewhere"})
    assert fresh.adbc_current_catalog == "demo"


def test_an_ungranted_schema_is_refused_like_a_missing_one(fresh: adbc.Connection) -> None:
    fresh.adbc_connection.set_options(**{"adbc.connection.db_schema": "hr"})
    messages = []
    for name in ("finance", "nowhere"):
        with pytest.raises(adbc.ProgrammingError) as raised:
            fresh.adbc_connection.set_options(**{"adbc.connection.db_schema": name})
        messages.append(str(raised.value).replace(name, "<name>"))
        assert fresh.adbc_current_db_schema == "hr"
    assert messages[0] == messages[1]


def test_schema_through_the_driver_s_session_option_and_in_the_options_it_reports(
        fresh: adbc.Connection) -> None:
    fresh.adbc_connection.set_options(**{"adbc.flight.sql.session.option.schema": "sales"})
    assert fresh.adbc_current_db_schema == "sales"
    assert fresh.adbc_connection.get_option("adbc.flight.sql.session.options") == \
        '{"catalog":"demo","schema":"sales"}'
    with fresh.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers")
        row = cursor.fetchone()
        assert row is not None
        assert row[0] > 0
