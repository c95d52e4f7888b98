"""The Flight SQL JDBC driver's calls, replayed in DBeaver's order with raw pyarrow.flight.

The driver itself cannot be fetched here (no Maven registry), so each test is one step of a
DBeaver session (connect, browse the navigator, open a table, run a query, run a query with
parameters, close), sending what arrow-java's flight-sql-jdbc-core 18.x sends and checking
what it reads: the Bearer token in the handshake's *initial* headers; one GetSqlInfo for all
keys, each value in the union child of the Java class `ArrowDatabaseMetadata` casts it to;
metadata results in the canonical FlightSql.proto schemas bit for bit; `getColumns` built
from the `table_schema` IPC bytes and their ARROW:FLIGHT:SQL:* metadata; every statement
prepared, `dataset_schema` deciding query vs update, parameters bound in a batch of exactly
the announced `parameter_schema`. Tests run in file order on one module-scoped connection
per endpoint (plaintext, TLS), so a failure names the call that broke.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pytest
from google.protobuf.message import Message
from pyarrow import flight

from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as pb
from tests.server.flightsql_clients import Endpoint, descriptor, pack, unpack
from tests.server.test_metadata import CANONICAL, KEYS, _label

# The SqlInfo result schema of FlightSql.proto (CommandGetSqlInfo), written out here.
SQL_INFO_SCHEMA = pa.schema([
    pa.field("info_name", pa.uint32(), nullable=False),
    pa.field("value", pa.dense_union([
        pa.field("string_value", pa.string(), nullable=False),
        pa.field("bool_value", pa.bool_(), nullable=False),
        pa.field("bigint_value", pa.int64(), nullable=False),
        pa.field("int32_bitmask", pa.int32(), nullable=False),
        pa.field("string_list", pa.list_(pa.string()), nullable=False),
        pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32())),
                 nullable=False),
    ], type_codes=[0, 1, 2, 3, 4, 5]), nullable=False),
])

# The Java class `ArrowDatabaseMetadata.getSqlInfoAndCacheIfCacheIsEmpty` casts each key it
# reads to (arrow-java flight-sql-jdbc-core, read for this list), and the union child whose
# accessor yields that class. A value in another child is a ClassCastException in DBeaver; a
# missing key an NPE in the 18.x driver (which has no defaults).
JAVA_CHILD = {"String": 0, "Boolean": 1, "Long": 2, "Integer": 3, "List": 4, "Map": 5}
_MAX_LONGS = ("BINARY_LITERAL_LENGTH", "CHAR_LITERAL_LENGTH", "COLUMN_NAME_LENGTH",
              "COLUMNS_IN_GROUP_BY", "COLUMNS_IN_INDEX", "COLUMNS_IN_ORDER_BY",
              "COLUMNS_IN_SELECT", "COLUMNS_IN_TABLE", "CONNECTIONS", "CURSOR_NAME_LENGTH",
              "INDEX_LENGTH", "PROCEDURE_NAME_LENGTH", "CATALOG_NAME_LENGTH", "ROW_SIZE",
              "STATEMENT_LENGTH", "STATEMENTS", "TABLE_NAME_LENGTH", "TABLES_IN_SELECT",
              "USERNAME_LENGTH")
JDBC_GETTERS: dict[str, str] = {
    **dict.fromkeys([
        "FLIGHT_SQL_SERVER_NAME", "FLIGHT_SQL_SERVER_VERSION", "SQL_IDENTIFIER_QUOTE_CHAR",
        "SQL_SEARCH_STRING_ESCAPE", "SQL_EXTRA_NAME_CHARACTERS", "SQL_SCHEMA_TERM",
        "SQL_PROCEDURE_TERM", "SQL_CATALOG_TERM"], "String"),
    **dict.fromkeys([
        "SQL_KEYWORDS", "SQL_NUMERIC_FUNCTIONS", "SQL_STRING_FUNCTIONS", "SQL_SYSTEM_FUNCTIONS",
        "SQL_DATETIME_FUNCTIONS"], "List"),
    "SQL_SUPPORTS_CONVERT": "Map",
    **dict.fromkeys([
        "SQL_SUPPORTED_GROUP_BY", "SQL_SUPPORTED_GRAMMAR", "SQL_ANSI92_SUPPORTED_LEVEL",
        "SQL_OUTER_JOINS_SUPPORT_LEVEL", "SQL_SCHEMAS_SUPPORTED_ACTIONS",
        "SQL_CATALOGS_SUPPORTED_ACTIONS", "SQL_SUPPORTED_POSITIONED_COMMANDS",
        "SQL_SUPPORTED_RESULT_SET_TYPES", "SQL_SUPPORTED_SUBQUERIES", "SQL_SUPPORTED_UNIONS",
        "SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS"], "Integer"),
    **dict.fromkeys([f"SQL_MAX_{name}" for name in _MAX_LONGS]
                    + ["SQL_DB_SCHEMA_NAME_LENGTH", "SQL_DEFAULT_TRANSACTION_ISOLATION"], "Long"),
    **dict.fromkeys([
        "FLIGHT_SQL_SERVER_READ_ONLY", "SQL_SUPPORTS_COLUMN_ALIASING", "SQL_NULL_PLUS_NULL_IS_NULL",
        "SQL_SUPPORTS_TABLE_CORRELATION_NAMES", "SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES",
        "SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY", "SQL_SUPPORTS_ORDER_BY_UNRELATED",
        "SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE", "SQL_SUPPORTS_NON_NULLABLE_COLUMNS",
        "SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY", "SQL_CATALOG_AT_START",
        "SQL_SELECT_FOR_UPDATE_SUPPORTED", "SQL_STORED_PROCEDURES_SUPPORTED",
        "SQL_CORRELATED_SUBQUERIES_SUPPORTED", "SQL_MAX_ROW_SIZE_INCLUDES_BLOBS",
        "SQL_TRANSACTIONS_SUPPORTED", "SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT",
        "SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED", "SQL_BATCH_UPDATES_SUPPORTED",
        "SQL_SAVEPOINTS_SUPPORTED", "SQL_NAMED_PARAMETERS_SUPPORTED", "SQL_LOCATORS_UPDATE_COPY",
        "SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED"], "Boolean"),
}

# FlightSqlColumnMetadata's keys; getColumns parses PRECISION and SCALE as integers.
COLUMN_METADATA_KEYS = {f"ARROW:FLIGHT:SQL:{k}" for k in (
    "CATALOG_NAME", "SCHEMA_NAME", "TABLE_NAME", "TYPE_NAME", "PRECISION", "SCALE",
    "IS_AUTO_INCREMENT", "IS_CASE_SENSITIVE", "IS_READ_ONLY", "IS_SEARCHABLE", "REMARKS")}
CANONICAL_SCHEMAS = {_label(command): schema for command, schema in CANONICAL}
INT32_MAX = 2**31 - 1


@dataclass
class Driver:
    """One JDBC connection's state: the channel, the bearer token, the SqlInfo cache."""

    endpoint: Endpoint
    client: flight.FlightClient
    token: str = ""
    sql_info: dict[int, tuple[int, object]] = field(default_factory=dict)

    @property
    def options(self) -> flight.FlightCallOptions:
        return flight.FlightCallOptions(headers=[(b"authorization",
                                                  f"Bearer {self.token}".encode())], timeout=60)

    def fetch(self, command: Message) -> tuple[flight.FlightInfo, pa.Table]:
        """GetFlightInfo, then DoGet of every endpoint on this connection (JDBC getStreams)."""
        info = self.client.get_flight_info(descriptor(command), self.options)
        for endpoint in info.endpoints:
            assert [loc.uri for loc in endpoint.locations] in (
                [], [b"arrow-flight-reuse-connection://?"]), endpoint.locations
        tables = [self.client.do_get(e.ticket, self.options).read_all() for e in info.endpoints]
        return info, pa.concat_tables(tables) if tables else info.schema.empty_table()

    def action(self, name: str, body: bytes) -> list[bytes]:
        results = self.client.do_action(flight.Action(name, body), self.options)
        return [r.body.to_pybytes() for r in results]

    def prepare(self, sql: str) -> pb.ActionCreatePreparedStatementResult:
        [body] = self.action("CreatePreparedStatement",
                             pack(pb.ActionCreatePreparedStatementRequest(query=sql)))
        return unpack(body, pb.ActionCreatePreparedStatementResult())  # type: ignore[no-any-return]

    def close_prepared(self, handle: bytes) -> None:
        assert self.action("ClosePreparedStatement", pack(
            pb.ActionClosePreparedStatementRequest(prepared_statement_handle=handle))) == []


