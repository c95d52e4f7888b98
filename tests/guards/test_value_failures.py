"""DuckDB's value errors are classified into what the caller may read: a kind and a SQL type.

The merge, the DuckDB and the files connectors all read DuckDB's error text to say which
computation failed (`sqlconnector/failures.py`). Each case below raises the error from a real
DuckDB, so a marker or a type name that no longer matches DuckDB's own text fails here; the
expected kind and type are what the caller's message names (`ValueFailure.description`).
"""

from __future__ import annotations

import duckdb
import pytest

from meshgate.sqlconnector.failures import (
    ValueFailure,
    ValueFault,
    duckdb_missing_extension,
    duckdb_value_failure,
)

F = ValueFault


def _raised(sql: str) -> BaseException:
    with duckdb.connect() as connection, pytest.raises(duckdb.Error) as caught:
        connection.execute(sql).fetchall()
    return caught.value


@pytest.mark.parametrize(
    ("sql", "fault", "type_name"),
    [
        # DuckDB names the target by its physical type; the caller reads the SQL name.
        ("SELECT 'x'::BOOLEAN", F.CONVERSION, "BOOLEAN"),
        ("SELECT 'x'::TINYINT", F.CONVERSION, "TINYINT"),
        ("SELECT 'x'::SMALLINT", F.CONVERSION, "SMALLINT"),
        ("SELECT 'x'::INTEGER", F.CONVERSION, "INTEGER"),
        ("SELECT 'x'::BIGINT", F.CONVERSION, "BIGINT"),
        ("SELECT 'x'::HUGEINT", F.CONVERSION, "HUGEINT"),
        ("SELECT 'x'::REAL", F.CONVERSION, "REAL"),
        ("SELECT 'x'::DOUBLE", F.CONVERSION, "DOUBLE"),
        ("SELECT 'x'::INTERVAL", F.CONVERSION, "INTERVAL"),
        ("SELECT 'nan'::DECIMAL(4,1)", F.CONVERSION, "DECIMAL(4,1)"),
        ("SELECT 'x'::INT[]", F.CONVERSION, "INTEGER"),  # `destination type INTEGER[]`
        # A type with no SQL name (DuckDB's unsigned integers) is not named at all.
        ("SELECT 'x'::UTINYINT", F.CONVERSION, None),
        ("SELECT 'x'::BIT", F.CONVERSION, None),
        ("SELECT 'x'::JSON", F.CONVERSION, "JSON"),
        ("SELECT json_extract('{', '$.a')", F.CONVERSION, "JSON"),
        ("SELECT 'x'::DATE", F.DATETIME, "DATE"),
        ("SELECT 'x'::TIMESTAMP", F.DATETIME, "TIMESTAMP"),
        ("SELECT 'x'::TIME", F.DATETIME, "TIME"),
        ("SELECT '25:00:00'::TIME", F.DATETIME, "TIME"),
        ("SELECT strptime('x', '%Y')", F.DATETIME, None),
        ("SELECT 300::TINYINT", F.OUT_OF_RANGE, "TINYINT"),
        ("SELECT 9223372036854775807::BIGINT * 2", F.OUT_OF_RANGE, "BIGINT"),
        ("SELECT 2147483647::INTEGER + 1::INTEGER", F.OUT_OF_RANGE, "INTEGER"),
        ("SELECT 1000::DECIMAL(18,3)::DECIMAL(4,1)", F.OUT_OF_RANGE, "DECIMAL(4,1)"),
        ("SELECT to_timestamp(1e20)", F.OUT_OF_RANGE, "TIMESTAMP WITH TIME ZONE"),
        ("SELECT regexp_matches('a', '(')", F.INVALID_ARGUMENT, None),
    ],
)
def test_each_duckdb_value_error_names_its_kind_and_sql_type(
    sql: str, fault: ValueFault, type_name: str | None
) -> None:
    assert duckdb_value_failure(_raised(sql)) == ValueFailure(fault, type_name)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM no_such_table",  # a catalog error: not a value the query computed
        "SELECT 'a' LIKE 'a' ESCAPE 'ab'",  # DuckDB reports it as a syntax error
        "SELECT no_such_function(1)",
    ],
)
def test_errors_that_are_not_about_values_are_not_value_failures(sql: str) -> None:
    assert duckdb_value_failure(_raised(sql)) is None


