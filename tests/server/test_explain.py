"""EXPLAIN over Flight SQL: the plan as rows, through a real client."""

from __future__ import annotations

import adbc_driver_flightsql.dbapi as adbc

from meshgate.server.proto import flight_sql_pb2 as sql
from tests.server.flightsql_clients import Session

QUERY = (
    "SELECT e.region, SUM(o.amount) AS total FROM sales.orders o "
    "JOIN hr.employees e ON e.id = o.employee_id WHERE e.region = 'EU' GROUP BY e.region"
)


def test_explain_lists_fragments_with_exact_sql_and_the_merge(admin: Session) -> None:
    info, table = admin.fetch(sql.CommandStatementQuery(query=f"EXPLAIN {QUERY}"))
    assert info.schema == table.schema
    rows = table.to_pylist()
    assert table.column_names == ["step", "source", "sql", "detail", "estimated_rows"]
    fragments = [r for r in rows if r["step"].startswith("fragment")]
    assert {r["source"] for r in fragments} == {"sales_db", "hr_db"}
    hr = next(r for r in fragments if r["source"] == "hr_db")
    assert "WHERE" in hr["sql"]
    assert "'EU'" in hr["sql"]
    assert rows[-1]["step"] == "merge"
    assert "SUM(" in rows[-1]["sql"]


def test_explain_through_adbc_prepared_statement(uri: str) -> None:
    with adbc.connect(uri, db_kwargs={"username": "admin", "password": "admin"}) as conn, \
            conn.cursor() as cursor:
        cursor.execute("EXPLAIN SELECT * FROM sales.orders WHERE amount > 1000")
        rows = cursor.fetch_arrow_table().to_pylist()
    assert len(rows) == 1
    assert rows[0]["step"].startswith("fragment")
    assert "amount" in rows[0]["sql"]
    assert "1000" in rows[0]["sql"]
    # DuckDB would guess that a filter keeps 20% of the table (4,000 of 20,000 where 19,394
    # match): a figure no statistic supports, so the estimate is unknown.
    assert rows[0]["estimated_rows"] is None


def test_explain_estimates_come_from_the_sources_statistics(uri: str) -> None:
    """A table read unchanged shows the row count its source keeps (DuckDB's catalog, the
    demo's SQLite after ANALYZE, Parquet footers); a filtered SQLite read shows NULL."""
    expected = {
        "SELECT * FROM sales.orders": 20000,
        "SELECT * FROM hr.employees": 1200,
        "SELECT * FROM finance.budgets": 360,
        "SELECT * FROM hr.employees WHERE id > 3": None,
    }
    with adbc.connect(uri, db_kwargs={"username": "admin", "password": "admin"}) as conn, \
            conn.cursor() as cursor:
        for sql, estimate in expected.items():
            cursor.execute(f"EXPLAIN {sql}")
            [fragment] = cursor.fetch_arrow_table().to_pylist()
            assert fragment["estimated_rows"] == estimate, sql
            if estimate is not None:
                cursor.execute(f"SELECT count(*) FROM ({sql})")
                assert cursor.fetchone() == (estimate,)
