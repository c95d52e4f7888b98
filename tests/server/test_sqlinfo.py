"""CommandGetSqlInfo: the canonical typed table that JDBC caches and the Go driver asserts."""

from __future__ import annotations

import adbc_driver_flightsql.dbapi as adbc
import pyarrow as pa
import pytest

from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.server.sqlinfo import SCHEMA, STANDARD_INFO
from meshgate.service import QueryService
from tests.server.flightsql_clients import Endpoint, Session

# Every key the Flight SQL JDBC driver (18.x) reads; a missing one is an NPE in DBeaver.
JDBC_KEYS = (
    "FLIGHT_SQL_SERVER_NAME", "FLIGHT_SQL_SERVER_READ_ONLY", "FLIGHT_SQL_SERVER_VERSION",
    "SQL_ANSI92_SUPPORTED_LEVEL", "SQL_BATCH_UPDATES_SUPPORTED", "SQL_CATALOGS_SUPPORTED_ACTIONS",
    "SQL_CATALOG_AT_START", "SQL_CATALOG_TERM", "SQL_CORRELATED_SUBQUERIES_SUPPORTED",
    "SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED",
    "SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT", "SQL_DATETIME_FUNCTIONS",
    "SQL_DB_SCHEMA_NAME_LENGTH", "SQL_DEFAULT_TRANSACTION_ISOLATION", "SQL_EXTRA_NAME_CHARACTERS",
    "SQL_IDENTIFIER_QUOTE_CHAR", "SQL_KEYWORDS", "SQL_LOCATORS_UPDATE_COPY",
    "SQL_MAX_BINARY_LITERAL_LENGTH", "SQL_MAX_CATALOG_NAME_LENGTH", "SQL_MAX_CHAR_LITERAL_LENGTH",
    "SQL_MAX_COLUMNS_IN_GROUP_BY", "SQL_MAX_COLUMNS_IN_INDEX", "SQL_MAX_COLUMNS_IN_ORDER_BY",
    "SQL_MAX_COLUMNS_IN_SELECT", "SQL_MAX_COLUMNS_IN_TABLE", "SQL_MAX_COLUMN_NAME_LENGTH",
    "SQL_MAX_CONNECTIONS", "SQL_MAX_CURSOR_NAME_LENGTH", "SQL_MAX_INDEX_LENGTH",
    "SQL_MAX_PROCEDURE_NAME_LENGTH", "SQL_MAX_ROW_SIZE", "SQL_MAX_ROW_SIZE_INCLUDES_BLOBS",
    "SQL_MAX_STATEMENTS", "SQL_MAX_STATEMENT_LENGTH", "SQL_MAX_TABLES_IN_SELECT",
    "SQL_MAX_TABLE_NAME_LENGTH", "SQL_MAX_USERNAME_LENGTH", "SQL_NAMED_PARAMETERS_SUPPORTED",
    "SQL_NULL_PLUS_NULL_IS_NULL", "SQL_NUMERIC_FUNCTIONS", "SQL_OUTER_JOINS_SUPPORT_LEVEL",
    "SQL_PROCEDURE_TERM", "SQL_SAVEPOINTS_SUPPORTED", "SQL_SCHEMAS_SUPPORTED_ACTIONS",
    "SQL_SCHEMA_TERM", "SQL_SEARCH_STRING_ESCAPE", "SQL_SELECT_FOR_UPDATE_SUPPORTED",
    "SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED", "SQL_STORED_PROCEDURES_SUPPORTED",
    "SQL_STRING_FUNCTIONS", "SQL_SUPPORTED_GRAMMAR", "SQL_SUPPORTED_GROUP_BY",
    "SQL_SUPPORTED_POSITIONED_COMMANDS", "SQL_SUPPORTED_RESULT_SET_TYPES",
    "SQL_SUPPORTED_SUBQUERIES", "SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS",
    "SQL_SUPPORTED_UNIONS", "SQL_SUPPORTS_COLUMN_ALIASING", "SQL_SUPPORTS_CONVERT",
    "SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES", "SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY",
    "SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY", "SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE",
    "SQL_SUPPORTS_NON_NULLABLE_COLUMNS", "SQL_SUPPORTS_ORDER_BY_UNRELATED",
    "SQL_SUPPORTS_TABLE_CORRELATION_NAMES", "SQL_SYSTEM_FUNCTIONS", "SQL_TRANSACTIONS_SUPPORTED",
)

