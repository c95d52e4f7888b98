"""What a user reads when the statement gate refuses a text: the whole message and its position.

test_parse.py covers which texts are refused; this file pins the message of each refusal as
an editor would show it (line and column of the fault, 1-based), so a rewording, an
off-by-one position or a refusal reported by the wrong layer (``3 statements`` read as 2, a
sqlglot class path left in a description) is caught.
"""

from __future__ import annotations

import logging

import duckdb
import pytest

from meshgate.errors import ForbiddenStatement, SqlSyntaxError, UnsupportedQuery
from meshgate.sql import duckdb_parser, parse_statement

READ_ONLY = (
    "meshgate only runs read-only queries (SELECT, WITH ... SELECT, VALUES, "
    "or EXPLAIN of one of them) and DESCRIBE, SHOW TABLES and SHOW SCHEMAS"
)
NOT_A_QUERY = "expected a query (SELECT, WITH, FROM, VALUES or EXPLAIN)"
INCOMPLETE = "incomplete expression or clause"


def _syntax_error(sql: str) -> SqlSyntaxError:
    with pytest.raises(SqlSyntaxError) as raised:
        parse_statement(sql)
    return raised.value


def assert_syntax_error(sql: str, message: str, line: int, column: int) -> None:
    """The error carries the position and the message says it, as the client shows it."""
    error = _syntax_error(sql)
    assert (error.line, error.column) == (line, column)
    assert error.message == f"{message} (line {line}, column {column})"


# DuckDB's parser names the literal that is not closed and points at where it opens.
UNTERMINATED = [
    ("'", 'unterminated quoted string at or near "\'"', 1, 1),
    ("SELECT 'abc", 'unterminated quoted string at or near "\'abc"', 1, 8),
    ('SELECT "abc', 'unterminated quoted identifier at or near ""abc"', 1, 8),
    ("SELECT 1 /* note", 'unterminated /* comment at or near "/* note"', 1, 10),
    ("SELECT $$abc", 'unterminated dollar-quoted string at or near "$$abc"', 1, 8),
    (
        "SELECT a\n  FROM d.p\n WHERE s = 'it''s",
        "unterminated quoted string at or near \"'it''s\"",
        3,
        12,
    ),
    ("SELECT 1,\n'abc\ndef", 'unterminated quoted string at or near "\'abc\ndef"', 2, 1),
    ('EXPLAIN SELECT\n  "a', 'unterminated quoted identifier at or near ""a"', 2, 3),
]


@pytest.mark.parametrize(("sql", "message", "line", "column"), UNTERMINATED)
def test_an_unterminated_literal_is_named_where_it_opens(
    sql: str, message: str, line: int, column: int
) -> None:
    assert_syntax_error(sql, f"syntax error: {message}", line, column)


