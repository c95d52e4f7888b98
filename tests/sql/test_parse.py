"""The parse-and-gate stage: what reaches the binder, and what the user reads when it doesn't.

Security-relevant: every forbidden kind of statement and function is refused here, before any
source is touched (ARCHITECTURE.md §4.5), so these tables are the first line of the fail-closed
promise. Messages are asserted as the user reads them.
"""

from __future__ import annotations

import dataclasses

import duckdb
import pytest
from sqlglot import exp

from meshgate.errors import ForbiddenStatement, SqlSyntaxError, UnsupportedQuery
from meshgate.sql import Statement, parse_statement
from meshgate.sql.functions import ALLOWED_FUNCTION_CLASSES, ALLOWED_FUNCTION_NAMES

READ_ONLY = (
    "meshgate only runs read-only queries (SELECT, WITH ... SELECT, VALUES, "
    "or EXPLAIN of one of them) and DESCRIBE, SHOW TABLES and SHOW SCHEMAS"
)
FUNCTION_POLICY = (
    "meshgate runs only functions that compute on values; functions that read files, the "
    "network, system catalogs, settings or variables, or run SQL text are blocked"
)
PRODUCTS_ONLY = "meshgate reads only data products: write FROM domain.product"

VALID_QUERIES = [
    "SELECT 1",
    "select a, b from sales.orders",
    "FROM sales.orders",
    "SELECT * FROM sales.orders o JOIN crm.customers c ON o.customer_id = c.id",
    "SELECT * FROM a.x LEFT JOIN a.y USING (k) FULL OUTER JOIN a.z ON y.k = z.k",
    "SELECT * FROM a.x CROSS JOIN a.y",
    "WITH t AS (SELECT a FROM d.p) SELECT * FROM t",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    "SELECT a FROM d.p UNION SELECT a FROM d.q",
    "SELECT a FROM d.p UNION ALL SELECT a FROM d.q EXCEPT SELECT a FROM d.r",
    "SELECT a FROM d.p INTERSECT SELECT a FROM d.q ORDER BY 1 LIMIT 5",
    "(SELECT 1)",
    "SELECT * FROM (SELECT a FROM d.p) AS s WHERE s.a > 1",
    "SELECT a FROM d.p WHERE a IN (SELECT b FROM d.q)",
    "SELECT a FROM d.p WHERE EXISTS (SELECT 1 FROM d.q WHERE q.b = p.a)",
    "SELECT a, (SELECT max(b) FROM d.q) FROM d.p",
    "SELECT region, count(*), sum(amount) FROM d.p GROUP BY region HAVING count(*) > 1",
    "SELECT a, row_number() OVER (PARTITION BY b ORDER BY c) FROM d.p",
    "SELECT a, rank() OVER w, lag(a) OVER w FROM d.p WINDOW w AS (ORDER BY b)",
    "SELECT a, sum(b) OVER (ORDER BY c ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM d.p",
    "SELECT * FROM d.p QUALIFY row_number() OVER (PARTITION BY a ORDER BY b) = 1",
    "SELECT DISTINCT ON (a) a, b FROM d.p ORDER BY a, b",
    "SELECT * EXCLUDE (ssn) FROM d.p",
    "SELECT * FROM d.p ORDER BY a DESC NULLS LAST LIMIT 10 OFFSET 5",
    "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(id, name)",
    "SELECT x FROM UNNEST([1, 2, 3]) AS t(x)",
    "SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END FROM d.p",
    "SELECT CAST(a AS VARCHAR), a::INT, TRY_CAST(a AS DATE) FROM d.p",
    "SELECT coalesce(a, 0), nullif(a, 0), greatest(a, b), least(a, b) FROM d.p",
    "SELECT lower(s), upper(s), length(s), substr(s, 1, 2), trim(s), s || 'x' FROM d.p",
    "SELECT regexp_matches(s, 'a+'), s LIKE 'a%', s ILIKE 'A%', starts_with(s, 'a') FROM d.p",
    "SELECT abs(x), round(x, 2), ceil(x), floor(x), sqrt(x), power(x, 2), x % 3 FROM d.p",
    "SELECT date_trunc('month', d), extract(year FROM d), d + INTERVAL 1 DAY FROM d.p",
    "SELECT date_diff('day', a, b), strftime(d, '%Y'), year(d), date_part('dow', d) FROM d.p",
    "SELECT current_date, current_timestamp, now(), current_user",
    "SELECT count(DISTINCT a), avg(b), min(c), max(c), stddev(b), var_samp(b) FROM d.p",
    "SELECT bool_and(f), bool_or(f), string_agg(s, ','), listagg(s, ',') FROM d.p",
    "SELECT approx_count_distinct(a), median(b), quantile_cont(b, 0.9) FROM d.p",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY b) FROM d.p",
    "SELECT sum(b) FILTER (WHERE b > 0) FROM d.p",
    "SELECT ntile(4) OVER (ORDER BY b), first_value(b) OVER (), last_value(b) OVER () FROM d.p",
    "SELECT dense_rank() OVER (ORDER BY b), lead(b, 1, 0) OVER (ORDER BY b) FROM d.p",
    "SELECT list_transform(l, x -> x + 1), list_filter(l, x -> x > 1) FROM d.p",
    "SELECT j->>'a', json_extract(j, '$.b') FROM d.p",
    "SELECT * FROM d.p -- trailing comment",
    "/* leading comment */ SELECT 1;",
    "SELECT 1;;",
    "SELECT 1; -- done",
    "SELECT 'a;b' AS s",
    "SELECT * FROM d.order AS o",
    'SELECT o.order, "limit" FROM d.p AS o',
    "SELECT a, sum(b) FROM d.p GROUP BY ALL ORDER BY ALL",
    "SELECT list_transform(l, lambda x: x + 1) FROM d.p",
    'SELECT * FROM "limit" AS "where"',
]