@pytest.fixture(scope="module")
def driver(endpoint: Endpoint) -> Iterator[Driver]:
    client = endpoint.client()
    yield Driver(endpoint, client)
    client.close()


def _assert_canonical(schema: pa.Schema, expected: pa.Schema) -> None:
    """Names, types, nullability, no metadata: equal as the Java driver's Schema and as bytes."""
    assert schema.equals(expected, check_metadata=True), f"{schema}\n!=\n{expected}"
    assert schema.metadata is None
    assert all(f.metadata is None for f in schema)
    assert schema.serialize().to_pybytes() == expected.serialize().to_pybytes()


def _jdbc_readable(data_type: pa.DataType) -> bool:
    """No view, dictionary or run-end encoded arrays: the 18.x driver has no accessor."""
    if pa.types.is_dictionary(data_type) or pa.types.is_run_end_encoded(data_type) or \
            pa.types.is_string_view(data_type) or pa.types.is_binary_view(data_type):
        return False
    return all(_jdbc_readable(data_type.field(i).type) for i in range(data_type.num_fields))


def _schema(data: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(data))


# ---- Connect ----------------------------------------------------------------------------------

def test_handshake_basic_answers_bearer_in_the_initial_headers(driver: Driver) -> None:
    """`user=&password=`: Handshake with padded Basic and one empty HandshakeRequest; the
    driver takes the token from the response *headers* (trailers only without headers)."""
    basic = base64.b64encode(b"analyst:analyst").decode()
    with driver.endpoint.grpc_channel() as channel:
        handshake = channel.stream_stream("/arrow.flight.protocol.FlightService/Handshake",
                                          request_serializer=lambda b: b,
                                          response_deserializer=lambda b: b)  # fmt: skip
        call = handshake(iter([b""]), metadata=[("authorization", f"Basic {basic}")],
                         timeout=30)
        list(call)
        headers = dict(call.initial_metadata())
    scheme, _, token = headers["authorization"].partition(" ")
    assert scheme.lower() == "bearer"
    assert len(token) >= 32
    driver.token = token


