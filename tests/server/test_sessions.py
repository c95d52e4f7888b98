"""Session options `catalog` / `schema` through raw Flight actions and through ADBC."""

from __future__ import annotations

import adbc_driver_flightsql.dbapi as adbc
import pyarrow as pa
import pytest
from pyarrow import flight

from meshgate.server.proto import flight_pb2 as pb
from meshgate.server.proto import flight_sql_pb2 as sql
from tests.server.flightsql_clients import Endpoint, Session

SetError = pb.SetSessionOptionsResult


def _set(session: Session, **options: object) -> pb.SetSessionOptionsResult:
    request = pb.SetSessionOptionsRequest()
    for name, value in options.items():
        if isinstance(value, str):
            request.session_options[name].string_value = value
        elif isinstance(value, bool):
            request.session_options[name].bool_value = value
    results = session.action("SetSessionOptions", request.SerializeToString())
    assert len(results) == 1
    return pb.SetSessionOptionsResult.FromString(results[0])


def _get(session: Session) -> dict[str, str]:
    results = session.action("GetSessionOptions", pb.GetSessionOptionsRequest().SerializeToString())
    assert len(results) == 1
    answer = pb.GetSessionOptionsResult.FromString(results[0])
    return {name: value.string_value for name, value in answer.session_options.items()}


def test_catalog_defaults_to_the_mesh_and_schema_to_none(analyst: Session) -> None:
    # Both are reported before any SetSessionOptions; "" is "no current domain".
    assert _get(analyst) == {"catalog": "demo", "schema": ""}


def test_an_empty_schema_clears_the_current_domain(analyst: Session) -> None:
    _set(analyst, schema="hr")
    assert dict(_set(analyst, schema="").errors) == {}
    assert _get(analyst)["schema"] == ""
    with pytest.raises(pa.ArrowKeyError, match=r"did you mean hr\.employees"):
        analyst.fetch(sql.CommandStatementQuery(query="SELECT count(*) AS n FROM employees"))


def test_set_and_get_schema(analyst: Session) -> None:
    result = _set(analyst, catalog="demo", schema="hr")
    assert dict(result.errors) == {}
    assert _get(analyst) == {"catalog": "demo", "schema": "hr"}


def test_schema_option_resolves_unqualified_names(analyst: Session) -> None:
    _set(analyst, schema="hr")
    _, table = analyst.fetch(sql.CommandStatementQuery(query="SELECT count(*) AS n FROM employees"))
    assert table.column("n")[0].as_py() > 0


@pytest.mark.parametrize(("options", "name", "error"), [
    ({"catalog": "elsewhere"}, "catalog", SetError.INVALID_VALUE),
    ({"schema": "finance"}, "schema", SetError.INVALID_VALUE),
    ({"schema": True}, "schema", SetError.INVALID_VALUE),
    ({"colour": "blue"}, "colour", SetError.INVALID_NAME),
])
def test_invalid_options_are_reported_per_name(analyst: Session, options: dict[str, object],
                                               name: str, error: int) -> None:
    result = _set(analyst, **options)
    assert result.errors[name].value == error
    assert _get(analyst)["schema"] == ""


def test_sessions_are_per_token(analyst: Session, endpoint: Endpoint) -> None:
    _set(analyst, schema="sales")
    other = endpoint.session("analyst")
    assert _get(other)["schema"] == ""
    other.close()


def test_close_session_revokes_its_token(analyst: Session, endpoint: Endpoint) -> None:
    _set(analyst, schema="hr")
    [body] = analyst.action("CloseSession", pb.CloseSessionRequest().SerializeToString())
    assert pb.CloseSessionResult.FromString(body).status == pb.CloseSessionResult.CLOSED
    for call in (lambda: _get(analyst),
                 lambda: analyst.fetch(sql.CommandStatementQuery(query="SELECT 1 AS one"))):
        with pytest.raises(flight.FlightUnauthenticatedError,
                           match="the bearer token is unknown or expired; authenticate again"):
            call()
    renewed = endpoint.session("analyst")
    try:
        assert _get(renewed)["schema"] == ""
    finally:
        renewed.close()


def test_adbc_current_catalog_and_schema(endpoint: Endpoint) -> None:
    with endpoint.adbc("analyst") as conn:
        assert conn.adbc_current_catalog == "demo"
        assert conn.adbc_current_db_schema == ""  # no current domain until one is set
        conn.adbc_connection.set_options(**{"adbc.connection.db_schema": "sales"})
        assert conn.adbc_current_db_schema == "sales"
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM orders")
            assert cursor.fetchone()[0] > 0  # type: ignore[index]



def test_adbc_session_schema_drives_show_tables_and_describe(endpoint: Endpoint) -> None:
    """SHOW TABLES lists the session schema's products; a bare DESCRIBE target resolves there;
    SHOW SCHEMAS marks it current."""
    with endpoint.adbc("analyst") as conn, conn.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        everything = [row[0] for row in cursor.fetchall()]
        assert everything == ["hr.departments", "hr.employees", "sales.customers",
                              "sales.order_items", "sales.orders"]  # fmt: skip
    # A connection set to schema hr from the start (the driver keeps a cursor's statement
    # prepared for the same text, so a changed option needs a fresh statement).
    with endpoint.adbc("analyst") as conn, conn.cursor() as cursor:
        conn.adbc_connection.set_options(**{"adbc.connection.db_schema": "hr"})
        cursor.execute("SHOW TABLES")
        assert cursor.fetchall() == [("departments",), ("employees",)]
        cursor.execute("DESCRIBE employees")
        described = cursor.fetch_arrow_table()
        assert described.column_names == [
            "column_name", "column_type", "null", "key", "default", "extra"]
        assert described.column("column_name").to_pylist()[:2] == ["id", "name"]
        cursor.execute("SHOW SCHEMAS")
        assert [row[1] for row in cursor.fetchall() if row[2]] == ["hr"]
        with pytest.raises(adbc.Error) as raised:
            cursor.execute("DESCRIBE budgets")
        assert raised.value.status_code.name == "NOT_FOUND"
        assert "data product 'hr.budgets' does not exist or you are not allowed" in str(
            raised.value)


CROSS_SOURCE_WITH_LOCAL_FILTER = (
    "SELECT e.name FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id "
    "WHERE regexp_matches(e.name, 'a$')"
)


@pytest.mark.parametrize("value", [True, "true"])
def test_strict_pushdown_session_option_refuses_local_work(analyst: Session,
                                                           value: object) -> None:
    assert dict(_set(analyst, strict_pushdown=value).errors) == {}
    with pytest.raises(Exception, match="strict pushdown") as raised:
        analyst.fetch(sql.CommandStatementQuery(query=CROSS_SOURCE_WITH_LOCAL_FILTER))
    assert "Traceback" not in str(raised.value)
    # a query the sources run entirely is fine in strict mode
    _, table = analyst.fetch(sql.CommandStatementQuery(
        query="SELECT count(*) AS n FROM sales.orders WHERE amount > 100"))
    assert table.column("n")[0].as_py() > 0
    _set(analyst, strict_pushdown=False)
    _, table = analyst.fetch(sql.CommandStatementQuery(query=CROSS_SOURCE_WITH_LOCAL_FILTER))
    assert table.num_rows > 0


def test_strict_pushdown_takes_only_booleans(analyst: Session) -> None:
    result = _set(analyst, strict_pushdown="sometimes")
    assert result.errors["strict_pushdown"].value == SetError.INVALID_VALUE