@pytest.mark.parametrize("sql", VALID_QUERIES)
def test_read_only_queries_are_accepted(sql: str) -> None:
    statement = parse_statement(sql)
    assert isinstance(statement.tree, exp.Query)
    assert statement.explain is False
    assert statement.sql == sql


def test_statement_is_immutable_and_keeps_the_original_text() -> None:
    statement = parse_statement("SELECT a FROM d.p WHERE b = ?")
    assert statement == Statement(
        tree=statement.tree, explain=False, parameter_count=1, sql="SELECT a FROM d.p WHERE b = ?"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        statement.explain = True  # type: ignore[misc]


def test_every_call_returns_a_fresh_tree() -> None:
    first = parse_statement("SELECT a FROM d.p")
    second = parse_statement("SELECT a FROM d.p")
    assert first.tree is not second.tree
    assert first.tree == second.tree


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("(SELECT 1)", exp.Select),
        ("((SELECT 1 UNION SELECT 2))", exp.Union),
        ("(VALUES (1))", exp.Select),
    ],
)
def test_outer_parentheses_are_dropped(sql: str, kind: type[exp.Query]) -> None:
    assert type(parse_statement(sql).tree) is kind


def test_bare_values_becomes_a_select_over_the_values() -> None:
    statement = parse_statement("VALUES (1, 'a'), (2, 'b')")
    assert isinstance(statement.tree, exp.Select)
    assert statement.tree.sql("duckdb") == "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS values"


@pytest.mark.parametrize(
    "sql",
    [
        "VALUES (2, 'b'), (1, 'a'), (3, 'c') ORDER BY 1 DESC",
        "VALUES (2, 'b'), (1, 'a'), (3, 'c') ORDER BY 1 LIMIT 2",
        "VALUES (2, 'b'), (1, 'a'), (3, 'c') ORDER BY 2 LIMIT 1 OFFSET 1",
        "VALUES (2, 'b'), (1, 'a'), (3, 'c') ORDER BY 1 OFFSET 2",
    ],
)
def test_a_bare_values_list_keeps_its_order_limit_and_offset(sql: str) -> None:
    """The SELECT the gate hands on answers exactly what DuckDB answers for the text, and
    orders and cuts at its own level: SQL keeps no order of a subquery's rows, and later
    stages rewrite the outer query's ORDER BY and LIMIT only."""
    statement = parse_statement(sql)
    with duckdb.connect() as connection:
        expected = connection.execute(sql).fetchall()
        assert connection.execute(statement.tree.sql("duckdb")).fetchall() == expected
    (values,) = statement.tree.find_all(exp.Values)
    outer = {key for key in ("order", "limit", "offset") if statement.tree.args.get(key)}
    written = {word for word in ("order", "limit", "offset") if word.upper() in sql}
    assert outer == written
    assert not any(values.args.get(key) for key in ("order", "limit", "offset"))


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("EXPLAIN SELECT 1", "SELECT 1"),
        ("explain select a from d.p", "SELECT a FROM d.p"),
        (
            "EXPLAIN\n  WITH t AS (SELECT 1 AS a) SELECT a FROM t;",
            "WITH t AS (SELECT 1 AS a) SELECT a FROM t",
        ),
        (
            "/* why */ EXPLAIN SELECT a FROM d.p UNION SELECT b FROM d.q",
            "SELECT a FROM d.p UNION SELECT b FROM d.q",
        ),
    ],
)
def test_explain_wraps_a_query(sql: str, expected: str) -> None:
    statement = parse_statement(sql)
    assert statement.explain is True
    assert statement.tree.sql("duckdb", comments=False) == expected