def test_handshake_with_a_token_keeps_it(driver: Driver) -> None:
    """`token=` instead of a user: Handshake with that Bearer; the driver keeps what the
    response headers carry, and loses its credential if they carry none."""
    with driver.endpoint.grpc_channel() as channel:
        handshake = channel.stream_stream("/arrow.flight.protocol.FlightService/Handshake",
                                          request_serializer=lambda b: b,
                                          response_deserializer=lambda b: b)  # fmt: skip
        call = handshake(iter([b""]), metadata=[("authorization", f"Bearer {driver.token}")],
                         timeout=30)
        list(call)
        assert dict(call.initial_metadata())["authorization"] == f"Bearer {driver.token}"


def test_every_later_call_carries_the_bearer_token(driver: Driver) -> None:
    assert driver.action("GetSessionOptions",
                         flight_pb2.GetSessionOptionsRequest().SerializeToString())
    stale = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer not-a-token")])
    with pytest.raises(flight.FlightUnauthenticatedError):
        driver.client.get_flight_info(descriptor(pb.CommandGetCatalogs()), stale)


# ---- DatabaseMetaData: the first getter caches GetSqlInfo{info: []} ------------------------

def test_get_sql_info_all_keys_in_the_canonical_schema(driver: Driver) -> None:
    info, table = driver.fetch(pb.CommandGetSqlInfo())
    _assert_canonical(info.schema, SQL_INFO_SCHEMA)
    _assert_canonical(table.schema, SQL_INFO_SCHEMA)
    values = table.column("value").combine_chunks()
    for i, name in enumerate(table.column("info_name").to_pylist()):
        # SqlInfo.forNumber(name) must be known: EnumMap.put(null, ...) throws.
        assert name in pb.SqlInfo.values(), name
        assert name not in driver.sql_info, f"key {name} sent twice"
        driver.sql_info[name] = (values.type_codes[i].as_py(), values[i].as_py())


