"""Catalog metadata as JDBC/ADBC read it: exact canonical schemas, filters, grants."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import adbc_driver_flightsql.dbapi as adbc
import duckdb
import pyarrow as pa
import pytest
from google.protobuf.message import Message

from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.server.search_patterns import SearchPattern
from tests.server.flightsql_clients import Endpoint, Session


def utf8(name: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, pa.string(), nullable)


# Written out from the Flight SQL specification, independently of meshgate.server.metadata.
TABLES = pa.schema([utf8("catalog_name"), utf8("db_schema_name"), utf8("table_name", False),
                    utf8("table_type", False)])
KEYS = pa.schema([
    utf8("pk_catalog_name"), utf8("pk_db_schema_name"), utf8("pk_table_name", False),
    utf8("pk_column_name", False), utf8("fk_catalog_name"), utf8("fk_db_schema_name"),
    utf8("fk_table_name", False), utf8("fk_column_name", False),
    pa.field("key_sequence", pa.int32(), False), utf8("fk_key_name"), utf8("pk_key_name"),
    pa.field("update_rule", pa.uint8(), False), pa.field("delete_rule", pa.uint8(), False),
])
CANONICAL: list[tuple[Message, pa.Schema]] = [
    (pb.CommandGetCatalogs(), pa.schema([utf8("catalog_name", False)])),
    (pb.CommandGetDbSchemas(), pa.schema([utf8("catalog_name"), utf8("db_schema_name", False)])),
    (pb.CommandGetTables(), TABLES),
    (pb.CommandGetTables(include_schema=True),
     TABLES.append(pa.field("table_schema", pa.binary(), False))),
    (pb.CommandGetTableTypes(), pa.schema([utf8("table_type", False)])),
    (pb.CommandGetPrimaryKeys(table="orders"), pa.schema([
        utf8("catalog_name"), utf8("db_schema_name"), utf8("table_name", False),
        utf8("column_name", False), pa.field("key_sequence", pa.int32(), False),
        utf8("key_name")])),
    (pb.CommandGetImportedKeys(table="orders"), KEYS),
    (pb.CommandGetExportedKeys(table="orders"), KEYS),
    (pb.CommandGetCrossReference(pk_table="employees", fk_table="orders"), KEYS),
]


SYSTEM_TABLES = ["columns", "domains", "lineage", "products", "quality_results", "query_history",
                 "usage"]


def _label(command: Message) -> str:
    return type(command).__name__ + ("+schema" if getattr(command, "include_schema", 0) else "")


@pytest.mark.parametrize(("command", "schema"), CANONICAL,
                         ids=[_label(c) for c, _ in CANONICAL])
def test_info_and_stream_have_the_canonical_schema(analyst: Session, command: Message,
                                                   schema: pa.Schema) -> None:
    info, table = analyst.fetch(command)
    assert info.schema.equals(schema, check_metadata=True)
    assert table.schema.equals(schema, check_metadata=True)
    assert [e.locations for e in info.endpoints] == [[]]


def test_xdbc_type_info_schema_and_filter(analyst: Session) -> None:
    info, table = analyst.fetch(pb.CommandGetXdbcTypeInfo())
    assert table.schema.equals(info.schema)
    assert [f.name for f in table.schema][:2] == ["type_name", "data_type"]
    assert table.schema.field("create_params").type == pa.list_(pa.field("item", pa.string(),
                                                                          False))
    assert {"BIGINT", "VARCHAR", "DECIMAL", "TIMESTAMP"} <= set(table.column("type_name")
                                                                .to_pylist())
    _, only = analyst.fetch(pb.CommandGetXdbcTypeInfo(data_type=pb.XDBC_BIGINT))
    assert only.column("type_name").to_pylist() == ["BIGINT"]


def test_one_catalog_named_after_the_mesh(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetCatalogs())
    assert table.to_pylist() == [{"catalog_name": "demo"}]


def test_schemas_are_the_domains_the_caller_is_granted(analyst: Session, admin: Session) -> None:
    _, mine = analyst.fetch(pb.CommandGetDbSchemas())
    assert mine.column("db_schema_name").to_pylist() == ["hr", "meshgate", "sales"]
    assert set(mine.column("catalog_name").to_pylist()) == {"demo"}
    _, everything = admin.fetch(pb.CommandGetDbSchemas())
    assert everything.column("db_schema_name").to_pylist() == [
        "finance", "hr", "meshgate", "sales"]


def _names(session: Session, command: pb.CommandGetTables) -> list[str]:
    _, table = session.fetch(command)
    return [f"{r['db_schema_name']}.{r['table_name']}" for r in table.to_pylist()]


def test_tables_are_the_products_the_caller_is_granted(analyst: Session, admin: Session) -> None:
    assert _names(analyst, pb.CommandGetTables(table_types=["TABLE"])) == [
        "hr.departments", "hr.employees", "sales.customers", "sales.order_items", "sales.orders"]
    assert "finance.budgets" in _names(admin, pb.CommandGetTables())


def test_system_schema_tables_are_listed_as_system_tables(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetTables(db_schema_filter_pattern="meshgate",
                                                 include_schema=True))
    # every one SHOW TABLES FROM meshgate and information_schema.tables list (GetTables
    # once listed four of the seven)
    assert table.column("table_name").to_pylist() == SYSTEM_TABLES
    assert set(table.column("table_type").to_pylist()) == {"SYSTEM TABLE"}
    schemas = {row["table_name"]: pa.ipc.read_schema(pa.py_buffer(row["table_schema"]))
               for row in table.to_pylist()}
    assert "product" in schemas["products"].names
    for name, schema in schemas.items():
        _, queried = analyst.fetch(pb.CommandStatementQuery(
            query=f"SELECT * FROM meshgate.{name} LIMIT 0"))
        assert schema.remove_metadata().equals(queried.schema.remove_metadata()), name
        assert {f.metadata[b"ARROW:FLIGHT:SQL:TABLE_NAME"] for f in schema} == {name.encode()}


@pytest.mark.parametrize(("schema_pattern", "table_pattern", "expected"), [
    ("sales", "order%", ["sales.order_items", "sales.orders"]),
    ("%", "orders", ["sales.orders"]),
    ("s_les", "%s", ["sales.customers", "sales.order_items", "sales.orders"]),
    ("%", "order\\_items", ["sales.order_items"]),
    ("%", "order\\%", []),
    ("%", "ORDERS", []),
    ("h%", "%", ["hr.departments", "hr.employees"]),
    ("finance", "%", []),
])
def test_like_patterns(analyst: Session, schema_pattern: str, table_pattern: str,
                       expected: list[str]) -> None:
    command = pb.CommandGetTables(db_schema_filter_pattern=schema_pattern,
                                  table_name_filter_pattern=table_pattern)
    assert _names(analyst, command) == expected


def test_schema_pattern_on_db_schemas(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetDbSchemas(db_schema_filter_pattern="s%"))
    assert table.column("db_schema_name").to_pylist() == ["sales"]


# A regex translation backtracked for ~10 s on this pattern (issue 16), stalling every client.
HOSTILE = "%" * 21 + "zz"


def test_a_hostile_pattern_answers_fast_and_others_are_still_served(endpoint: Endpoint,
                                                                    analyst: Session) -> None:
    other = endpoint.session("admin")
    finished: list[float] = []

    def hostile() -> None:
        started = time.monotonic()
        for command in (pb.CommandGetTables(db_schema_filter_pattern=HOSTILE),
                        pb.CommandGetTables(table_name_filter_pattern=HOSTILE),
                        pb.CommandGetDbSchemas(db_schema_filter_pattern=HOSTILE)):
            assert analyst.fetch(command)[1].num_rows == 0
        finished.append(time.monotonic() - started)

    try:
        thread = threading.Thread(target=hostile)
        started = time.monotonic()
        thread.start()
        assert other.fetch(pb.CommandGetCatalogs())[1].num_rows == 1
        served = time.monotonic() - started
        thread.join(timeout=30)
    finally:
        other.close()
    assert served < 1.0
    assert finished
    assert finished[0] < 1.0


NAMES = ["orders", "order_items", "order%", "a_b", "a\\b", "", "%", "_", "zz", "zzz",
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaazz", "abcabcabd", "mississippi"]
PATTERNS = ["", "%", "%%", "_", "__", "%_", "_%", "order%", "%s", "%_items", "order\\_items",
            "order\\%", "%\\%", "\\_", "a\\\\b", "a%b", "a_b", "%a%b%", "%zz", "%%z%%z%%",
            "abc%abd", "%abc%abd", "abc%abc%abd", "ab%c%d", "m%iss%ppi", "%ss%ss%", "%ss%ss%ss%",
            "_i%i_", "%\\o%", HOSTILE, "%" * 40 + "a" + "%" * 40, "_" * 32, "_" * 31]


def test_search_patterns_match_like_duckdb_does() -> None:
    oracle = duckdb.connect()
    for pattern in PATTERNS:
        parsed = SearchPattern(pattern)
        for name in NAMES:
            expected = oracle.execute("SELECT ? LIKE ? ESCAPE '\\'", [name, pattern]).fetchone()
            assert expected is not None
            assert parsed.matches(name) is expected[0], (name, pattern)


@pytest.mark.parametrize(("catalog", "found"), [(None, True), ("demo", True), ("", False),
                                                ("other", False)])
def test_catalog_filter_is_proto3_optional(analyst: Session, catalog: str | None,
                                           found: bool) -> None:
    tables = pb.CommandGetTables(table_name_filter_pattern="orders")
    schemas = pb.CommandGetDbSchemas()
    if catalog is not None:
        tables.catalog = catalog
        schemas.catalog = catalog
    assert bool(_names(analyst, tables)) == found
    assert bool(analyst.fetch(schemas)[1].num_rows) == found


def test_table_types_filter(analyst: Session) -> None:
    assert "meshgate.products" not in _names(analyst, pb.CommandGetTables(table_types=["TABLE"]))
    assert _names(analyst, pb.CommandGetTables(table_types=["SYSTEM TABLE"])) == [
        f"meshgate.{name}" for name in SYSTEM_TABLES]
    assert _names(analyst, pb.CommandGetTables(table_types=["VIEW"])) == []
    assert analyst.fetch(pb.CommandGetTableTypes())[1].column("table_type").to_pylist() == [
        "SYSTEM TABLE", "TABLE"]


def test_include_schema_carries_columns_with_jdbc_metadata(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetTables(
        db_schema_filter_pattern="hr", table_name_filter_pattern="employees",
        include_schema=True))
    assert table.num_rows == 1
    schema = pa.ipc.read_schema(pa.py_buffer(table.column("table_schema")[0].as_py()))
    assert schema.names[:7] == ["id", "name", "email", "ssn", "salary", "region", "manager_id"]
    salary = schema.field("salary")
    assert pa.types.is_decimal(salary.type)
    meta = {k.decode(): v.decode() for k, v in salary.metadata.items()}
    assert meta["ARROW:FLIGHT:SQL:TYPE_NAME"].startswith("DECIMAL")
    assert meta["ARROW:FLIGHT:SQL:PRECISION"] == str(salary.type.precision)
    assert meta["ARROW:FLIGHT:SQL:SCALE"] == str(salary.type.scale)
    assert meta["ARROW:FLIGHT:SQL:REMARKS"].startswith("Yearly base salary")


def test_include_schema_off_sends_four_columns(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetTables(include_schema=False))
    assert table.num_columns == 4


def test_foreign_keys_are_empty_as_none_are_declared(analyst: Session) -> None:
    for command in (pb.CommandGetImportedKeys(table="orders"),
                    pb.CommandGetExportedKeys(table="orders"),
                    pb.CommandGetCrossReference(pk_table="orders", fk_table="order_items")):
        assert analyst.fetch(command)[1].num_rows == 0


def test_primary_keys_are_the_declared_ones(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetPrimaryKeys(db_schema="sales", table="order_items"))
    assert table.to_pylist() == [
        {"catalog_name": "demo", "db_schema_name": "sales", "table_name": "order_items",
         "column_name": column, "key_sequence": position, "key_name": "order_items_pkey"}
        for position, column in ((1, "order_id"), (2, "line_no"))
    ]
    _, table = analyst.fetch(pb.CommandGetPrimaryKeys(table="employees"))
    assert table.column("column_name").to_pylist() == ["id"]


@pytest.mark.parametrize("command", [
    pb.CommandGetPrimaryKeys(db_schema="finance", table="budgets"),  # not granted to analyst
    pb.CommandGetPrimaryKeys(db_schema="finance", table="no_such_product"),
    pb.CommandGetPrimaryKeys(db_schema="hr", table="orders"),  # the name, in another domain
    pb.CommandGetPrimaryKeys(catalog="elsewhere", table="orders"),
])
def test_primary_keys_of_hidden_or_missing_products_are_alike_empty(
    analyst: Session, admin: Session, command: pb.CommandGetPrimaryKeys
) -> None:
    assert analyst.fetch(command)[1].num_rows == 0
    if command.db_schema == "finance" and command.table == "budgets":
        assert admin.fetch(command)[1].column("column_name").to_pylist() == ["budget_id"]


@pytest.fixture
def adbc_analyst(endpoint: Endpoint) -> Iterator[adbc.Connection]:
    with endpoint.adbc("analyst") as conn:
        yield conn


def test_adbc_get_objects_lists_granted_products_with_columns(adbc_analyst: adbc.Connection
                                                             ) -> None:
    objects = adbc_analyst.adbc_get_objects().read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == ["demo"]
    schemas = {s["db_schema_name"]: s for s in objects[0]["catalog_db_schemas"]}
    assert sorted(schemas) == ["hr", "meshgate", "sales"]
    orders = next(t for t in schemas["sales"]["db_schema_tables"] if t["table_name"] == "orders")
    columns = [c["column_name"] for c in orders["table_columns"]]
    assert columns[:2] == ["order_id", "employee_id"]
    assert {"amount", "ts"} <= set(columns)


def test_adbc_get_objects_depth_tables(adbc_analyst: adbc.Connection) -> None:
    objects = adbc_analyst.adbc_get_objects(depth="tables").read_all().to_pylist()
    tables = {t["table_name"] for s in objects[0]["catalog_db_schemas"]
              for t in s["db_schema_tables"]}
    assert "employees" in tables
    assert "budgets" not in tables


def test_adbc_get_table_schema_matches_query_schema(adbc_analyst: adbc.Connection) -> None:
    schema = adbc_analyst.adbc_get_table_schema("employees", db_schema_filter="hr")
    with adbc_analyst.cursor() as cursor:
        cursor.execute("SELECT * FROM hr.employees LIMIT 1")
        result = cursor.fetch_arrow_table()
    assert schema.remove_metadata().equals(result.schema.remove_metadata())
    assert schema.names[:7] == ["id", "name", "email", "ssn", "salary", "region", "manager_id"]


def test_adbc_get_table_schema_of_an_ungranted_product_is_not_found(
        adbc_analyst: adbc.Connection) -> None:
    with pytest.raises(adbc.Error, match=r"^NOT_FOUND: No table found"):
        adbc_analyst.adbc_get_table_schema("budgets", db_schema_filter="finance")


def test_adbc_table_types(adbc_analyst: adbc.Connection) -> None:
    assert adbc_analyst.adbc_get_table_types() == ["SYSTEM TABLE", "TABLE"]
