"""`pg_catalog` over the PostgreSQL wire: what psycopg reads there is what ADBC's get_objects
shows over Flight SQL, for each caller, and nothing else (no hidden product, no file)."""

from __future__ import annotations

from collections.abc import Iterator

import adbc_driver_flightsql.dbapi as adbc
import psycopg
import pytest
from pyarrow import flight

from meshgate.server.postgres import PostgresFrontEnd
from meshgate.service import QueryService

PRODUCT_COLUMNS = """
SELECT n.nspname, t.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_class t JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid
WHERE t.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY 1, 2, a.attnum"""


@pytest.fixture(scope="module")
def postgres_port(service: QueryService) -> Iterator[int]:
    front_end = PostgresFrontEnd(service).start()
    yield front_end.port
    front_end.shutdown()


def _connect(port: int, user: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"postgresql://{user}:{user}@127.0.0.1:{port}/meshgate")


def _flight_objects(server: flight.FlightServerBase, user: str) -> set[tuple[str, str, str]]:
    uri = f"grpc://127.0.0.1:{server.port}"
    with adbc.connect(uri, db_kwargs={"username": user, "password": user}) as connection:
        objects = connection.adbc_get_objects(depth="columns").read_all().to_pylist()
    return {(schema["db_schema_name"], table["table_name"], column["column_name"])
            for catalog in objects for schema in catalog["catalog_db_schemas"] or ()
            for table in schema["db_schema_tables"] or ()
            if table["table_type"].upper() in ("TABLE", "BASE TABLE")
            for column in table["table_columns"] or ()}  # fmt: skip


@pytest.mark.parametrize("user", ["analyst", "partner"])
def test_pg_catalog_lists_the_products_and_columns_get_objects_shows(
    postgres_port: int, server: flight.FlightServerBase, user: str
) -> None:
    with _connect(postgres_port, user) as connection:
        rows = connection.execute(PRODUCT_COLUMNS).fetchall()
    assert {(str(s), str(t), str(c)) for s, t, c, _ in rows} == _flight_objects(server, user)
    assert ("hr" in {row[0] for row in rows}) == (user == "analyst")


def test_types_keys_and_descriptions_read_as_postgresql_gives_them(postgres_port: int) -> None:
    with _connect(postgres_port, "analyst") as connection:
        types = {str(name): str(kind) for name, kind in connection.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = %s", ("employees",))}
        key = connection.execute(
            "SELECT conname, conkey FROM pg_catalog.pg_constraint WHERE contype = 'p' AND "
            "conrelid = 'hr.employees'::regclass").fetchall()
    assert types["id"] == "bigint"
    assert types["salary"].startswith("numeric(")
    assert key == [("employees_pkey", ["1"])]


CATALOG_RELATIONS = ("pg_namespace", "pg_class", "pg_attribute", "pg_constraint", "pg_index",
                     "pg_description", "pg_type", "pg_settings", "pg_database")
# Source names and a source table name that differs from its product's (sales.customers).
PHYSICAL_NAMES = ("sales_db", "hr_db", "finance_lake", "customer_master")


def test_no_catalog_relation_names_a_hidden_product_or_a_physical_name(
    postgres_port: int
) -> None:
    with _connect(postgres_port, "partner") as connection:
        dumped = " ".join(str(connection.execute(f"SELECT * FROM pg_catalog.{name}").fetchall())
                          for name in CATALOG_RELATIONS)  # fmt: skip
    assert "'sales'" in dumped
    assert "'orders'" in dumped
    for hidden in ("hr", "employees", "departments", "finance", "budgets", "ssn",
                   *PHYSICAL_NAMES):  # fmt: skip
        assert f"'{hidden}'" not in dumped


@pytest.mark.parametrize("sql", [
    "SELECT * FROM pg_catalog.pg_class, read_text('/etc/hostname')",  # a file
    "SELECT * FROM duckdb_settings(), pg_class",  # the engine's settings (its directories)
    "SELECT t.relname, o.order_id FROM pg_class t, sales.orders o",  # a product beside it
])  # fmt: skip
def test_a_catalog_query_reads_nothing_but_the_catalog(postgres_port: int, sql: str) -> None:
    with _connect(postgres_port, "admin") as connection, pytest.raises(psycopg.Error) as refused:
        connection.execute(sql)
    assert refused.value.sqlstate == "42601"
    assert "a pg_catalog query reads only pg_catalog's relations" in str(refused.value)


def test_a_write_to_the_catalog_is_refused(postgres_port: int) -> None:
    with _connect(postgres_port, "admin") as connection, pytest.raises(psycopg.Error) as refused:
        connection.execute("DELETE FROM pg_catalog.pg_class")
    assert refused.value.sqlstate == "25006"  # read_only_sql_transaction, as for a product


def test_a_query_that_only_names_a_catalog_table_is_planned_as_usual(postgres_port: int) -> None:
    with _connect(postgres_port, "partner") as connection:
        row = connection.execute(
            "SELECT count(*) FROM sales.orders WHERE 'pg_class' <> %s", ("",)).fetchone()
    assert row == (20000,)


def test_psql_d_and_pg_class_give_a_product_the_same_oid(postgres_port: int) -> None:
    """psql's `\\d` lookup (answered by its shape) and pg_catalog agree on OIDs."""
    psql_lookup = ("SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n"
                   "     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\n"
                   "WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE "
                   "pg_catalog.default\nORDER BY 2, 3;")  # fmt: skip
    with _connect(postgres_port, "analyst") as connection:
        looked_up = connection.execute(psql_lookup).fetchall()
        catalog = connection.execute(
            "SELECT t.oid, n.nspname, t.relname FROM pg_catalog.pg_class t JOIN "
            "pg_catalog.pg_namespace n ON n.oid = t.relnamespace WHERE t.relname = 'orders'"
        ).fetchall()
    assert [tuple(map(str, row)) for row in looked_up] == [tuple(map(str, r)) for r in catalog]
    assert len(catalog) == 1