@pytest.mark.parametrize(("key", "java_class"), sorted(JDBC_GETTERS.items()))
def test_each_key_the_driver_reads_casts_to_its_getter_s_class(driver: Driver, key: str,
                                                               java_class: str) -> None:
    assert driver.sql_info, "GetSqlInfo did not run"
    number = pb.SqlInfo.Value(key)
    assert number in driver.sql_info, f"{key} missing: an NPE in DBeaver (driver 18.x)"
    child, value = driver.sql_info[number]
    assert child == JAVA_CHILD[java_class], f"{key}: child {child}, the driver casts to " \
                                            f"{java_class}"
    if java_class == "Integer":
        assert isinstance(value, int)
        assert 0 <= value <= INT32_MAX
    elif java_class == "List":
        assert isinstance(value, list)
        assert all(isinstance(v, str) and v for v in value)
    elif java_class == "Map":  # supportsConvert(from, to) looks SqlSupportsConvert values up
        assert isinstance(value, list)
        assert value
        known = set(pb.SqlSupportsConvert.values())
        assert all(k in known and set(v) <= known for k, v in value)


def test_what_the_keys_say_read_only_without_transactions(driver: Driver) -> None:
    assert len(JDBC_GETTERS) == 69  # the names in reference/jdbc-sqlinfo-keys.txt
    values = {pb.SqlInfo.Name(k): v for k, (_, v) in driver.sql_info.items()}
    assert values["FLIGHT_SQL_SERVER_READ_ONLY"] is True
    assert values["SQL_TRANSACTIONS_SUPPORTED"] is False
    assert values["SQL_IDENTIFIER_QUOTE_CHAR"] == '"'
    assert values["SQL_SEARCH_STRING_ESCAPE"] == "\\"
    assert values["SQL_DEFAULT_TRANSACTION_ISOLATION"] == pb.SQL_TRANSACTION_NONE


# ---- The navigator: catalogs, schemas, table types, tables, columns, keys ------------------

def test_get_catalogs(driver: Driver) -> None:
    info, table = driver.fetch(pb.CommandGetCatalogs())
    _assert_canonical(info.schema, CANONICAL_SCHEMAS["CommandGetCatalogs"])
    _assert_canonical(table.schema, CANONICAL_SCHEMAS["CommandGetCatalogs"])
    assert table.column("catalog_name").to_pylist() == ["demo"]


def test_get_schemas(driver: Driver) -> None:
    info, table = driver.fetch(pb.CommandGetDbSchemas(catalog="demo"))
    _assert_canonical(info.schema, CANONICAL_SCHEMAS["CommandGetDbSchemas"])
    _assert_canonical(table.schema, CANONICAL_SCHEMAS["CommandGetDbSchemas"])
    assert table.to_pylist() == [{"catalog_name": "demo", "db_schema_name": name}
                                 for name in ("hr", "meshgate", "sales")]  # no finance


def test_get_table_types(driver: Driver) -> None:
    info, table = driver.fetch(pb.CommandGetTableTypes())
    _assert_canonical(info.schema, CANONICAL_SCHEMAS["CommandGetTableTypes"])
    _assert_canonical(table.schema, CANONICAL_SCHEMAS["CommandGetTableTypes"])
    assert table.column("table_type").to_pylist() == ["SYSTEM TABLE", "TABLE"]


def test_get_tables_without_schema(driver: Driver) -> None:
    # getTables(catalog, schemaPattern, null, null): no table pattern, no type filter.
    info, table = driver.fetch(pb.CommandGetTables(catalog="demo",
                                                   db_schema_filter_pattern="sales"))
    _assert_canonical(info.schema, CANONICAL_SCHEMAS["CommandGetTables"])
    _assert_canonical(table.schema, CANONICAL_SCHEMAS["CommandGetTables"])
    assert table.column("table_name").to_pylist() == ["customers", "order_items", "orders"]
    assert set(table.column("table_type").to_pylist()) == {"TABLE"}


