"""The adversarial queries, as data: allowed ones (compared with the oracle) and refused ones.

Each allowed query runs on the server as `analyst` and on the oracle DuckDB as is (or as
`oracle_sql` where the oracle needs another spelling); refused ones must fail with `status`
before any source is contacted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Allowed:
    id: str
    sql: str
    ordered: bool = False  # compare row order too (the query has a total ORDER BY)
    oracle_sql: str | None = None


@dataclass(frozen=True)
class Refused:
    id: str
    sql: str
    status: str  # the ADBC status code name the client reads


@dataclass(frozen=True)
class Failing:
    """A query that fails on rows analyst may see: the same INVALID_ARGUMENT in every phase."""

    id: str
    sql: str
    message: str  # what the client reads, before the error id


E = "hr.employees"

ALLOWED: tuple[Allowed, ...] = (
    # --- predicates, LIKE, masked columns compared as masked --------------------------------
    Allowed("star", f"SELECT * FROM {E}"),
    Allowed("count", f"SELECT count(*) FROM {E}"),
    Allowed("id-range", f"SELECT id, name FROM {E} WHERE id > 100 AND id < 400"),
    Allowed("other-region", f"SELECT * FROM {E} WHERE region = 'US'"),
    Allowed("not-own-region", f"SELECT count(*) FROM {E} WHERE region <> 'EU'"),
    Allowed("or-true", f"SELECT count(*) FROM {E} WHERE region = 'US' OR 1 = 1"),
    Allowed("hidden-id", f"SELECT * FROM {E} WHERE id = 999999"),
    Allowed("hidden-id-in", f"SELECT id FROM {E} WHERE id IN (1, 2, 3, 999999)"),
    Allowed("hidden-id-between", f"SELECT count(*) FROM {E} WHERE id BETWEEN 999990 AND 1000000"),
    Allowed("raw-ssn", f"SELECT id FROM {E} WHERE ssn = '000-00-0000'"),
    Allowed("raw-ssn-prefix", f"SELECT count(*) FROM {E} WHERE ssn LIKE '9%'"),
    Allowed("masked-ssn-like", f"SELECT count(*) FROM {E} WHERE ssn LIKE '***-**-%'"),
    Allowed("masked-ssn-suffix", f"SELECT id, ssn FROM {E} WHERE ssn LIKE '%00%'"),
    Allowed("raw-email-like", f"SELECT count(*) FROM {E} WHERE email LIKE '%@example.com'"),
    Allowed("hash-length", f"SELECT count(*) FROM {E} WHERE length(email) = 64"),
    Allowed("salary-not-null", f"SELECT count(*) FROM {E} WHERE salary IS NOT NULL"),
    Allowed("salary-positive", f"SELECT id FROM {E} WHERE salary > 0"),
    Allowed("salary-coalesce", f"SELECT count(*) FROM {E} WHERE coalesce(salary, 1) = 1"),
    Allowed("name-like-hidden", f"SELECT id FROM {E} WHERE name LIKE 'ZZ%'"),
    Allowed("name-ilike-hidden", f"SELECT id FROM {E} WHERE name ILIKE 'zz hid%'"),
    Allowed("name-like-visible", f"SELECT id, name FROM {E} WHERE name LIKE '%an%'"),
    Allowed("not-eu", f"SELECT count(*) FROM {E} WHERE NOT (region = 'EU')"),
    Allowed("distinct-from", f"SELECT count(*) FROM {E} WHERE region IS DISTINCT FROM 'EU'"),
    Allowed("case-on-raw",
            f"SELECT sum(CASE WHEN ssn = '000-00-0000' OR salary > 1 THEN 1 ELSE 0 END) FROM {E}"),
    Allowed("manager-hidden", f"SELECT count(*) FROM {E} WHERE manager_id = 999999"),
    # --- ORDER BY, LIMIT ----------------------------------------------------------------------
    Allowed("order-salary", f"SELECT id, salary FROM {E} ORDER BY salary DESC NULLS FIRST, id "
            "LIMIT 5", ordered=True),
    Allowed("order-ssn", f"SELECT id, ssn FROM {E} ORDER BY ssn DESC, id LIMIT 10", ordered=True),
    Allowed("order-email", f"SELECT id, email FROM {E} ORDER BY email, id LIMIT 10",
            ordered=True),
    Allowed("order-name-top", f"SELECT name FROM {E} ORDER BY name DESC, id LIMIT 1",
            ordered=True),
    Allowed("order-id-top", f"SELECT id FROM {E} ORDER BY id DESC LIMIT 3", ordered=True),
    Allowed("limit-offset", f"SELECT id FROM {E} ORDER BY id LIMIT 5 OFFSET 372", ordered=True),
    Allowed("limit-only-count", f"SELECT count(*) FROM (SELECT * FROM {E} LIMIT 1000) t"),
    Allowed("max-id", f"SELECT max(id), min(id) FROM {E}"),
    # --- GROUP BY, aggregates, DISTINCT ------------------------------------------------------
    Allowed("group-region", f"SELECT region, count(*) FROM {E} GROUP BY region"),
    Allowed("group-salary", f"SELECT salary, count(*) FROM {E} GROUP BY salary"),
    Allowed("group-ssn-suffix",
            f"SELECT right(ssn, 4) AS s, count(*) FROM {E} GROUP BY s HAVING count(*) > 1"),
    Allowed("group-email", f"SELECT email, count(*) FROM {E} GROUP BY email HAVING count(*) > 1"),
    Allowed("aggregates", f"SELECT sum(salary), avg(salary), max(ssn), min(email), "
            f"count(salary), count(DISTINCT region), max(name) FROM {E}"),
    Allowed("rollup", f"SELECT region, department_id, count(*) FROM {E} "
            "GROUP BY ROLLUP (region, department_id)"),
    Allowed("string-agg", f"SELECT string_agg(ssn, ',' ORDER BY id) FROM {E}"),
    Allowed("group-department-max-salary",
            f"SELECT department_id, max(salary), max(ssn) FROM {E} GROUP BY department_id"),
    Allowed("distinct-region", f"SELECT DISTINCT region FROM {E}"),
    Allowed("distinct-ssn", f"SELECT count(DISTINCT ssn), count(DISTINCT salary) FROM {E}"),
    Allowed("distinct-on", f"SELECT DISTINCT ON (department_id) department_id, id FROM {E} "
            "ORDER BY department_id, id", ordered=True),
    # --- window functions ----------------------------------------------------------------------
    Allowed("row-number-salary",
            f"SELECT id, row_number() OVER (ORDER BY salary DESC NULLS LAST, id) FROM {E}"),
    Allowed("rank-ssn", f"SELECT id, rank() OVER (PARTITION BY department_id ORDER BY ssn, id) "
            f"FROM {E}"),
    Allowed("count-over-all", f"SELECT DISTINCT count(*) OVER () FROM {E}"),
    Allowed("lag-email", f"SELECT id, lag(email) OVER (ORDER BY id) FROM {E}"),
    Allowed("sum-salary-window",
            f"SELECT id, sum(salary) OVER (PARTITION BY region) FROM {E}"),
    Allowed("qualify", f"SELECT department_id, id FROM {E} "
            "QUALIFY row_number() OVER (PARTITION BY department_id ORDER BY id DESC) = 1"),
    Allowed("max-id-window", f"SELECT DISTINCT max(id) OVER (PARTITION BY region) FROM {E}"),
    # --- joins (masked keys, self-joins, across sources) -------------------------------------
    Allowed("self-join-email",
            f"SELECT count(*) FROM {E} a JOIN {E} b ON a.email = b.email"),
    Allowed("self-join-ssn",
            f"SELECT a.id, b.id FROM {E} a JOIN {E} b ON a.ssn = b.ssn AND a.id < b.id"),
    Allowed("self-join-salary", f"SELECT count(*) FROM {E} a JOIN {E} b ON a.salary = b.salary"),
    Allowed("manager-join",
            f"SELECT e.id, m.name, m.ssn FROM {E} e JOIN {E} m ON e.manager_id = m.id"),
    Allowed("orders-join", "SELECT e.region, count(*), sum(o.amount) FROM sales.orders o "
            f"JOIN {E} e ON e.id = o.employee_id GROUP BY e.region"),
    Allowed("orders-left-join", "SELECT count(*), count(e.id), count(e.ssn) FROM sales.orders o "
            f"LEFT JOIN {E} e ON e.id = o.employee_id"),
    Allowed("orders-right-join", "SELECT count(*), count(o.order_id) FROM sales.orders o "
            f"RIGHT JOIN {E} e ON e.id = o.employee_id"),
    Allowed("orders-full-join", "SELECT count(*) FROM sales.orders o "
            f"FULL JOIN {E} e ON e.id = o.employee_id"),
    Allowed("orders-join-email", "SELECT e.email, count(*) FROM sales.orders o "
            f"JOIN {E} e ON e.id = o.employee_id GROUP BY e.email"),
    Allowed("departments-join", f"SELECT d.name, count(*) FROM {E} e JOIN hr.departments d "
            "ON e.department_id = d.id GROUP BY d.name"),
    Allowed("join-using", f"SELECT count(*) FROM {E} a JOIN {E} b USING (id)"),
    Allowed("semi-join", "SELECT count(*) FROM sales.orders o WHERE EXISTS "
            f"(SELECT 1 FROM {E} e WHERE e.id = o.employee_id)"),
    Allowed("anti-join", "SELECT count(*) FROM sales.orders o WHERE o.employee_id NOT IN "
            f"(SELECT id FROM {E})"),
    # read only inside a subquery the merge runs as written (an inequality correlation)
    Allowed("exists-kept", "SELECT count(*) FROM sales.orders o WHERE EXISTS "
            f"(SELECT 1 FROM {E} e WHERE e.id = o.employee_id AND e.id <> o.order_id)"),
    Allowed("in-kept", "SELECT count(*) FROM sales.orders o WHERE o.employee_id IN "
            f"(SELECT e.id FROM {E} e WHERE e.id <> o.order_id)"),
    Allowed("scalar-kept", "SELECT count(*) FROM sales.orders o WHERE o.employee_id < "
            f"(SELECT max(e.id) FROM {E} e WHERE e.id <> o.order_id)"),
    # EXISTS kept as written where its SELECT goes down whole to a source that semi-joins it
    # (PostgreSQL): the policied product inside it stays behind its fence
    Allowed("exists-pushed-whole", "SELECT d.name, count(*) FROM hr.departments d WHERE EXISTS "
            f"(SELECT 1 FROM {E} e WHERE e.department_id = d.id AND e.salary > 0) "
            "GROUP BY d.name"),
    Allowed("not-exists-pushed-whole", "SELECT count(*) FROM hr.departments d WHERE NOT EXISTS "
            f"(SELECT 1 FROM {E} e WHERE e.department_id = d.id AND e.region = 'US')"),
    # a decorrelated aggregate's groups restricted to the filtered partner's keys
    # (rewrite/group_key_filters.py): over the policied product, and with it as the partner,
    # which the rule must leave alone
    Allowed("group-keys-of-partner", "SELECT d.name, e.id FROM hr.departments d "
            f"JOIN {E} e ON e.department_id = d.id WHERE d.name LIKE '%e%' AND e.salary >= "
            f"(SELECT avg(e2.salary) FROM {E} e2 WHERE e2.department_id = d.id)"),
    Allowed("group-keys-policied-partner", f"SELECT e.id FROM {E} e WHERE e.region = 'US' "
            f"AND e.salary >= (SELECT max(e2.salary) FROM {E} e2 "
            "WHERE e2.manager_id = e.manager_id)"),
    # ... and to the keys a decorrelated IN confines the partner to: the aggregate over the
    # policied product restricted, the IN over it (a barrier: left alone), the partner policied
    Allowed("group-keys-semi-joined", "SELECT d.name FROM hr.departments d WHERE d.id IN "
            "(SELECT d3.id FROM hr.departments d3 WHERE d3.region = 'EU') AND 1000 < "
            f"(SELECT sum(e.salary) FROM {E} e WHERE e.department_id = d.id)"),
    Allowed("group-keys-semi-join-over-policied", "SELECT d.name FROM hr.departments d "
            f"WHERE d.id IN (SELECT e.department_id FROM {E} e WHERE e.salary > 0) AND 0 < "
            "(SELECT count(*) FROM hr.departments d2 WHERE d2.id = d.id)"),
    Allowed("group-keys-semi-joined-policied-partner", f"SELECT e.id FROM {E} e "
            "WHERE e.department_id IN (SELECT d.id FROM hr.departments d WHERE d.region = 'EU') "
            f"AND e.salary >= (SELECT avg(e2.salary) FROM {E} e2 "
            "WHERE e2.department_id = e.department_id)"),
    Allowed("cross-join", f"SELECT count(*) FROM {E} CROSS JOIN hr.departments"),
    Allowed("items-join", "SELECT e.id, sum(i.quantity) FROM sales.order_items i "
            f"JOIN sales.orders o USING (order_id) JOIN {E} e ON e.id = o.employee_id "
            "GROUP BY e.id"),
    # --- subqueries, CTEs, set operations ------------------------------------------------------
    Allowed("scalar-subquery", f"SELECT (SELECT max(id) FROM {E}), (SELECT count(*) FROM {E})"),
    Allowed("in-subquery", f"SELECT count(*) FROM {E} WHERE id IN (SELECT manager_id FROM {E})"),
    Allowed("derived", f"SELECT * FROM (SELECT * FROM {E}) t WHERE t.region = 'US'"),
    Allowed("derived-deep", f"SELECT count(*) FROM (SELECT * FROM (SELECT * FROM (SELECT id "
            f"FROM {E}) a) b) c"),
    Allowed("correlated", f"SELECT a.id, (SELECT count(*) FROM {E} b WHERE b.manager_id = a.id) "
            f"FROM {E} a"),
    Allowed("lateral", f"SELECT a.id, l.n FROM {E} a, LATERAL (SELECT count(*) AS n FROM {E} b "
            "WHERE b.manager_id = a.id) l"),
    Allowed("exists-hidden", f"SELECT EXISTS (SELECT 1 FROM {E} WHERE id = 999999)"),
    Allowed("cte", f"WITH e AS (SELECT * FROM {E}) SELECT count(*), max(ssn) FROM e"),
    Allowed("cte-named-like-product",
            f"WITH employees AS (SELECT * FROM {E} WHERE region = 'US') "
            "SELECT count(*) FROM employees"),
    Allowed("cte-chain", f"WITH a AS (SELECT * FROM {E}), b AS (SELECT id, ssn FROM a) "
            "SELECT count(*) FROM b"),
    Allowed("cte-materialized",
            f"WITH e AS MATERIALIZED (SELECT * FROM {E}) SELECT id, email FROM e"),
    # a CTE read twice is computed once (planner/federate.py `_place_shared`): pushed whole
    # with its WITH where hr_db takes one, else kept in the merge over one fragment; either
    # way over the policy relation only (the row filter; ssn and salary as masked)
    Allowed("cte-twice-filter",
            f"WITH e AS (SELECT id, manager_id FROM {E} WHERE id < 999999) "
            "SELECT a.id, b.id FROM e a JOIN e b ON a.manager_id = b.id"),
    Allowed("cte-twice-mask",
            f"WITH e AS (SELECT id, ssn, salary FROM {E}) SELECT e.id, e.ssn FROM e "
            "WHERE e.ssn = (SELECT max(e2.ssn) FROM e e2) OR e.salary IS NOT NULL"),
    Allowed("cte-twice-split",
            f"WITH e AS (SELECT id, ssn, region FROM {E} WHERE ssn LIKE '%0%') "
            "SELECT o.order_id, e.ssn FROM sales.orders o JOIN e ON e.id = o.employee_id "
            "WHERE e.id IN (SELECT e2.id FROM e e2 WHERE e2.region = 'EU')"),
    Allowed("union-all", f"SELECT id FROM {E} UNION ALL SELECT id FROM {E}"),
    Allowed("union-literal-hidden",
            f"SELECT ssn FROM {E} UNION SELECT '000-00-0000'"),
    Allowed("except", f"SELECT id FROM {E} EXCEPT SELECT employee_id FROM sales.orders"),
    Allowed("intersect", f"SELECT id FROM {E} INTERSECT SELECT employee_id FROM sales.orders"),
    Allowed("union-by-name", f"SELECT * FROM {E} UNION ALL BY NAME SELECT * FROM {E}"),
    # --- whole rows, *, COLUMNS, packing ---------------------------------------------------------
    Allowed("whole-row", f"SELECT e FROM {E} e"),
    Allowed("row-pack", f"SELECT row(id, ssn, salary, email) FROM {E}"),
    Allowed("struct-pack", f"SELECT struct_pack(s := ssn, e := email, p := salary) FROM {E}"),
    Allowed("struct-literal", f"SELECT {{'s': ssn, 'n': name}} FROM {E}"),
    Allowed("list-pack", f"SELECT [ssn, email, name] FROM {E}"),
    Allowed("unnest", f"SELECT unnest([ssn, email]) FROM {E}"),
    Allowed("columns-regex", f"SELECT COLUMNS('s.*') FROM {E}"),
    Allowed("columns-star-max", f"SELECT max(COLUMNS(*)) FROM {E}"),
    Allowed("star-exclude", f"SELECT * EXCLUDE (ssn) FROM {E}"),
    Allowed("star-replace", f"SELECT * REPLACE (upper(name) AS name) FROM {E}"),
    Allowed("qualified-star", f"SELECT e.* FROM {E} e WHERE e.id < 50"),
    Allowed("to-json-row", f"SELECT to_json(e) FROM {E} e"),
    # --- case and quoting variants ------------------------------------------------------------
    Allowed("upper-columns", f"SELECT ID, SSN, Email FROM {E} WHERE REGION = 'EU'"),
    Allowed("quoted-names", 'SELECT "id", "ssn" FROM "hr"."employees"',
            oracle_sql=f"SELECT id, ssn FROM {E}"),
    Allowed("mixed-case-alias", f"SELECT E.Ssn, e.EMAIL FROM {E} AS e"),
    Allowed("quoted-upper-column", f'SELECT "SSN", "Salary" FROM {E}'),
    Allowed("upper-product-name", "SELECT ID, SSN FROM HR.EMPLOYEES",
            oracle_sql=f"SELECT id, ssn FROM {E}"),
    Allowed("quoted-upper-product-name", 'SELECT "Id" FROM "HR"."Employees"',
            oracle_sql=f"SELECT id FROM {E}"),
    # --- principal functions are the caller's -------------------------------------------------
    Allowed("principal-functions", "SELECT current_roles(), user_attribute('region'), current_user "
            f"FROM {E} LIMIT 1",
            oracle_sql="SELECT ['analyst', 'pii_reader'], 'EU', 'analyst'"),
    Allowed("own-attribute-filter",
            f"SELECT count(*) FROM {E} WHERE region = user_attribute('region')",
            oracle_sql=f"SELECT count(*) FROM {E} WHERE region = 'EU'"),
    Allowed("missing-attribute", f"SELECT count(*) FROM {E} WHERE user_attribute('clearance') "
            "IS NULL", oracle_sql=f"SELECT count(*) FROM {E}"),
    # --- casts, division, regexes that would fail or differ on the hidden row -----------------
    Allowed("division", f"SELECT count(*) FROM {E} WHERE 100 / (id - 999999) < 0"),
    Allowed("integer-division", f"SELECT count(*) FROM {E} WHERE 100 // (id - 999999) < 0"),
    Allowed("modulo", f"SELECT count(*) FROM {E} WHERE 100 % (id - 999999) >= 0"),
    Allowed("division-projected", f"SELECT id, 100 / (id - 999999) FROM {E}"),
    Allowed("cast-fails-on-hidden", f"SELECT count(*) FROM {E} WHERE CAST(CASE WHEN id = 999999 "
            "THEN 'x' ELSE '1' END AS INTEGER) = 1"),
    Allowed("cast-name-hidden", f"SELECT count(*) FROM {E} WHERE CAST(CASE WHEN name LIKE 'ZZ%' "
            "THEN name ELSE '2' END AS INTEGER) > 1"),
    Allowed("cast-salary", f"SELECT count(*) FROM {E} WHERE CAST(salary AS DECIMAL(4,0)) IS NULL"),
    Allowed("cast-ssn-digits", f"SELECT sum(CAST(right(ssn, 4) AS INTEGER)) FROM {E}"),
    Allowed("regex-hidden", f"SELECT count(*) FROM {E} WHERE regexp_matches(name, '^ZZ')"),
    Allowed("regex-extract", f"SELECT regexp_extract(ssn, '([0-9]{{4}})$', 1) FROM {E}"),
    Allowed("regex-raw-ssn", f"SELECT count(*) FROM {E} WHERE regexp_matches(ssn, '^[0-9]{{3}}-')"),
    Allowed("date-text", f"SELECT count(*) FROM {E} WHERE CAST(hire_date AS VARCHAR) < '2005'"),
    Allowed("sqrt-negative", f"SELECT count(*) FROM {E} WHERE sqrt(999999 - id) > 0"),
)

REFUSED: tuple[Refused, ...] = (
    # --- products analyst may not read, and internal names ------------------------------------
    Refused("finance-budgets", "SELECT * FROM finance.budgets", "NOT_FOUND"),
    Refused("finance-defined", "SELECT * FROM finance.revenue_by_region", "NOT_FOUND"),
    Refused("finance-in-subquery",
            f"SELECT count(*) FROM {E} WHERE id IN (SELECT budget_id FROM finance.budgets)",
            "NOT_FOUND"),
    Refused("unknown-product", "SELECT * FROM hr.salaries", "NOT_FOUND"),
    Refused("unqualified", "SELECT * FROM employees", "NOT_FOUND"),
    Refused("source-name-as-schema", "SELECT * FROM hr_db.employees", "NOT_FOUND"),
    Refused("dotted-quoted", 'SELECT * FROM "hr.employees"', "INVALID_ARGUMENT"),
    Refused("source-pseudo-table", 'SELECT * FROM "$source:hr_db".employees', "INVALID_ARGUMENT"),
    Refused("source-pseudo-quoted", 'SELECT * FROM "$source:hr_db"."employees"',
            "INVALID_ARGUMENT"),
    Refused("barrier-table", 'SELECT * FROM "$barrier"', "NOT_FOUND"),
    Refused("fragment-stream", "SELECT * FROM __fragment_1", "NOT_FOUND"),
    # Names match whatever their case, as in DuckDB: an ungranted product stays not found.
    Refused("upper-ungranted-product", "SELECT * FROM FINANCE.BUDGETS", "NOT_FOUND"),
    Refused("quoted-upper-ungranted", 'SELECT * FROM "Finance"."Budgets"', "NOT_FOUND"),
    Refused("main-schema", "SELECT * FROM main.employees", "NOT_FOUND"),
    Refused("three-part", "SELECT * FROM memory.main.employees", "NOT_FOUND"),
    # --- catalogs of the merge engine and of sources, both dialects -----------------------------
    Refused("pg-tables", "SELECT * FROM pg_catalog.pg_tables", "NOT_FOUND"),
    Refused("pg-tables-bare", "SELECT * FROM pg_tables", "NOT_FOUND"),
    Refused("pg-settings", "SELECT * FROM pg_settings", "NOT_FOUND"),
    Refused("pg-class", "SELECT relname FROM pg_class", "NOT_FOUND"),
    # information_schema.tables/columns/schemata answer from meshgate's catalog (test_surface);
    # the engine's other views and its own system catalog stay out of reach.
    Refused("information-schema-views", "SELECT * FROM information_schema.views", "NOT_FOUND"),
    Refused("information-schema-duckdb", "SELECT * FROM system.information_schema.tables",
            "NOT_FOUND"),
    Refused("describe-source-table", "DESCRIBE hr_db.employees", "NOT_FOUND"),
    Refused("show-all-tables", "SHOW ALL TABLES", "INVALID_ARGUMENT"),
    Refused("describe-query", "DESCRIBE SELECT * FROM hr.employees", "INVALID_ARGUMENT"),
    Refused("sqlite-master", "SELECT * FROM sqlite_master", "NOT_FOUND"),
    Refused("sqlite-schema", "SELECT * FROM sqlite_schema", "NOT_FOUND"),
    Refused("duckdb-settings", "SELECT * FROM duckdb_settings()", "INVALID_ARGUMENT"),
    Refused("duckdb-tables", "SELECT * FROM duckdb_tables()", "INVALID_ARGUMENT"),
    Refused("duckdb-databases", "SELECT * FROM duckdb_databases()", "INVALID_ARGUMENT"),
    Refused("current-setting", "SELECT current_setting('threads')", "INVALID_ARGUMENT"),
    Refused("pg-current-setting-in-where",
            f"SELECT id FROM {E} WHERE current_setting('search_path') = ''", "INVALID_ARGUMENT"),
    Refused("getenv", "SELECT getenv('HOME')", "INVALID_ARGUMENT"),
    # --- files and network ----------------------------------------------------------------------
    Refused("read-csv", "SELECT * FROM read_csv('/etc/passwd')", "INVALID_ARGUMENT"),
    Refused("read-csv-auto", "SELECT * FROM read_csv_auto('/etc/hosts')", "INVALID_ARGUMENT"),
    Refused("read-parquet", "SELECT * FROM read_parquet('data/finance/budgets.parquet')",
            "INVALID_ARGUMENT"),
    Refused("read-text", "SELECT * FROM read_text('/etc/hostname')", "INVALID_ARGUMENT"),
    Refused("glob", "SELECT * FROM glob('*')", "INVALID_ARGUMENT"),
    Refused("file-string-table", "SELECT * FROM '/etc/passwd'", "INVALID_ARGUMENT"),
    Refused("http-string-table", "SELECT * FROM 'https://example.com/x.csv'", "INVALID_ARGUMENT"),
    Refused("http-read-json", "SELECT * FROM read_json('http://127.0.0.1:1/x.json')",
            "INVALID_ARGUMENT"),
    Refused("pg-read-file", "SELECT pg_read_file('/etc/passwd')", "INVALID_ARGUMENT"),
    Refused("pg-ls-dir", "SELECT pg_ls_dir('.')", "INVALID_ARGUMENT"),
    Refused("pg-read-in-where", f"SELECT id FROM {E} WHERE pg_read_file('/etc/passwd') = ''",
            "INVALID_ARGUMENT"),
    Refused("lo-import", "SELECT lo_import('/etc/passwd')", "INVALID_ARGUMENT"),
    Refused("dblink", "SELECT * FROM dblink('host=127.0.0.1', 'SELECT 1') AS t(x int)",
            "INVALID_ARGUMENT"),
    Refused("query-function", "SELECT * FROM query('SELECT 42')", "INVALID_ARGUMENT"),
    Refused("query-table", "SELECT * FROM query_table('employees')", "INVALID_ARGUMENT"),
    # --- statements other than one query ----------------------------------------------------
    Refused("two-statements", f"SELECT 1; SELECT * FROM {E}", "INVALID_ARGUMENT"),
    Refused("select-then-drop", f"SELECT * FROM {E}; DROP TABLE employees", "INVALID_ARGUMENT"),
    Refused("drop", "DROP TABLE hr.employees", "INVALID_ARGUMENT"),
    Refused("delete", "DELETE FROM hr.employees WHERE region = 'US'", "INVALID_ARGUMENT"),
    Refused("update", "UPDATE hr.employees SET salary = 0", "INVALID_ARGUMENT"),
    Refused("insert", "INSERT INTO hr.employees (id) VALUES (1)", "INVALID_ARGUMENT"),
    Refused("create-table-as", f"CREATE TABLE t AS SELECT * FROM {E}", "INVALID_ARGUMENT"),
    Refused("create-view", f"CREATE VIEW v AS SELECT * FROM {E}", "INVALID_ARGUMENT"),
    Refused("select-into", f"SELECT * INTO t FROM {E}", "INVALID_ARGUMENT"),
    Refused("copy-to", f"COPY (SELECT * FROM {E}) TO '/tmp/leak.csv'", "INVALID_ARGUMENT"),
    Refused("attach", "ATTACH 'hr.sqlite' AS raw", "INVALID_ARGUMENT"),
    Refused("install", "INSTALL httpfs", "INVALID_ARGUMENT"),
    Refused("load", "LOAD httpfs", "INVALID_ARGUMENT"),
    Refused("set", "SET enable_external_access = true", "INVALID_ARGUMENT"),
    Refused("pragma", "PRAGMA database_list", "INVALID_ARGUMENT"),
    Refused("call", "CALL duckdb_settings()", "INVALID_ARGUMENT"),
    Refused("export", "EXPORT DATABASE '/tmp/leak'", "INVALID_ARGUMENT"),
    Refused("cte-recursive", f"WITH RECURSIVE chain(id, manager_id) AS ("
            f"SELECT id, manager_id FROM {E} WHERE id = 200 UNION ALL "
            f"SELECT e.id, e.manager_id FROM {E} e JOIN chain c ON e.id = c.manager_id) "
            "SELECT * FROM chain", "INVALID_ARGUMENT"),
    # --- operators a rewrite could lose: refused, never dropped --------------------------------
    Refused("tablesample", f"SELECT count(*) FROM {E} TABLESAMPLE (1 ROWS)", "INVALID_ARGUMENT"),
    Refused("using-sample", f"SELECT count(*) FROM (SELECT * FROM {E} USING SAMPLE 5 ROWS) t",
            "INVALID_ARGUMENT"),
    Refused("asof-join", f"SELECT count(*) FROM {E} e ASOF JOIN hr.departments d "
            "ON e.id >= d.id", "INVALID_ARGUMENT"),
    Refused("positional-join", f"SELECT count(*) FROM {E} e POSITIONAL JOIN hr.departments d",
            "INVALID_ARGUMENT"),
    Refused("pivot", f"SELECT * FROM {E} PIVOT (count(*) FOR region IN ('EU', 'US'))",
            "INVALID_ARGUMENT"),
    Refused("cte-with-delete", "WITH d AS (DELETE FROM hr.employees RETURNING *) "
            "SELECT * FROM d", "INVALID_ARGUMENT"),
    # --- CTE scope tricks: a CTE's name is in scope only where it is defined -------------------
    Refused("cte-scope-pg-settings",
            "SELECT s.name, s.setting FROM (WITH pg_settings AS (SELECT 1 AS x) "
            "SELECT x FROM pg_settings) a CROSS JOIN pg_settings AS s", "NOT_FOUND"),
    Refused("cte-scope-outside", "SELECT * FROM (WITH c AS (SELECT 1 AS x) SELECT x FROM c) t, c",
            "NOT_FOUND"),
    Refused("cte-scope-fragment",
            "SELECT * FROM (WITH __fragment_1 AS (SELECT 1 AS x) SELECT x FROM __fragment_1) t "
            f"CROSS JOIN __fragment_1 JOIN {E} e ON true", "NOT_FOUND"),
    Refused("cte-scope-sqlite-master",
            "SELECT * FROM (WITH sqlite_master AS (SELECT 1 AS x) SELECT x FROM sqlite_master) t "
            "CROSS JOIN sqlite_master", "NOT_FOUND"),
)

_CANNOT = "a value in this query cannot be computed"
_ADVICE = "; check the casts, the literals compared with columns and the arithmetic in the query"
_TO_INTEGER = f"{_CANNOT} (a cast or comparison to INTEGER failed: a value could not be converted)"
_TO_DATE = (f"{_CANNOT} (a cast or comparison to DATE failed: a text value is not a valid date "
            "or time)")
# Physical names of the demo's sales source, which a pushed query's error would otherwise quote.
SALES_PHYSICAL = ("customer_master", "cust_name", "cust_no", "contact_email")

FAILING: tuple[Failing, ...] = (
    Failing("cast-visible-name", f"SELECT CAST(name AS INTEGER) FROM {E}", _TO_INTEGER + _ADVICE),
    Failing("date-notadate", f"SELECT id FROM {E} WHERE hire_date > 'notadate'",
            _TO_DATE + _ADVICE),
    Failing("cast-masked-ssn", f"SELECT CAST(ssn AS DATE) FROM {E}", _TO_DATE + _ADVICE),
    Failing("cast-in-join", f"SELECT e.id FROM {E} e JOIN hr.departments d "
            "ON e.department_id = d.id WHERE CAST(e.name AS INTEGER) > 0", _TO_INTEGER + _ADVICE),
    # No policy on sales.customers: pushed whole to the sales DuckDB file, which fails on it.
    Failing("cast-at-source", "SELECT CAST(name AS INTEGER) FROM sales.customers",
            _TO_INTEGER + _ADVICE),
)