# sqlglot's errors: the column is where the offending token starts, on the line it is on.
SQLGLOT_ERRORS = [
    ("SELECT (1", "syntax error near '1': expected )", 1, 9),
    ("SELECT [1", "syntax error near '1': expected ]", 1, 9),
    ("WITH t SELECT 1", "syntax error near 'SELECT': expected (", 1, 8),
    ("SELECT a FROM", "syntax error near 'FROM': expected table name", 1, 10),
    ("SELECT a\nFROM", "syntax error near 'FROM': expected table name", 2, 1),
    ("SELECT CAST(a AS)", "syntax error near ')': expected TYPE after CAST", 1, 17),
    ("SELECT CASE WHEN 1 THEN 2", "syntax error near '2': expected END after CASE", 1, 25),
    (
        "SELECT extract(FROM d)",
        "syntax error near 'FROM': expected FROM or comma after EXTRACT",
        1,
        16,
    ),
    ("SELECT 1)", "syntax error near ')': unexpected token", 1, 9),
    ("SELECT a FROM d.p WHERE b BETWEEN 1", f"syntax error near '1': {INCOMPLETE}", 1, 35),
    ("SELECT 1 UNION", f"syntax error near 'UNION': {INCOMPLETE}", 1, 10),
    ("SELECT 1\n  UNION", f"syntax error near 'UNION': {INCOMPLETE}", 2, 3),
    (
        "SELECT a\n  FROM d.p\n WHERE a > 1 AND",
        f"syntax error near 'AND': {INCOMPLETE}",
        3,
        14,
    ),
    ("SELECT\n  a\n  FROM d.p WHERE (", f"syntax error near '(': {INCOMPLETE}", 3, 18),
    ("SELECT\ta, (\t1", "syntax error near '1': expected )", 1, 13),
    (
        "SELECT * FROM d.p PIVOT (a FOR b IN (1))",
        "syntax error near 'a': expected an aggregation function in PIVOT",
        1,
        26,
    ),
    # A string spanning lines: sqlglot gives the line it ends on, the user looks where it opens.
    ("SELECT ('a\nb'", "syntax error near \"'a\\nb'\": expected )", 1, 9),
    (
        "SELECT CASE WHEN 1 THEN\n  'x\n\ny' FROM d.p",
        "syntax error near \"'x\\n\\ny'\": expected END after CASE",
        2,
        3,
    ),
    ("SELECT (" + "x" * 60, f"syntax error near {'x' * 40!r}: expected )", 1, 9),
]


@pytest.mark.parametrize(("sql", "message", "line", "column"), SQLGLOT_ERRORS)
def test_sqlglot_errors_read_without_its_internals(
    sql: str, message: str, line: int, column: int
) -> None:
    assert_syntax_error(sql, message, line, column)
    assert "Token" not in message
    assert "class" not in message


# Text sqlglot repairs but DuckDB, the dialect's authority, refuses: DuckDB's message and place.
DUCKDB_ERRORS = [
    ("SELECT , 1", 'syntax error at or near ","', 1, 8),
    ("  AS SELECT 1", 'syntax error at or near "AS"', 1, 3),
    ("SELECT 1\n\nFROM FROM d.p", 'syntax error at or near "FROM"', 3, 6),
    ("SELECT a\nFROM d.p\nWHERE a = (SELECT , 1)", 'syntax error at or near ","', 3, 19),
    ("SELECT $1$", 'syntax error at or near "$"', 1, 10),
    # At the end of the input: the column just after the last character.
    ("SELECT a FROM d.p WHERE a IN", "syntax error at end of input", 1, 29),
    ("SELECT a\nFROM d.p\nWINDOW w", "syntax error at end of input", 3, 9),
]


@pytest.mark.parametrize(("sql", "message", "line", "column"), DUCKDB_ERRORS)
def test_duckdb_syntax_errors_point_at_the_fault(
    sql: str, message: str, line: int, column: int
) -> None:
    assert_syntax_error(sql, message, line, column)


def test_a_duckdb_error_without_a_position_still_reads_as_a_syntax_error() -> None:
    error = _syntax_error('SELECT U&"a"')
    assert (error.message, error.line, error.column) == (
        "syntax error: pg_verifymbstr NOT IMPLEMENTED",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("sql", "line", "column"),
    [
        ("EXPLAIN", 1, 1),
        ("  explain ;", 1, 3),
        ("-- plan it\n\n   EXPLAIN", 3, 4),
        ("/* a */ EXPLAIN;;", 1, 9),
    ],
)
def test_explain_without_a_query_points_at_the_keyword(sql: str, line: int, column: int) -> None:
    assert_syntax_error(sql, "syntax error: EXPLAIN needs a query to explain", line, column)


def test_errors_under_explain_point_into_the_users_text() -> None:
    # The keyword is blanked out, not cut off: positions after it stay where the user typed them.
    assert_syntax_error("EXPLAIN SELECT (1", "syntax error near '1': expected )", 1, 17)
    assert_syntax_error("EXPLAIN\n  SELECT , 1", 'syntax error at or near ","', 2, 10)
    assert_syntax_error("EXPLAIN SELECT 1 1", "syntax error near '1': unexpected token", 1, 18)
    assert_syntax_error("/* a */ EXPLAIN SELECT (1", "syntax error near '1': expected )", 1, 25)