def _get_columns(driver: Driver, schema_pattern: str, table_pattern: str
                 ) -> list[tuple[str, str, str, pa.Schema]]:
    command = pb.CommandGetTables(catalog="demo", db_schema_filter_pattern=schema_pattern,
                                  table_name_filter_pattern=table_pattern, include_schema=True)
    info, table = driver.fetch(command)
    _assert_canonical(info.schema, CANONICAL_SCHEMAS["CommandGetTables+schema"])
    _assert_canonical(table.schema, CANONICAL_SCHEMAS["CommandGetTables+schema"])
    return [(row["catalog_name"], row["db_schema_name"], row["table_name"],
             _schema(row["table_schema"])) for row in table.to_pylist()]


def test_get_columns_decodes_table_schema_and_its_column_metadata(driver: Driver) -> None:
    [(catalog, domain, name, schema)] = _get_columns(driver, "hr", "employees")
    assert (catalog, domain, name) == ("demo", "hr", "employees")
    for column in schema:
        meta = {k.decode(): v.decode() for k, v in (column.metadata or {}).items()}
        assert set(meta) <= COLUMN_METADATA_KEYS, column.name
        assert meta["ARROW:FLIGHT:SQL:TYPE_NAME"], column.name
        for key in ("ARROW:FLIGHT:SQL:PRECISION", "ARROW:FLIGHT:SQL:SCALE"):
            if key in meta:
                assert re.fullmatch(r"\d+", meta[key]), (column.name, meta[key])
        assert _jdbc_readable(column.type), column
    salary = {k.decode(): v.decode() for k, v in schema.field("salary").metadata.items()}
    assert salary["ARROW:FLIGHT:SQL:PRECISION"] == str(schema.field("salary").type.precision)
    assert salary["ARROW:FLIGHT:SQL:REMARKS"]  # the column's description becomes REMARKS


def test_get_columns_of_everything_shows_nothing_ungranted(driver: Driver) -> None:
    found = _get_columns(driver, "%", "%")
    assert {domain for _, domain, _, _ in found} == {"hr", "meshgate", "sales"}
    assert all(len(schema) > 0 for *_, schema in found)


def test_get_primary_keys(driver: Driver) -> None:
    command = pb.CommandGetPrimaryKeys(catalog="demo", db_schema="sales", table="order_items")
    info, table = driver.fetch(command)
    _assert_canonical(info.schema, CANONICAL_SCHEMAS["CommandGetPrimaryKeys"])
    _assert_canonical(table.schema, CANONICAL_SCHEMAS["CommandGetPrimaryKeys"])
    assert [(r["column_name"], r["key_sequence"]) for r in table.to_pylist()] == [
        ("order_id", 1), ("line_no", 2)]


@pytest.mark.parametrize("command", [
    pb.CommandGetImportedKeys(catalog="demo", db_schema="sales", table="orders"),
    pb.CommandGetExportedKeys(catalog="demo", db_schema="sales", table="orders"),
], ids=["imported", "exported"])
def test_get_imported_and_exported_keys(driver: Driver, command: Message) -> None:
    info, table = driver.fetch(command)
    _assert_canonical(info.schema, KEYS)
    _assert_canonical(table.schema, KEYS)


# ---- Statements: everything is prepared ------------------------------------------------------

AD_HOC = "SELECT order_id, customer_id, amount, ts FROM sales.orders ORDER BY order_id LIMIT 25"


def test_prepared_ad_hoc_query(driver: Driver,
                               analyst_oracle: duckdb.DuckDBPyConnection) -> None:
    """Statement.executeQuery: prepare, GetFlightInfo(CommandPreparedStatementQuery), DoGet,
    ClosePreparedStatement. An empty dataset_schema would run it as an update."""
    created = driver.prepare(AD_HOC)
    dataset = _schema(created.dataset_schema)
    assert dataset.names == ["order_id", "customer_id", "amount", "ts"]
    assert all(_jdbc_readable(f.type) for f in dataset)
    assert len(_schema(created.parameter_schema)) == 0
    assert created.HasField("is_update")
    assert created.is_update is False
    command = pb.CommandPreparedStatementQuery(
        prepared_statement_handle=created.prepared_statement_handle)
    info, table = driver.fetch(command)
    assert info.schema.equals(dataset, check_metadata=True)
    assert table.schema.equals(dataset, check_metadata=True)
    assert table.to_pylist() == analyst_oracle.execute(AD_HOC).to_arrow_table().to_pylist()
    driver.close_prepared(created.prepared_statement_handle)
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        driver.client.get_flight_info(descriptor(command), driver.options)


