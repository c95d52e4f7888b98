"""The CommandGetSqlInfo table: every standard key, each in its canonical union child.

Typing follows what clients cast to (flightsql-clients.md §1a, P3, P4): the Go driver asserts
`uint32` + dense union at connect and panics otherwise; JDBC 18.x casts each value to the Java
class of its child and NPEs on any missing key. Custom keys (>= 10000) are never sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import metadata

import pyarrow as pa

from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.sql.functions import ALLOWED_FUNCTION_CLASSES, ALLOWED_FUNCTION_NAMES

STRING, BOOL, BIGINT, INT32, STRING_LIST, INT32_MAP = range(6)

VALUE_TYPE = pa.dense_union(
    [
        pa.field("string_value", pa.string(), nullable=False),
        pa.field("bool_value", pa.bool_(), nullable=False),
        pa.field("bigint_value", pa.int64(), nullable=False),
        pa.field("int32_bitmask", pa.int32(), nullable=False),
        pa.field("string_list", pa.list_(pa.string()), nullable=False),
        pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32())),
                 nullable=False),
    ],
    type_codes=[STRING, BOOL, BIGINT, INT32, STRING_LIST, INT32_MAP],
)

SCHEMA = pa.schema([
    pa.field("info_name", pa.uint32(), nullable=False),
    pa.field("value", VALUE_TYPE, nullable=False),
])

Value = str | bool | int | list[str] | list[tuple[int, list[int]]]


def _bits(*positions: int) -> int:
    return sum(1 << p for p in positions)


def _version() -> str:
    try:
        return metadata.version("meshgate")
    except metadata.PackageNotFoundError:
        return "0.0.0"


_KEYWORDS = [
    "ALL", "AND", "ANY", "AS", "ASC", "BETWEEN", "BY", "CASE", "CAST", "CROSS", "DESC",
    "DISTINCT", "ELSE", "END", "EXCEPT", "EXISTS", "FALSE", "FETCH", "FILTER", "FIRST", "FROM",
    "FULL", "GROUP", "HAVING", "ILIKE", "IN", "INNER", "INTERSECT", "INTERVAL", "IS", "JOIN",
    "LAST", "LEFT", "LIKE", "LIMIT", "NATURAL", "NOT", "NULL", "NULLS", "OFFSET", "ON", "OR",
    "ORDER", "OUTER", "OVER", "PARTITION", "QUALIFY", "RIGHT", "SELECT", "THEN", "TRUE",
    "UNION", "USING", "WHEN", "WHERE", "WINDOW", "WITH",
]
_NUMERIC_FUNCTIONS = [
    "ABS", "CEIL", "CEILING", "EXP", "FLOOR", "GREATEST", "LEAST", "LN", "LOG", "LOG10", "MOD",
    "POWER", "ROUND", "SIGN", "SQRT", "TRUNC",
]
_STRING_FUNCTIONS = [
    "CONCAT", "CONTAINS", "LEFT", "LENGTH", "LOWER", "LPAD", "LTRIM", "REPLACE", "RIGHT", "RPAD",
    "RTRIM", "SPLIT_PART", "STARTS_WITH", "STRPOS", "SUBSTRING", "TRIM", "UPPER",
]
_SYSTEM_FUNCTIONS = ["COALESCE", "CURRENT_USER", "IFNULL", "NULLIF"]
_DATETIME_FUNCTIONS = [
    "CURRENT_DATE", "CURRENT_TIMESTAMP", "DATE_PART", "DATE_TRUNC", "EXTRACT", "NOW",
]



def _allowed(candidates: list[str]) -> list[str]:
    """The candidates the query gate lets through, so clients are never offered a refusal."""
    allowed = {name.upper() for name in ALLOWED_FUNCTION_NAMES}
    for cls in ALLOWED_FUNCTION_CLASSES:
        allowed.update(name.upper() for name in cls.sql_names())
    return [name for name in candidates if name in allowed]


_CONVERTIBLE = [
    pb.SQL_CONVERT_BIGINT, pb.SQL_CONVERT_BIT, pb.SQL_CONVERT_CHAR, pb.SQL_CONVERT_DECIMAL,
    pb.SQL_CONVERT_FLOAT, pb.SQL_CONVERT_INTEGER, pb.SQL_CONVERT_NUMERIC, pb.SQL_CONVERT_REAL,
    pb.SQL_CONVERT_SMALLINT, pb.SQL_CONVERT_TINYINT, pb.SQL_CONVERT_VARCHAR,
]


def _standard_info() -> dict[int, tuple[int, Value]]:
    """Key -> (union child, value) for every SqlInfo enum value."""
    no_limit = (BIGINT, 0)
    return {
        pb.FLIGHT_SQL_SERVER_NAME: (STRING, "meshgate"),
        pb.FLIGHT_SQL_SERVER_VERSION: (STRING, _version()),
        pb.FLIGHT_SQL_SERVER_ARROW_VERSION: (STRING, pa.__version__),
        pb.FLIGHT_SQL_SERVER_READ_ONLY: (BOOL, True),
        pb.FLIGHT_SQL_SERVER_SQL: (BOOL, True),
        pb.FLIGHT_SQL_SERVER_SUBSTRAIT: (BOOL, False),
        pb.FLIGHT_SQL_SERVER_SUBSTRAIT_MIN_VERSION: (STRING, ""),
        pb.FLIGHT_SQL_SERVER_SUBSTRAIT_MAX_VERSION: (STRING, ""),
        pb.FLIGHT_SQL_SERVER_TRANSACTION: (INT32, pb.SQL_SUPPORTED_TRANSACTION_NONE),
        pb.FLIGHT_SQL_SERVER_CANCEL: (BOOL, True),
        pb.FLIGHT_SQL_SERVER_BULK_INGESTION: (BOOL, False),
        pb.FLIGHT_SQL_SERVER_INGEST_TRANSACTIONS_SUPPORTED: (BOOL, False),
        pb.FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT: (INT32, 0),
        pb.FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT: (INT32, 0),
        pb.SQL_DDL_CATALOG: (BOOL, False),
        pb.SQL_DDL_SCHEMA: (BOOL, False),
        pb.SQL_DDL_TABLE: (BOOL, False),
        pb.SQL_IDENTIFIER_CASE: (BIGINT, pb.SQL_CASE_SENSITIVITY_CASE_INSENSITIVE),
        pb.SQL_IDENTIFIER_QUOTE_CHAR: (STRING, '"'),
        pb.SQL_QUOTED_IDENTIFIER_CASE: (BIGINT, pb.SQL_CASE_SENSITIVITY_CASE_INSENSITIVE),
        pb.SQL_ALL_TABLES_ARE_SELECTABLE: (BOOL, True),
        pb.SQL_NULL_ORDERING: (BIGINT, pb.SQL_NULLS_SORTED_AT_END),
        pb.SQL_KEYWORDS: (STRING_LIST, _KEYWORDS),
        pb.SQL_NUMERIC_FUNCTIONS: (STRING_LIST, _allowed(_NUMERIC_FUNCTIONS)),
        pb.SQL_STRING_FUNCTIONS: (STRING_LIST, _allowed(_STRING_FUNCTIONS)),
        pb.SQL_SYSTEM_FUNCTIONS: (STRING_LIST, _allowed(_SYSTEM_FUNCTIONS)),
        pb.SQL_DATETIME_FUNCTIONS: (STRING_LIST, _allowed(_DATETIME_FUNCTIONS)),
        pb.SQL_SEARCH_STRING_ESCAPE: (STRING, "\\"),
        pb.SQL_EXTRA_NAME_CHARACTERS: (STRING, ""),
        pb.SQL_SUPPORTS_COLUMN_ALIASING: (BOOL, True),
        pb.SQL_NULL_PLUS_NULL_IS_NULL: (BOOL, True),
        pb.SQL_SUPPORTS_CONVERT: (INT32_MAP, [(int(k), [int(v) for v in _CONVERTIBLE])
                                              for k in _CONVERTIBLE]),
        pb.SQL_SUPPORTS_TABLE_CORRELATION_NAMES: (BOOL, True),
        pb.SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES: (BOOL, False),
        pb.SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY: (BOOL, True),
        pb.SQL_SUPPORTS_ORDER_BY_UNRELATED: (BOOL, True),
        pb.SQL_SUPPORTED_GROUP_BY: (
            INT32, _bits(pb.SQL_GROUP_BY_UNRELATED, pb.SQL_GROUP_BY_BEYOND_SELECT)),
        pb.SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE: (BOOL, True),
        pb.SQL_SUPPORTS_NON_NULLABLE_COLUMNS: (BOOL, True),
        pb.SQL_SUPPORTED_GRAMMAR: (INT32, _bits(pb.SQL_MINIMUM_GRAMMAR, pb.SQL_CORE_GRAMMAR)),
        pb.SQL_ANSI92_SUPPORTED_LEVEL: (
            INT32, _bits(pb.ANSI92_ENTRY_SQL, pb.ANSI92_INTERMEDIATE_SQL)),
        pb.SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY: (BOOL, False),
        pb.SQL_OUTER_JOINS_SUPPORT_LEVEL: (INT32, pb.SQL_FULL_OUTER_JOINS),
        pb.SQL_SCHEMA_TERM: (STRING, "domain"),
        pb.SQL_PROCEDURE_TERM: (STRING, "procedure"),
        pb.SQL_CATALOG_TERM: (STRING, "mesh"),
        pb.SQL_CATALOG_AT_START: (BOOL, True),
        pb.SQL_SCHEMAS_SUPPORTED_ACTIONS: (INT32, 0),
        pb.SQL_CATALOGS_SUPPORTED_ACTIONS: (INT32, 0),
        pb.SQL_SUPPORTED_POSITIONED_COMMANDS: (INT32, 0),
        pb.SQL_SELECT_FOR_UPDATE_SUPPORTED: (BOOL, False),
        pb.SQL_STORED_PROCEDURES_SUPPORTED: (BOOL, False),
        pb.SQL_SUPPORTED_SUBQUERIES: (INT32, _bits(
            pb.SQL_SUBQUERIES_IN_COMPARISONS, pb.SQL_SUBQUERIES_IN_EXISTS,
            pb.SQL_SUBQUERIES_IN_INS, pb.SQL_SUBQUERIES_IN_QUANTIFIEDS)),
        pb.SQL_CORRELATED_SUBQUERIES_SUPPORTED: (BOOL, True),
        pb.SQL_SUPPORTED_UNIONS: (INT32, _bits(pb.SQL_UNION, pb.SQL_UNION_ALL)),
        pb.SQL_MAX_BINARY_LITERAL_LENGTH: no_limit,
        pb.SQL_MAX_CHAR_LITERAL_LENGTH: no_limit,
        pb.SQL_MAX_COLUMN_NAME_LENGTH: no_limit,
        pb.SQL_MAX_COLUMNS_IN_GROUP_BY: no_limit,
        pb.SQL_MAX_COLUMNS_IN_INDEX: no_limit,
        pb.SQL_MAX_COLUMNS_IN_ORDER_BY: no_limit,
        pb.SQL_MAX_COLUMNS_IN_SELECT: no_limit,
        pb.SQL_MAX_COLUMNS_IN_TABLE: no_limit,
        pb.SQL_MAX_CONNECTIONS: no_limit,
        pb.SQL_MAX_CURSOR_NAME_LENGTH: no_limit,
        pb.SQL_MAX_INDEX_LENGTH: no_limit,
        pb.SQL_DB_SCHEMA_NAME_LENGTH: no_limit,
        pb.SQL_MAX_PROCEDURE_NAME_LENGTH: no_limit,
        pb.SQL_MAX_CATALOG_NAME_LENGTH: no_limit,
        pb.SQL_MAX_ROW_SIZE: no_limit,
        pb.SQL_MAX_ROW_SIZE_INCLUDES_BLOBS: (BOOL, False),
        pb.SQL_MAX_STATEMENT_LENGTH: no_limit,
        pb.SQL_MAX_STATEMENTS: no_limit,
        pb.SQL_MAX_TABLE_NAME_LENGTH: no_limit,
        pb.SQL_MAX_TABLES_IN_SELECT: no_limit,
        pb.SQL_MAX_USERNAME_LENGTH: no_limit,
        pb.SQL_DEFAULT_TRANSACTION_ISOLATION: (BIGINT, pb.SQL_TRANSACTION_NONE),
        pb.SQL_TRANSACTIONS_SUPPORTED: (BOOL, False),
        pb.SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS: (INT32, 0),
        pb.SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT: (BOOL, False),
        pb.SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED: (BOOL, False),
        pb.SQL_SUPPORTED_RESULT_SET_TYPES: (INT32, _bits(pb.SQL_RESULT_SET_TYPE_FORWARD_ONLY)),
        pb.SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_UNSPECIFIED: (INT32, 0),
        pb.SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_FORWARD_ONLY: (INT32, _bits(1)),
        pb.SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_SENSITIVE: (INT32, 0),
        pb.SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_SCROLL_INSENSITIVE: (INT32, 0),
        pb.SQL_BATCH_UPDATES_SUPPORTED: (BOOL, False),
        pb.SQL_SAVEPOINTS_SUPPORTED: (BOOL, False),
        pb.SQL_NAMED_PARAMETERS_SUPPORTED: (BOOL, False),
        pb.SQL_LOCATORS_UPDATE_COPY: (BOOL, False),
        pb.SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED: (BOOL, False),
    }


STANDARD_INFO = _standard_info()
assert set(STANDARD_INFO) == set(pb.SqlInfo.values()), "every SqlInfo key needs a value"


def sql_info_table(requested: Sequence[int]) -> pa.Table:
    """The answer to CommandGetSqlInfo: all keys for an empty request, else the known subset."""
    keys: Iterable[int] = requested if requested else sorted(STANDARD_INFO)
    rows = [(key, *STANDARD_INFO[key]) for key in dict.fromkeys(keys) if key in STANDARD_INFO]
    children: list[list[Value]] = [[] for _ in range(6)]
    type_ids: list[int] = []
    offsets: list[int] = []
    for _, child, value in rows:
        type_ids.append(child)
        offsets.append(len(children[child]))
        children[child].append(value)
    arrays = [pa.array(values, type=VALUE_TYPE.field(i).type) for i, values in enumerate(children)]
    union = pa.UnionArray.from_dense(
        pa.array(type_ids, pa.int8()), pa.array(offsets, pa.int32()), arrays,
        [VALUE_TYPE.field(i).name for i in range(6)], list(range(6)),
    ).view(VALUE_TYPE)
    names = pa.array([key for key, _, _ in rows], pa.uint32())
    return pa.Table.from_arrays([names, union], schema=SCHEMA)