def test_explain_of_a_forbidden_statement_is_forbidden() -> None:
    with pytest.raises(ForbiddenStatement, match=r"^DROP statements are not allowed"):
        parse_statement("EXPLAIN DROP TABLE d.p")


def test_explain_analyze_is_not_supported() -> None:
    with pytest.raises(UnsupportedQuery) as raised:
        parse_statement("EXPLAIN ANALYZE SELECT 1")
    assert raised.value.message == "EXPLAIN ANALYZE is not supported; use EXPLAIN to see the plan"


def test_explain_without_a_query_is_a_syntax_error() -> None:
    with pytest.raises(SqlSyntaxError) as raised:
        parse_statement("EXPLAIN")
    assert raised.value.message.startswith("syntax error: EXPLAIN needs a query to explain")


def test_syntax_errors_under_explain_keep_their_position() -> None:
    with pytest.raises(SqlSyntaxError) as raised:
        parse_statement("EXPLAIN SELECT a FROM d.p WHERE")
    assert (raised.value.line, raised.value.column) == (1, 27)


FORBIDDEN_STATEMENTS = [
    ("DROP TABLE d.p", "DROP"),
    ("CREATE TABLE t (a INT)", "CREATE"),
    ("CREATE VIEW v AS SELECT 1", "CREATE"),
    ("CREATE MACRO m(a) AS a + 1", "CREATE"),
    ("ALTER TABLE t ADD COLUMN b INT", "ALTER"),
    ("INSERT INTO t VALUES (1)", "INSERT"),
    ("INSERT INTO t SELECT * FROM d.p", "INSERT"),
    ("WITH s AS (SELECT 1) INSERT INTO t SELECT * FROM s", "INSERT"),
    ("UPDATE t SET a = 1", "UPDATE"),
    ("DELETE FROM t", "DELETE"),
    ("TRUNCATE t", "TRUNCATE"),
    ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE"),
    ("COPY t TO 'out.csv'", "COPY"),
    ("COPY t FROM 'in.csv'", "COPY"),
    ("ATTACH 'other.db'", "ATTACH"),
    ("DETACH other", "DETACH"),
    ("PRAGMA version", "PRAGMA"),
    ("SET memory_limit = '1GB'", "SET"),
    ("SET VARIABLE x = 1", "SET"),
    ("RESET memory_limit", "RESET"),
    ("CALL pragma_version()", "CALL"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("EXPORT DATABASE 'dir'", "EXPORT"),
    ("IMPORT DATABASE 'dir'", "IMPORT"),
    ("BEGIN", "BEGIN"),
    ("BEGIN TRANSACTION", "BEGIN"),
    ("COMMIT", "COMMIT"),
    ("ROLLBACK", "ROLLBACK"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("VACUUM", "VACUUM"),
    ("USE other", "USE"),
    ("DESCRIBE d.p", "DESCRIBE"),
    ("DESCRIBE SELECT 1", "DESCRIBE"),
    ("SHOW TABLES", "SHOW"),
    ("SUMMARIZE d.p", "SUMMARIZE"),
    ("PREPARE q AS SELECT 1", "PREPARE"),
    ("EXECUTE q", "EXECUTE"),
]


@pytest.mark.parametrize(("sql", "kind"), FORBIDDEN_STATEMENTS)
def test_statements_other_than_queries_are_forbidden(sql: str, kind: str) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == f"{kind} statements are not allowed: {READ_ONLY}"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "WITH a AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM a",
            f"INSERT inside a query is not allowed: {READ_ONLY}",
        ),
        (
            "WITH a AS (DELETE FROM t RETURNING *) SELECT * FROM a",
            f"DELETE inside a query is not allowed: {READ_ONLY}",
        ),
        (
            "WITH a AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM a",
            f"UPDATE inside a query is not allowed: {READ_ONLY}",
        ),
        (
            "SELECT * INTO t FROM d.p",
            f"SELECT ... INTO is not allowed: it creates a table; {READ_ONLY}",
        ),
        (
            "SELECT * FROM d.p FOR UPDATE",
            f"SELECT ... FOR UPDATE/SHARE is not allowed: it takes locks; {READ_ONLY}",
        ),
    ],
)
def test_writes_nested_in_a_query_are_forbidden(sql: str, message: str) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "SELECT 1; DROP TABLE d.p",
        "SELECT 1;\n-- comment\nSELECT 2;",
        "EXPLAIN SELECT 1; SELECT 2",
    ],
)
def test_several_statements_are_refused(sql: str) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == "send one statement at a time: this text holds 2 statements"