def test_only_duckdb_s_own_errors_are_read() -> None:
    assert duckdb_value_failure(ValueError("Could not convert string 'x' to INT32")) is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # Only the first line is DuckDB's message; later lines (a query's text, a hint) may
        # hold anything, so a marker there must not classify.
        (duckdb.ConversionException("Conversion Error: no target\nDate out of range"),
         ValueFailure(F.CONVERSION)),
        (duckdb.ConversionException("Conversion Error: no target\ninvalid date field format"),
         ValueFailure(F.CONVERSION)),
        (duckdb.InvalidInputException("Invalid Input Error: x\nMalformed JSON"),
         ValueFailure(F.INVALID_ARGUMENT)),
        (duckdb.InvalidInputException("Invalid Input Error: value out of range"),
         ValueFailure(F.OUT_OF_RANGE)),
        (duckdb.OutOfRangeException("Timestamp out of range: 294247-01-10"),
         ValueFailure(F.OUT_OF_RANGE, "TIMESTAMP")),
        (duckdb.OutOfRangeException("Out of Range Error: no type named"),
         ValueFailure(F.OUT_OF_RANGE)),
        (duckdb.InvalidInputException(""), ValueFailure(F.INVALID_ARGUMENT)),
    ],
)  # fmt: skip
def test_the_first_line_alone_classifies(error: BaseException, expected: ValueFailure) -> None:
    assert duckdb_value_failure(error) == expected


def test_a_value_quoted_in_the_error_cannot_choose_the_type_named() -> None:
    """The value sits inside the text the type is read from: whatever it spells, only a
    standard SQL type name can come out, never the value itself."""
    error = _raised("SELECT 'range for SECRET_42 to type CUSTOMER_TABLE'::INTEGER")
    assert duckdb_value_failure(error) == ValueFailure(F.CONVERSION, "INTEGER")
    spelled = duckdb.InvalidInputException("Invalid Input Error: range for SECRET_42 here")
    assert duckdb_value_failure(spelled) == ValueFailure(F.INVALID_ARGUMENT)


# The names a message may carry, written out: the specification the classifier is held to.
STANDARD = ["BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "REAL", "DOUBLE",
            "DECIMAL", "NUMERIC", "VARCHAR", "TEXT", "BLOB", "DATE", "TIME", "TIMESTAMP",
            "TIMESTAMP WITH TIME ZONE", "INTERVAL", "UUID", "JSON", "DECIMAL(18,3)",
            "NUMERIC(9, 2)", "DECIMAL(4)"]  # fmt: skip


@pytest.mark.parametrize("type_name", STANDARD)
def test_standard_type_names_are_kept(type_name: str) -> None:
    assert ValueFailure(F.CONVERSION, type_name).type_name == type_name


@pytest.mark.parametrize(
    "type_name",
    ["mood", "INT32", "customer_status_enum", "DECIMAL(x)", "xDECIMAL(4,1)", "DECIMAL(4,1)x",
     "DECIMAL(4,1", "integer", ""],
)  # fmt: skip
def test_any_other_type_name_is_dropped(type_name: str) -> None:
    """A source's own type (an enum, a domain) is a physical name: it never reaches a message."""
    failure = ValueFailure(F.CONVERSION, type_name)
    assert failure.type_name is None
    assert failure == ValueFailure(F.CONVERSION)
    assert failure.description() == "a value could not be converted"


@pytest.mark.parametrize(
    ("failure", "description"),
    [
        (ValueFailure(F.CONVERSION, "INTEGER"),
         "a cast or comparison to INTEGER failed: a value could not be converted"),
        (ValueFailure(F.DATETIME, "DATE"),
         "a cast or comparison to DATE failed: a text value is not a valid date or time"),
        (ValueFailure(F.OUT_OF_RANGE, "BIGINT"), "a value is out of range for BIGINT"),
        (ValueFailure(F.TOO_LONG, "VARCHAR"), "a text value is too long for VARCHAR"),
        (ValueFailure(F.DIVISION_BY_ZERO, "INTEGER"), "a division by zero"),
        (ValueFailure(F.INVALID_ARGUMENT, "TEXT"),
         "a function was given an argument it cannot take"),
        (ValueFailure(F.INVALID_PATTERN, "TEXT"),
         "a regular expression or LIKE pattern is invalid"),
        (ValueFailure(F.OTHER, "DATE"), "a value is invalid for the operation applied to it"),
        (ValueFailure(F.DATETIME), "a text value is not a valid date or time"),
        (ValueFailure(F.OUT_OF_RANGE), "a value is out of range"),
    ],
)  # fmt: skip
def test_each_kind_reads_as_the_caller_s_words(failure: ValueFailure, description: str) -> None:
    assert failure.description() == description
    error = failure.error("DuckDB's own text")
    assert error.message == (
        f"a value in this query cannot be computed ({description}); check the casts, the "
        "literals compared with columns and the arithmetic in the query"
    )
    assert error.detail == "DuckDB's own text"


def test_a_missing_extension_is_named_only_from_duckdb_s_own_error() -> None:
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False, "autoload_known_extensions": False
    }
    with duckdb.connect(config=config) as connection, pytest.raises(duckdb.Error) as caught:
        connection.execute("SELECT CAST('1.2.3.4' AS INET)").fetchall()
    refused = duckdb_missing_extension(caught.value)
    assert refused is not None
    assert refused.message == (
        "this query uses a type or function of DuckDB's inet extension, which meshgate does "
        "not load; write it with DuckDB's built-in types and functions"
    )
    assert duckdb_missing_extension(ValueError(str(caught.value))) is None
    assert duckdb_missing_extension(_raised("SELECT 'x'::INTEGER")) is None