# The union child JDBC casts each key to (Integer, Long, Boolean, String, List, Map).
STRING, BOOL, BIGINT, INT32, STRING_LIST, INT32_MAP = range(6)
INT32_KEYS = {
    "FLIGHT_SQL_SERVER_TRANSACTION", "FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT",
    "FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT", "SQL_SUPPORTED_GROUP_BY", "SQL_SUPPORTED_GRAMMAR",
    "SQL_ANSI92_SUPPORTED_LEVEL", "SQL_SCHEMAS_SUPPORTED_ACTIONS",
    "SQL_CATALOGS_SUPPORTED_ACTIONS", "SQL_SUPPORTED_POSITIONED_COMMANDS",
    "SQL_SUPPORTED_SUBQUERIES", "SQL_SUPPORTED_UNIONS", "SQL_OUTER_JOINS_SUPPORT_LEVEL",
    "SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS", "SQL_SUPPORTED_RESULT_SET_TYPES",
    "SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_UNSPECIFIED",
    "SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_FORWARD_ONLY",
    "SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_SENSITIVE",
    "SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_INSENSITIVE",
}
BIGINT_KEYS = {"SQL_IDENTIFIER_CASE", "SQL_QUOTED_IDENTIFIER_CASE", "SQL_NULL_ORDERING",
               "SQL_DB_SCHEMA_NAME_LENGTH", "SQL_DEFAULT_TRANSACTION_ISOLATION"}
STRING_LIST_KEYS = {"SQL_KEYWORDS", "SQL_NUMERIC_FUNCTIONS", "SQL_STRING_FUNCTIONS",
                    "SQL_SYSTEM_FUNCTIONS", "SQL_DATETIME_FUNCTIONS"}
STRING_KEYS = {"FLIGHT_SQL_SERVER_NAME", "FLIGHT_SQL_SERVER_VERSION",
               "FLIGHT_SQL_SERVER_ARROW_VERSION", "SQL_IDENTIFIER_QUOTE_CHAR",
               "SQL_SEARCH_STRING_ESCAPE", "SQL_EXTRA_NAME_CHARACTERS", "SQL_SCHEMA_TERM",
               "SQL_PROCEDURE_TERM", "SQL_CATALOG_TERM", "FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION",
               "FLIGHT_SQL_SERVER_SUBSTRAIT_MAX_VERSION"}


def expected_child(name: str) -> int:
    if name in INT32_KEYS:
        return INT32
    if name in BIGINT_KEYS or (name.startswith("SQL_MAX_") and
                               name != "SQL_MAX_ROW_SIZE_INCLUDES_BLOBS"):
        return BIGINT
    if name in STRING_LIST_KEYS:
        return STRING_LIST
    if name == "SQL_SUPPORTS_CONVERT":
        return INT32_MAP
    if name in STRING_KEYS:
        return STRING
    return BOOL


def _children(table: pa.Table) -> dict[int, tuple[int, object]]:
    values = table.column("value").combine_chunks()
    names = table.column("info_name").to_pylist()
    return {name: (values.type_codes[i].as_py(), values[i].as_py())
            for i, name in enumerate(names)}


def test_all_keys_request_returns_the_canonical_schema(analyst: Session) -> None:
    info, table = analyst.fetch(pb.CommandGetSqlInfo())
    assert info.schema.equals(SCHEMA)
    assert table.schema.equals(SCHEMA)
    assert table.schema.field("value").type.type_codes == [0, 1, 2, 3, 4, 5]
    assert not table.schema.field("value").nullable


def test_every_standard_key_is_present_once_and_no_custom_key(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetSqlInfo())
    names = table.column("info_name").to_pylist()
    assert sorted(names) == sorted(pb.SqlInfo.values())
    assert all(name < 10000 for name in names)