FORBIDDEN_FUNCTIONS = [
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM read_csv_auto('x.csv')", "read_csv_auto"),
    ("SELECT * FROM read_parquet('s3://bucket/x.parquet')", "read_parquet"),
    ("SELECT * FROM read_json('x.json')", "read_json"),
    ("SELECT read_text('x')", "read_text"),
    ("SELECT * FROM glob('*')", "glob"),
    ("SELECT * FROM query('DROP TABLE x')", "query"),
    ("SELECT * FROM query_table('t')", "query_table"),
    ("SELECT getenv('HOME')", "getenv"),
    ("SELECT current_setting('memory_limit')", "current_setting"),
    ("SELECT getvariable('x')", "getvariable"),
    ("SELECT pg_typeof(1)", "pg_typeof"),
    ("SELECT * FROM pg_catalog.pg_get_keywords()", "pg_get_keywords"),
    ("SELECT * FROM duckdb_tables()", "duckdb_tables"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
    ("SELECT * FROM sqlite_scan('x.db', 't')", "sqlite_scan"),
    ("SELECT * FROM postgres_scan('dsn', 'public', 't')", "postgres_scan"),
    ("SELECT http_get('http://example.com')", "http_get"),
    ("SELECT nextval('seq')", "nextval"),
    ("SELECT setseed(0.5)", "setseed"),
    ("SELECT current_schema()", "current_schema"),
    ("SELECT current_database()", "current_database"),
    ("SELECT json_execute_serialized_sql('x')", "json_execute_serialized_sql"),
    ("SELECT list_aggregate([1], 'sum')", "list_aggregate"),
    ("SELECT a FROM d.p WHERE a = getenv('X')", "getenv"),
    ("SELECT a FROM d.p WHERE a IN (SELECT getenv('X'))", "getenv"),
    ("WITH t AS (SELECT * FROM read_csv('x')) SELECT * FROM t", "read_csv"),
    ("SELECT * FROM d.p JOIN LATERAL read_csv(p.path) ON TRUE", "read_csv"),
    ("SELECT sum(getenv('X')) OVER () FROM d.p", "getenv"),
]


@pytest.mark.parametrize(("sql", "name"), FORBIDDEN_FUNCTIONS)
def test_functions_outside_the_allow_list_are_forbidden(sql: str, name: str) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == f"function {name} is not allowed: {FUNCTION_POLICY}"


def test_schema_qualified_functions_are_forbidden() -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement("SELECT myschema.upper(a) FROM d.p")
    assert raised.value.message.startswith(
        "function myschema.upper is not allowed: call built-in functions without a schema"
    )


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT * FROM range(10)", "generate_series"),
        ("SELECT * FROM generate_series(1, 3) AS g", "generate_series"),
    ],
)
def test_table_functions_in_from_are_forbidden(sql: str, name: str) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == (
        f"table function {name} is not allowed in FROM: {PRODUCTS_ONLY}"
    )


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT * FROM 'data.csv'", "data.csv"),
        ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
        ('SELECT * FROM "s3://bucket/x.parquet"', "s3://bucket/x.parquet"),
        ("SELECT * FROM d.p JOIN 'x/*.parquet' ON TRUE", "x/*.parquet"),
    ],
)
def test_file_paths_as_tables_are_forbidden(sql: str, name: str) -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement(sql)
    assert raised.value.message == (
        f"table name {name!r} looks like a file path or URL: {PRODUCTS_ONLY}"
    )