@pytest.mark.parametrize(
    ("sql", "word", "line", "column"),
    [
        ("SELEC 1", "SELEC", 1, 1),
        ("\n\n   selec 1", "selec", 3, 4),
        ('"foo" 1', "foo", 1, 1),
        # A quoted word is a name, never the keyword: DuckDB refuses all three.
        ('"DROP" TABLE d.p', "DROP", 1, 1),
        ('"EXPLAIN" SELECT 1', "EXPLAIN", 1, 1),
        ('EXPLAIN "x" 1', "x", 1, 9),
        ("'ab\ncd' x", "ab\ncd", 1, 1),
        ("SELECTION", "SELECTION", 1, 1),
    ],
)
def test_text_that_is_no_query_is_named_at_its_first_word(
    sql: str, word: str, line: int, column: int
) -> None:
    assert_syntax_error(sql, f"syntax error near {word!r}: {NOT_A_QUERY}", line, column)


def test_a_long_first_word_is_quoted_to_forty_characters() -> None:
    word = "x" * 60
    assert_syntax_error(f"{word} 1", f"syntax error near {word[:40]!r}: {NOT_A_QUERY}", 1, 1)


@pytest.mark.parametrize(
    ("sql", "message", "line", "column"),
    [
        ("SELECT a,\n   , b FROM d.p", "syntax error near ',': unexpected token", 2, 4),
        ("SELECT a,\t,b FROM d.p", "syntax error near ',': unexpected token", 1, 11),
        (
            "SELECT 1 UNION\n  SELECT",
            "syntax error near 'SELECT': the SELECT list is empty",
            2,
            3,
        ),
        (
            "SELECT a FROM d.p WHERE a IN (select)",
            "syntax error near 'SELECT': the SELECT list is empty",
            1,
            31,
        ),
        ("SELECT a\n\nFROM d.p ORDER", "syntax error near 'ORDER': unexpected keyword", 3, 10),
    ],
)
def test_token_runs_duckdb_rejects_point_at_the_token(
    sql: str, message: str, line: int, column: int
) -> None:
    assert_syntax_error(sql, message, line, column)


@pytest.mark.parametrize(
    ("sql", "count"),
    [
        ("SELECT 1; SELECT 2", 2),
        ("SELECT 1; SELECT 2; SELECT 3", 3),
        ("SELECT 1;\n;\nSELECT 2;\n-- c\nSELECT 3;;SELECT 4", 4),
        (";; SELECT 1 ;; DROP TABLE d.p ;;", 2),
        ("SELECT 'a;b'; SELECT 2", 2),
    ],
)
def test_the_statement_count_is_the_users(sql: str, count: int) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == (
        f"send one statement at a time: this text holds {count} statements"
    )


@pytest.mark.parametrize(
    "sql", ["SELECT 1;", ";SELECT 1", " ; SELECT 1 ;;; ", "SELECT 1 -- c\n; -- d"]
)
def test_stray_semicolons_around_one_query_are_fine(sql: str) -> None:
    assert parse_statement(sql).tree.sql("duckdb", comments=False) == "SELECT 1"