def test_each_key_jdbc_reads_is_in_the_child_it_casts_to(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetSqlInfo())
    children = _children(table)
    for name in JDBC_KEYS:
        child, _ = children[pb.SqlInfo.Value(name)]
        assert child == expected_child(name), name
    for name, number in pb.SqlInfo.items():
        assert children[number][0] == expected_child(name), name


def test_a_subset_is_answered_in_request_order(analyst: Session) -> None:
    request = [pb.FLIGHT_SQL_SERVER_TRANSACTION, pb.FLIGHT_SQL_SERVER_READ_ONLY,
               pb.FLIGHT_SQL_SERVER_NAME, pb.SQL_IDENTIFIER_QUOTE_CHAR]
    _, table = analyst.fetch(pb.CommandGetSqlInfo(info=request))
    assert table.schema.equals(SCHEMA)
    assert table.to_pylist() == [
        {"info_name": pb.FLIGHT_SQL_SERVER_TRANSACTION,
         "value": pb.SQL_SUPPORTED_TRANSACTION_NONE},
        {"info_name": pb.FLIGHT_SQL_SERVER_READ_ONLY, "value": True},
        {"info_name": pb.FLIGHT_SQL_SERVER_NAME, "value": "meshgate"},
        {"info_name": pb.SQL_IDENTIFIER_QUOTE_CHAR, "value": '"'},
    ]


def test_server_is_read_only_without_transactions(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetSqlInfo())
    values = {name: value for name, (_, value) in _children(table).items()}
    assert values[pb.FLIGHT_SQL_SERVER_READ_ONLY] is True
    assert values[pb.FLIGHT_SQL_SERVER_SQL] is True
    assert values[pb.FLIGHT_SQL_SERVER_TRANSACTION] == pb.SQL_SUPPORTED_TRANSACTION_NONE
    assert values[pb.SQL_TRANSACTIONS_SUPPORTED] is False
    assert values[pb.SQL_SEARCH_STRING_ESCAPE] == "\\"


def test_unknown_keys_are_skipped(analyst: Session) -> None:
    _, table = analyst.fetch(pb.CommandGetSqlInfo(info=[pb.FLIGHT_SQL_SERVER_NAME, 9999]))
    assert table.column("info_name").to_pylist() == [pb.FLIGHT_SQL_SERVER_NAME]


def test_adbc_connects_and_reads_vendor_info(endpoint: Endpoint) -> None:
    # ADBC asks for key 8 at connect and asserts uint32 + dense union: a bad table panics it.
    with endpoint.adbc("analyst") as conn:
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "meshgate"
        assert info["vendor_version"] == STANDARD_INFO[pb.FLIGHT_SQL_SERVER_VERSION][1]
        assert info["vendor_arrow_version"] == pa.__version__
        assert str(info["driver_name"]).startswith("ADBC Flight SQL Driver")


def test_adbc_refuses_transactions_cleanly(endpoint: Endpoint) -> None:
    with endpoint.adbc("analyst") as conn, pytest.raises(adbc.Error, match="transaction"):
        conn.adbc_connection.set_autocommit(False)


UNARY = {"ABS", "CEIL", "CEILING", "EXP", "FLOOR", "LN", "SIGN", "SQRT",
         "LENGTH", "LOWER", "UPPER", "TRIM", "LTRIM", "RTRIM"}


@pytest.mark.parametrize(("key", "argument"), [(pb.SQL_NUMERIC_FUNCTIONS, "2.5"),
                                               (pb.SQL_STRING_FUNCTIONS, "'abc'")])
def test_advertised_functions_pass_the_query_gate(analyst: Session, service: QueryService,
                                                  key: int, argument: str) -> None:
    _, table = analyst.fetch(pb.CommandGetSqlInfo(info=[key]))
    functions = set(table.column("value")[0].as_py())
    assert functions & UNARY
    for name in sorted(functions & UNARY):
        service.prepare(f"SELECT {name}({argument}) AS x", service.principal("analyst"))