NOT_A_QUERY = "expected a query (SELECT, WITH, FROM, VALUES or EXPLAIN)"
INCOMPLETE = "incomplete expression or clause"

SYNTAX_ERRORS = [
    ("SELEC 1", f"syntax error near 'SELEC': {NOT_A_QUERY}", 1, 1),
    ("  \n  selec 1", f"syntax error near 'selec': {NOT_A_QUERY}", 2, 3),
    ("foo", f"syntax error near 'foo': {NOT_A_QUERY}", 1, 1),
    ("SELECT FROM WHERE", "syntax error near 'SELECT': the SELECT list is empty", 1, 1),
    ("SELECT a FROM", "syntax error near 'FROM': expected table name", 1, 10),
    ("WITH t AS (SELECT 1) SELECT", "syntax error near 'SELECT': the SELECT list is empty", 1, 22),
    ("SELECT a,, b FROM d.p", "syntax error near ',': unexpected token", 1, 10),
    ("SELECT (1", "syntax error near '1': expected )", 1, 9),
    ("SELECT ((1)", "syntax error near ')': expected )", 1, 11),
    ("SELECT 1)", "syntax error near ')': unexpected token", 1, 9),
    ("SELECT 1 2", "syntax error near '2': unexpected token", 1, 10),
    ("SELECT * FROM d.p WHERE", f"syntax error near 'WHERE': {INCOMPLETE}", 1, 19),
    ("SELECT * FROM d.p LIMIT", f"syntax error near 'LIMIT': {INCOMPLETE}", 1, 19),
    ("SELECT a\n  FROM d.p\n WHERE a = = 1", f"syntax error near '=': {INCOMPLETE}", 3, 12),
    ("SELECT * FROM d.p ORDER", "syntax error near 'ORDER': unexpected keyword", 1, 19),
    ("SELECT * FROM (SHOW TABLES)", "syntax error near 'SHOW': unexpected keyword", 1, 16),
    ("SELECT offset FROM d.p", "syntax error near 'offset': unexpected keyword", 1, 8),
    (
        "SELECT a FROM d.p LIMIT 1 OFFSET DESC",
        "syntax error near 'DESC': unexpected keyword",
        1,
        34,
    ),
    ("SELECT * FROM limit", "syntax error near 'limit': unexpected keyword", 1, 15),
    ("SELECT * FROM d.p t1 t2", "syntax error near 't2': unexpected token", 1, 22),
    ("SELECT 'abc", "syntax error: unterminated quoted string at or near \"'abc\"", 1, 8),
    # sqlglot repairs these silently; DuckDB's parser, the dialect's authority, refuses them.
    ("SELECT , 1", 'syntax error at or near ","', 1, 8),
    ("AS SELECT 1", 'syntax error at or near "AS"', 1, 1),
    ("FROM FROM d.p", 'syntax error at or near "FROM"', 1, 6),
    ("SELECT 'a' 'b'", "syntax error at or near \"'b'\"", 1, 12),
    ("SELECT * EXCLUDE FROM d.p", 'syntax error at or near "FROM"', 1, 18),
    ("EXPLAIN SELECT , 1", 'syntax error at or near ","', 1, 16),
]