@pytest.mark.parametrize("sql", ["\n\t ", "-- a\n-- b", "/* a */ /* b */ ;", "EXPLAIN /* a */"])
def test_nothing_but_blanks_and_comments_is_an_empty_statement(sql: str) -> None:
    error = _syntax_error(sql)
    if sql.startswith("EXPLAIN"):
        assert error.message == "syntax error: EXPLAIN needs a query to explain (line 1, column 1)"
    else:
        assert (error.message, error.line, error.column) == (
            "empty statement: send one SQL query",
            None,
            None,
        )


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("CALL pragma_version()", "CALL"),
        ("LOAD httpfs", "LOAD"),
        ("RESET memory_limit", "RESET"),
        ("PREPARE q AS SELECT 1", "PREPARE"),
        ("EXECUTE q", "EXECUTE"),
        ("FORCE CHECKPOINT", "FORCE"),
        ("EXPLAIN EXPLAIN SELECT 1", "EXPLAIN"),
        ("explain drop table d.p", "DROP"),
        ("vacuum", "VACUUM"),
    ],
)
def test_statements_are_refused_without_logging_the_users_text(
    sql: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    # sqlglot logs "'<text>' contains unsupported syntax" for statements it parses only as an
    # opaque command; the gate refuses them by their keyword before sqlglot sees them.
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == f"{kind} statements are not allowed: {READ_ONLY}"
    assert caplog.records == []


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("WITH t AS (SELECT 1) DELETE FROM d.p", "DELETE"),
        ("WITH t AS (SELECT 1) UPDATE d.p SET a = 1", "UPDATE"),
        ("with t as (select 1) insert into x select * from t", "INSERT"),
        ("WITH t AS (SELECT 1) MERGE INTO x USING t ON TRUE WHEN MATCHED THEN DELETE", "MERGE"),
        ("WITH t AS (SELECT 1) CREATE TABLE x AS SELECT 1", "CREATE"),
        ("EXPORT DATABASE", "EXPORT"),
        ("DESCRIBE", "DESCRIBE"),
        ("desc d.p", "DESC"),
        ("KILL 1", "KILL"),
        # A PIVOT statement sqlglot cannot parse is still named as the statement it is.
        ("PIVOT d.p ON (", "PIVOT"),
        ("CACHE TABLE t", "CACHE"),
        ("UNCACHE TABLE t", "UNCACHE"),
    ],
)
def test_statements_are_named_by_what_they_do(sql: str, kind: str) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == f"{kind} statements are not allowed: {READ_ONLY}"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT * FROM d.p TABLESAMPLE (1 ROWS)",
            "TABLESAMPLE (or USING SAMPLE) is not supported yet; "
            "take a sample with ORDER BY random() LIMIT n",
        ),
        (
            "SELECT * FROM d.p USING SAMPLE 10%",
            "TABLESAMPLE (or USING SAMPLE) is not supported yet; "
            "take a sample with ORDER BY random() LIMIT n",
        ),
        (
            "SELECT * FROM d.p PIVOT (sum(b) FOR a IN ('x', 'y'))",
            "PIVOT is not supported yet; "
            "aggregate with GROUP BY and CASE or FILTER (WHERE ...) instead",
        ),
        (
            "SELECT * FROM d.p UNPIVOT (v FOR k IN (a, b))",
            "UNPIVOT is not supported yet; "
            "write one SELECT per column and combine them with UNION ALL",
        ),
        (
            "SELECT * FROM d.p ASOF JOIN d.q ON p.t >= q.t",
            "ASOF JOIN is not supported yet; join on an explicit condition "
            "(and pick the nearest row with a window function such as row_number())",
        ),
        (
            "SELECT * FROM d.p positional join d.q",
            "POSITIONAL JOIN is not supported yet; join on an explicit condition "
            "(and pick the nearest row with a window function such as row_number())",
        ),
        (
            "PIVOT d.p ON a USING sum(b)",
            "the PIVOT statement is not supported; write SELECT * FROM ... PIVOT (...) instead",
        ),
        (
            "WITH t AS (SELECT 1) PIVOT t ON a USING sum(b)",
            "the PIVOT statement is not supported; write SELECT * FROM ... PIVOT (...) instead",
        ),
        (
            "WITH t AS (SELECT 1) UNPIVOT d.p ON a, b INTO NAME k VALUE v",
            "the UNPIVOT statement is not supported; write SELECT * FROM ... UNPIVOT (...) instead",
        ),
        (
            "EXPLAIN ANALYSE SELECT 1",
            "EXPLAIN ANALYZE is not supported; use EXPLAIN to see the plan",
        ),
    ],
)
def test_unsupported_forms_say_what_to_write_instead(sql: str, message: str) -> None:
    with pytest.raises(UnsupportedQuery) as raised:
        parse_statement(sql)
    assert raised.value.message == message