def test_a_page_of_rows_then_the_stream_is_cancelled(driver: Driver) -> None:
    """DBeaver shows 200 rows and stops reading: the driver cancels the DoGet stream."""
    created = driver.prepare("SELECT * FROM sales.order_items")
    command = pb.CommandPreparedStatementQuery(
        prepared_statement_handle=created.prepared_statement_handle)
    info = driver.client.get_flight_info(descriptor(command), driver.options)
    assert info.schema.equals(_schema(created.dataset_schema), check_metadata=True)
    reader = driver.client.do_get(info.endpoints[0].ticket, driver.options)
    rows = 0
    while rows < 200:
        rows += reader.read_chunk().data.num_rows
    reader.cancel()
    driver.close_prepared(created.prepared_statement_handle)
    _, table = driver.fetch(pb.CommandGetCatalogs())  # the connection goes on
    assert table.num_rows == 1


WITH_PARAMETERS = ("SELECT id, name, region FROM hr.employees WHERE id > ? AND region = ? "
                   "ORDER BY id LIMIT 20")


def _bind(driver: Driver, handle: bytes, parameters: pa.Schema, row: list[object]) -> bytes:
    """execute(): DoPut(CommandPreparedStatementQuery) of one row in the parameter schema's
    own VectorSchemaRoot; a PutResult handle replaces the statement's, even an empty one."""
    batch = pa.record_batch([pa.array([value], f.type) for value, f in zip(row, parameters,
                                                                         strict=True)],
                            schema=parameters)
    command = pb.CommandPreparedStatementQuery(prepared_statement_handle=handle)
    writer, reader = driver.client.do_put(descriptor(command), parameters, driver.options)
    writer.write_batch(batch)
    writer.done_writing()
    answer = reader.read()
    writer.close()
    if answer is None:
        return handle
    replaced = pb.DoPutPreparedStatementResult.FromString(answer.to_pybytes())
    assert replaced.prepared_statement_handle, "an empty handle would replace the statement's"
    return replaced.prepared_statement_handle


def test_prepared_query_with_an_int_and_a_string_parameter(
        driver: Driver, analyst_oracle: duckdb.DuckDBPyConnection) -> None:
    """prepareStatement + setInt(1, ..) + setString(2, ..) + executeQuery, run twice."""
    created = driver.prepare(WITH_PARAMETERS)
    parameters = _schema(created.parameter_schema)
    # AvaticaParameterBinder needs one concrete field per `?`: no Null or Union type.
    assert parameters.types == [pa.int64(), pa.string()]
    dataset = _schema(created.dataset_schema)
    handle = created.prepared_statement_handle
    for row in ([100, "EU"], [5, "APAC"]):
        handle = _bind(driver, handle, parameters, row)
        info, table = driver.fetch(pb.CommandPreparedStatementQuery(
            prepared_statement_handle=handle))
        assert info.schema.equals(dataset, check_metadata=True)
        assert table.schema.equals(dataset, check_metadata=True)
        expected = analyst_oracle.execute(WITH_PARAMETERS, row).to_arrow_table().to_pylist()
        assert table.to_pylist() == expected, row
        assert all(r["region"] == "EU" for r in expected)  # the row filter holds for a bind
    driver.close_prepared(handle)


def test_set_catalog_then_close_sends_close_session(driver: Driver) -> None:
    """`catalog=demo` in the URL (or setCatalog): SetSessionOptions; close(): CloseSession."""
    request = flight_pb2.SetSessionOptionsRequest()
    request.session_options["catalog"].string_value = "demo"
    [body] = driver.action("SetSessionOptions", request.SerializeToString())
    assert dict(flight_pb2.SetSessionOptionsResult.FromString(body).errors) == {}
    [body] = driver.action("CloseSession", flight_pb2.CloseSessionRequest().SerializeToString())
    assert flight_pb2.CloseSessionResult.FromString(body).status == \
        flight_pb2.CloseSessionResult.CLOSED