@pytest.mark.parametrize(("sql", "message", "line", "column"), SYNTAX_ERRORS)
def test_syntax_errors_carry_a_short_message_and_position(
    sql: str, message: str, line: int, column: int
) -> None:
    with pytest.raises(SqlSyntaxError) as raised:
        parse_statement(sql)
    error = raised.value
    assert error.message == f"{message} (line {line}, column {column})"
    assert (error.line, error.column) == (line, column)
    assert "<" not in error.message, "no sqlglot internals in a user's message"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM d.p JOIN d.q",
        "SELECT a FROM d.p LEFT JOIN d.q",
        "SELECT a FROM d.p INNER JOIN d.q WHERE a = 1",
    ],
)
def test_join_without_condition_is_not_silently_a_cross_join(sql: str) -> None:
    with pytest.raises(SqlSyntaxError) as raised:
        parse_statement(sql)
    assert raised.value.message == (
        "syntax error: JOIN needs ON or USING (write CROSS JOIN for a cross product)"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM d.p, d.q",
        "SELECT * FROM d.p CROSS JOIN d.q",
        "SELECT * FROM d.p NATURAL JOIN d.q",
        "SELECT * FROM d.p ANTI JOIN d.q ON p.a = q.a",
        "SELECT * FROM d.p SEMI JOIN d.q USING (a)",
        "SELECT * FROM d.p, LATERAL (SELECT p.a + 1)",
        "SELECT * FROM d.p LEFT JOIN LATERAL (SELECT p.a + 1) ON TRUE",
        "SELECT * FROM d.p CROSS JOIN UNNEST(p.tags) AS t(tag)",
    ],
)
def test_other_join_forms_are_accepted(sql: str) -> None:
    assert isinstance(parse_statement(sql).tree, exp.Select)


@pytest.mark.parametrize(
    ("sql", "operator"),
    [
        ("SELECT * FROM d.p POSITIONAL JOIN d.q", "POSITIONAL JOIN"),
        ("SELECT * FROM d.p ASOF JOIN d.q ON p.t >= q.t", "ASOF JOIN"),
        ("SELECT * FROM d.p ASOF LEFT JOIN d.q ON p.t >= q.t", "ASOF JOIN"),
        ("SELECT * FROM d.p PIVOT (sum(b) FOR a IN ('x', 'y'))", "PIVOT"),
        ("SELECT * FROM (SELECT * FROM d.p) s PIVOT (sum(b) FOR a IN ('x'))", "PIVOT"),
        ("SELECT * FROM d.p JOIN d.q USING (a) PIVOT (sum(b) FOR a IN ('x'))", "PIVOT"),
        ("SELECT * FROM d.p UNPIVOT (v FOR k IN (a, b))", "UNPIVOT"),
        ("SELECT * FROM d.p TABLESAMPLE (1 ROWS)", "TABLESAMPLE"),
        ("SELECT * FROM d.p USING SAMPLE 10%", "TABLESAMPLE"),
        ("SELECT * FROM (SELECT * FROM d.p) s TABLESAMPLE (5 ROWS)", "TABLESAMPLE"),
        ("SELECT * FROM d.p WHERE a IN (SELECT a FROM d.q TABLESAMPLE 1%)", "TABLESAMPLE"),
    ],
)
def test_operators_later_stages_would_drop_are_refused(sql: str, operator: str) -> None:
    with pytest.raises(UnsupportedQuery) as raised:
        parse_statement(sql)
    assert raised.value.message.startswith(operator)
    assert "is not supported yet" in raised.value.message


def test_a_parameter_cannot_name_a_table() -> None:
    with pytest.raises(ForbiddenStatement) as raised:
        parse_statement("SELECT * FROM ?")
    assert raised.value.message == (
        f"a table must be named in the query text, not computed: {PRODUCTS_ONLY}"
    )


def test_deeply_nested_text_is_refused_not_crashed() -> None:
    with pytest.raises(SqlSyntaxError):
        parse_statement("SELECT " + "(" * 5000 + "1" + ")" * 5000)


@pytest.mark.parametrize("sql", ["", "   ", ";", " ;; ", "-- only a comment", "/* c */ ;"])
def test_empty_text_is_a_syntax_error(sql: str) -> None:
    with pytest.raises(SqlSyntaxError) as raised:
        parse_statement(sql)
    assert raised.value.message == "empty statement: send one SQL query"


