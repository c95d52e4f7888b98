"""What else a caller can reach: EXPLAIN, every metadata call, prepared statements.

EXPLAIN for non-admins names fragments, source kinds and applied policies, never physical
names, policy text or estimates; metadata shows only granted products (analyst: no finance,
partner: no hr); parameters are values, never SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import duckdb
import pyarrow as pa
import pytest

from meshgate.server.proto import flight_sql_pb2 as pb
from tests.security.conftest import connect
from tests.security.deployment import HIDDEN_MARKERS, Deployment
from tests.security.results import query, rows
from tests.server.flightsql_clients import Session

# Fragments of the demo policies' text: none may reach a non-admin.
POLICY_TEXT = ("user_attribute", "'***-**-'", "right(", "RIGHT(", "sha256", "SHA256", "unhex",
               "UNHEX", "****")
EXPLAINED = (
    "SELECT * FROM hr.employees",
    "SELECT id, ssn FROM hr.employees WHERE ssn LIKE '%12' AND 100 / (id - 999999) < 0",
    "SELECT e.region, sum(o.amount) FROM sales.orders o JOIN hr.employees e "
    "ON e.id = o.employee_id GROUP BY e.region",
    "SELECT email, count(*) FROM hr.employees GROUP BY email ORDER BY 2 DESC LIMIT 3",
)


@pytest.fixture(scope="module")
def admin(deployment: Deployment) -> Iterator[adbc.Connection]:
    with connect(deployment, "admin") as connection:
        yield connection


@pytest.fixture(scope="module")
def partner(deployment: Deployment) -> Iterator[adbc.Connection]:
    with connect(deployment, "partner") as connection:
        yield connection


def _flight(deployment: Deployment, user: str) -> Session:
    return Session(deployment.uri, user, user)


@pytest.mark.parametrize("sql", EXPLAINED)
def test_explain_hides_the_physical_plan_and_the_policies_text(
    sql: str, phase: str, deployment: Deployment, analyst: adbc.Connection,
    admin: adbc.Connection,
) -> None:
    plan = query(analyst, f"EXPLAIN {sql}").to_pylist()
    text = repr(plan)
    for secret in (*deployment.secrets, *POLICY_TEXT, *HIDDEN_MARKERS[1:]):
        assert secret not in text
    assert all(row["estimated_rows"] is None for row in plan)
    assert {row["source"] for row in plan} <= {"sqlite", "duckdb", "postgres"}
    assert "hr.employees/analyst" in text, "EXPLAIN names the policies it applied"
    assert plan == query(analyst, f"EXPLAIN {sql}").to_pylist()
    seen = deployment.first_seen.setdefault(f"explain:{sql}", plan)
    assert plan == seen, "the plan a non-admin sees does not depend on hidden rows"
    admin_plan = repr(query(admin, f"EXPLAIN {sql}").to_pylist())
    assert "hr_db" in admin_plan, "admins see the physical plan"


def _schemas(session: Session) -> set[str]:
    _, table = session.fetch(pb.CommandGetDbSchemas())
    return set(table.column("db_schema_name").to_pylist())


def _tables(session: Session) -> dict[str, pa.Schema]:
    _, table = session.fetch(pb.CommandGetTables(include_schema=True))
    return {
        f"{r['db_schema_name']}.{r['table_name']}": pa.ipc.read_schema(pa.py_buffer(
            r["table_schema"]))
        for r in table.to_pylist()
    }


@pytest.mark.parametrize(("user", "visible", "invisible"), [
    ("analyst", {"sales", "hr"}, {"finance"}),
    ("partner", {"sales"}, {"hr", "finance"}),
])
def test_metadata_shows_only_granted_domains(
    deployment: Deployment, user: str, visible: set[str], invisible: set[str]
) -> None:
    session = _flight(deployment, user)
    try:
        _, catalogs = session.fetch(pb.CommandGetCatalogs())
        assert catalogs.num_rows == 1
        schemas = _schemas(session)
        assert visible <= schemas
        assert not invisible & schemas
        tables = _tables(session)
        assert {t.split(".")[0] for t in tables} & invisible == set()
        assert {t.split(".")[0] for t in tables} >= visible
        for domain in invisible:
            _, filtered = session.fetch(pb.CommandGetTables(db_schema_filter_pattern=domain))
            assert filtered.num_rows == 0
        text = repr({k: str(v) for k, v in tables.items()})
        for secret in deployment.secrets:
            assert secret not in text
    finally:
        session.close()
    with connect(deployment, user) as connection:
        objects = connection.adbc_get_objects(depth="all").read_all().to_pylist()
    names = {(s["db_schema_name"], t["table_name"])
             for c in objects for s in c["catalog_db_schemas"] or []
             for t in s["db_schema_tables"] or []}
    assert {d for d, _ in names} & invisible == set()
    assert {d for d, _ in names} >= visible


CATALOG_QUERIES = (
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM information_schema.columns",
    "SELECT * FROM information_schema.schemata",
    "SHOW TABLES",
    "SHOW SCHEMAS",
    "DESCRIBE sales.customers",
)


@pytest.mark.parametrize(("user", "invisible"), [
    ("analyst", {"finance"}),
    ("partner", {"hr", "finance"}),
])
def test_catalog_commands_and_information_schema_match_metadata(
    deployment: Deployment, user: str, invisible: set[str]
) -> None:
    """Through ADBC: SQL catalog answers list what GetTables lists, and name nothing else."""
    session = _flight(deployment, user)
    try:
        tables = _tables(session)
    finally:
        session.close()
    with connect(deployment, user) as connection:
        listed = query(connection, "SELECT table_schema, table_name FROM "
                       "information_schema.tables WHERE table_type = 'BASE TABLE'").to_pylist()
        products = {t: s for t, s in tables.items() if not t.startswith("meshgate.")}
        assert {f"{r['table_schema']}.{r['table_name']}" for r in listed} == set(products)
        shown = query(connection, "SHOW TABLES").column("name").to_pylist()
        assert set(shown) == set(products)
        for name, schema in products.items():
            described = query(connection, f"DESCRIBE {name}").to_pylist()
            assert [r["column_name"] for r in described] == schema.names
        answers = repr([query(connection, sql).to_pylist() for sql in CATALOG_QUERIES])
        refusals = []
        for name in ("hr.employees", "finance.budgets", "hr.no_such_product"):
            if name.split(".")[0] not in invisible and name != "hr.no_such_product":
                continue
            with pytest.raises(adbc.Error) as caught:
                query(connection, f"DESCRIBE {name}")
            assert caught.value.status_code.name == "NOT_FOUND"
            refusals.append(str(caught.value).split(name)[1].split(" (error ")[0])
    assert len(set(refusals)) == 1, "ungranted and missing products answer alike"
    assert refusals[0].startswith("' does not exist or you are not allowed to read it")
    for domain in invisible:
        assert f"'{domain}'" not in answers
    for secret in (*deployment.secrets, *HIDDEN_MARKERS[1:]):
        assert secret not in answers


def test_analyst_table_schema_keeps_declared_types(deployment: Deployment) -> None:
    session = _flight(deployment, "analyst")
    try:
        employees = _tables(session)["hr.employees"]
    finally:
        session.close()
    assert employees.field("salary").type == pa.decimal128(10, 2)
    assert employees.field("ssn").type == pa.string()
    assert "secret" not in repr(employees.metadata)


def test_partner_reads_sales_with_the_mesh_rule_and_never_hr(
    deployment: Deployment, partner: adbc.Connection, admin: adbc.Connection
) -> None:
    emails = query(partner, "SELECT DISTINCT email FROM sales.customers").column(0).to_pylist()
    assert set(emails) <= {"****", None}
    assert "****" in emails
    raw = query(admin, "SELECT count(DISTINCT email) FROM sales.customers").column(0)[0].as_py()
    assert raw > 1, "admins see the raw e-mail addresses"
    for sql in ("SELECT * FROM hr.employees", "SELECT * FROM hr.departments",
                "SELECT * FROM finance.revenue_by_region"):
        with pytest.raises(adbc.Error) as caught:
            query(partner, sql)
        assert caught.value.status_code.name == "NOT_FOUND"
        product = sql.removeprefix("SELECT * FROM ")
        assert f"data product '{product}' does not exist or you are not allowed" in str(
            caught.value
        )


PARAMETERISED: list[tuple[str, tuple[Any, ...]]] = [
    ("SELECT id FROM hr.employees WHERE id = ?", (999999,)),
    ("SELECT id FROM hr.employees WHERE ssn = ?", ("000-00-0000",)),
    ("SELECT id FROM hr.employees WHERE name LIKE ?", ("ZZ%",)),
    ("SELECT count(*) FROM hr.employees WHERE region = ?", ("US",)),
    ("SELECT count(*) FROM hr.employees WHERE id > ? AND id < ?", (0, 1_000_000)),
    ("SELECT id, ssn FROM hr.employees WHERE ssn = ? OR id = ?", ("***-**-5208", 4)),
    ("SELECT count(*) FROM hr.employees WHERE name = ?", ("x' OR '1'='1",)),
    ("SELECT count(*) FROM hr.employees WHERE 100 / (id - ?) < 0", (999999,)),
    ("SELECT CAST(? AS VARCHAR) AS v, count(*) FROM hr.employees",
     ("'; DROP TABLE employees; --",)),
]


@pytest.mark.parametrize(("sql", "parameters"), PARAMETERISED,
                         ids=[f"p{i}" for i in range(len(PARAMETERISED))])
def test_prepared_statement_parameters_are_values(
    sql: str, parameters: tuple[Any, ...], phase: str, analyst: adbc.Connection,
    oracle: duckdb.DuckDBPyConnection,
) -> None:
    answer = query(analyst, sql, parameters)
    expected = oracle.execute(sql, list(parameters)).to_arrow_table()
    assert rows(answer, ordered=False) == rows(expected, ordered=False)


def test_one_prepared_statement_serves_every_value(
    phase: str, analyst: adbc.Connection, oracle: duckdb.DuckDBPyConnection
) -> None:
    sql = "SELECT count(*), max(ssn) FROM hr.employees WHERE id < ?"
    with analyst.cursor() as cursor:
        for bound in (5, 999999, 1_000_000, -1):
            cursor.execute(sql, (bound,))
            answer = cursor.fetch_arrow_table()
            expected = oracle.execute(sql, [bound]).to_arrow_table()
            assert rows(answer, ordered=False) == rows(expected, ordered=False)