def test_a_join_without_a_condition_says_how_to_write_a_cross_join() -> None:
    error = _syntax_error("SELECT * FROM d.p RIGHT JOIN d.q")
    assert (error.message, error.line) == (
        "syntax error: JOIN needs ON or USING (write CROSS JOIN for a cross product)",
        None,
    )


def test_deep_nesting_is_a_syntax_error_saying_so() -> None:
    error = _syntax_error("SELECT " + "(" * 5000 + "1" + ")" * 5000)
    assert (error.message, error.line) == ("syntax error: the statement is nested too deeply", None)


@pytest.mark.parametrize(
    "sql", ["SELECT DISTINCT FROM d.p", "SELECT ALL FROM d.p", "SELECT (SELECT DISTINCT) FROM d.p"]
)
def test_an_empty_select_list_after_a_modifier_is_a_syntax_error(sql: str) -> None:
    error = _syntax_error(sql)
    assert (error.message, error.line) == ("syntax error: a SELECT list is empty", None)


@pytest.mark.parametrize("sql", ["SELECT * FROM ?.p", "SELECT * FROM ?.d.p", "SELECT * FROM d.?"])
def test_no_part_of_a_table_name_may_be_a_parameter(sql: str) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == (
        "a table must be named in the query text, not computed: "
        "meshgate reads only data products: write FROM domain.product"
    )


def test_the_parser_connection_cannot_reach_files_or_extensions() -> None:
    # DuckDB parses the user's text on a private connection: it must be in memory, with file,
    # network and extension access off and its configuration locked against a change.
    parse_statement("SELECT 1")
    connection = duckdb_parser._connection
    assert connection is not None
    assert connection.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall() == [(None,)]
    assert connection.execute(
        "SELECT current_setting('enable_external_access'), "
        "current_setting('autoinstall_known_extensions'), "
        "current_setting('autoload_known_extensions'), current_setting('lock_configuration')"
    ).fetchall() == [(False, False, False, True)]
    with pytest.raises(duckdb.Error, match="locked"):
        connection.execute("SET enable_external_access = true")


@pytest.mark.parametrize(("call", "name", "advice"), [
    ("to_char(now(), 'YYYY-MM')", "to_char",
     "use `strftime(value, format)`, e.g. `strftime(ts, '%Y-%m-%d')` instead"),
    ("date_format(now(), '%Y')", "date_format",
     "use `strftime(value, format)`, e.g. `strftime(ts, '%Y-%m-%d')` instead"),
    ("getdate()", "getdate", "use `current_timestamp` instead"),
    ("sysdate()", "sysdate", "use `current_timestamp` instead"),
    ("isnull(x, 0)", "isnull", "use `coalesce(value, fallback)` instead"),
    ("frobnicate(x)", "frobnicate", "see DuckDB's function reference for what it offers"),
])  # fmt: skip
def test_a_function_foreign_to_the_dialect_is_called_so_with_its_equivalent(
    call: str, name: str, advice: str
) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(f"SELECT {call} FROM t")
    assert raised.value.message == (
        f"`{name}` is not a function of meshgate's SQL dialect (DuckDB's); {advice}"
    )


@pytest.mark.parametrize("call", ["read_csv('x.csv')", "current_setting('threads')",
                                  "getenv('HOME')", "pg_read_file('x')"])  # fmt: skip
def test_a_function_refused_for_what_it_reads_keeps_saying_so(call: str) -> None:
    name = call.split("(", maxsplit=1)[0]
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(f"SELECT {call}")
    assert raised.value.message == (
        f"function {name} is not allowed: meshgate runs only functions that "
        "compute on values; functions that read files, the network, system catalogs, settings "
        "or variables, or run SQL text are blocked"
    )