@pytest.mark.parametrize(
    ("sql", "count"),
    [
        ("SELECT a FROM d.p", 0),
        ("SELECT a FROM d.p WHERE b = ?", 1),
        ("SELECT ?, ? FROM d.p WHERE b = ? LIMIT ?", 4),
        ("SELECT a FROM d.p WHERE b = $1 OR c = $1", 1),
        ("SELECT a FROM d.p WHERE b = $2 AND c = $1", 2),
        ("SELECT a FROM d.p WHERE b = $3", 3),
        ("SELECT '?' AS q FROM d.p WHERE b = ?", 1),
        ("EXPLAIN SELECT a FROM d.p WHERE b = ?", 1),
        ("WITH t AS (SELECT ? AS a) SELECT a FROM t WHERE a IN (SELECT ?)", 2),
    ],
)
def test_parameters_are_counted(sql: str, count: int) -> None:
    assert parse_statement(sql).parameter_count == count


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT ?, $1", "mixing ? and $n parameters is not supported; use one style"),
        ("SELECT $name", "named parameter $name is not supported; use ? or $1, $2, ..."),
    ],
)
def test_unsupported_parameter_styles(sql: str, message: str) -> None:
    with pytest.raises(UnsupportedQuery) as raised:
        parse_statement(sql)
    assert raised.value.message == message


@pytest.mark.parametrize(
    ("sql", "numbered"),
    [
        # LIMIT and OFFSET come before WHERE in sqlglot's tree; the client's order is the text's
        ("SELECT a FROM d.p WHERE b = ? AND c > ? LIMIT ? OFFSET ?",
         "SELECT a FROM d.p WHERE b = $1 AND c > $2 LIMIT $3 OFFSET $4"),
        ("SELECT ?, '?' FROM d.p /* ? */ WHERE b = ? ORDER BY a LIMIT ?",
         "SELECT $1, '?' FROM d.p WHERE b = $2 ORDER BY a LIMIT $3"),
        ("VALUES (?, ?) LIMIT ?", "SELECT * FROM (VALUES ($1, $2)) AS values LIMIT $3"),
        ("SELECT a FROM d.p WHERE b = $2 LIMIT $1", "SELECT a FROM d.p WHERE b = $2 LIMIT $1"),
    ],
)
def test_question_marks_are_numbered_in_text_order(sql: str, numbered: str) -> None:
    assert parse_statement(sql).tree.sql(dialect="duckdb", comments=False) == numbered


def test_parameters_are_numbered_from_one() -> None:
    with pytest.raises(SqlSyntaxError) as raised:
        parse_statement("SELECT $0")
    assert raised.value.message == "syntax error near '$0': parameters are numbered from $1"


@pytest.mark.parametrize(
    ("sql", "word"),
    [
        ("PIVOT d.p ON a USING sum(b)", "PIVOT"),
        ("UNPIVOT d.p ON a, b INTO NAME k VALUE v", "UNPIVOT"),
    ],
)
def test_pivot_statements_are_unsupported_with_a_rewrite_hint(sql: str, word: str) -> None:
    with pytest.raises(UnsupportedQuery) as raised:
        parse_statement(sql)
    assert raised.value.message == (
        f"the {word} statement is not supported; write SELECT * FROM ... {word} (...) instead"
    )


def test_allow_list_holds_no_function_that_reads_outside_its_arguments() -> None:
    # Guard the declarative lists themselves against a careless addition.
    denied_classes = {
        exp.ReadCSV,
        exp.ReadParquet,
        exp.CurrentSchema,
        exp.CurrentDatabase,
        exp.CurrentCatalog,
        exp.CurrentVersion,
        exp.SessionUser,
        exp.NextValueFor,
        exp.Anonymous,
        exp.AnonymousAggFunc,
    }
    assert not denied_classes & ALLOWED_FUNCTION_CLASSES
    for name in ALLOWED_FUNCTION_NAMES:
        assert name == name.lower()
        assert not name.startswith(("read_", "pg_", "duckdb_", "sqlite_", "http", "pragma"))
        assert name not in {"query", "query_table", "glob", "getenv", "current_setting"}


def test_truncated_queries_fail_with_a_user_error_never_a_crash() -> None:
    # Half-typed text is the commonest bad input; it must surface as an error the user can
    # read (SqlSyntaxError and friends), never as a Python exception from sqlglot or DuckDB.
    for sql in VALID_QUERIES:
        words = sql.split(" ")
        for cut in range(1, len(words)):
            prefix = " ".join(words[:cut])
            try:
                statement = parse_statement(prefix)
            except (SqlSyntaxError, ForbiddenStatement, UnsupportedQuery):
                continue
            assert isinstance(statement.tree, exp.Query), prefix
