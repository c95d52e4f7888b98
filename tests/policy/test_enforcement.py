"""Row filters and masks as callers see them, and what each source receives (issue 12).

Expected rows come from `mesh.STAFF` through Python (the reference), never from meshgate.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest

from meshgate.execution.run import ExecutionReport
from meshgate.planner.explain import explain_table
from meshgate.policy.policies import hmac_hex
from meshgate.service import QueryService
from meshgate.sqlconnector import SqlConnector
from tests.policy import mesh

KEY = mesh.HASH_KEY.encode()
EU = [row for row in mesh.STAFF if row[5] == "EU"]


def rows(service: QueryService, sql: str, user: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = service.query(sql, service.principal(user)).to_pylist()
    return result


def sent(service: QueryService, sql: str, user: str) -> list[str]:
    """The SQL every source received while `sql` ran."""
    report = ExecutionReport()
    prepared = service.prepare(sql, service.principal(user))
    service.execute(prepared, report=report).read_all()
    return [run.sql for run in report.fragments.values()]


@pytest.mark.parametrize("product", ["staff", "people"])  # DuckDB and SQLite sources
def test_analyst_sees_own_region_with_masks(service: QueryService, product: str) -> None:
    got = rows(service, f"SELECT id, name, email, ssn, salary, region FROM hr.{product} "
                        "ORDER BY id", "analyst")  # fmt: skip
    expected = [
        {"id": r[0], "name": r[1], "email": None if r[2] is None else hmac_hex(r[2], KEY),
         "ssn": None if r[3] is None else "***-**-" + r[3][-4:], "salary": None, "region": r[5]}
        for r in EU
    ]  # fmt: skip
    assert got == expected


def test_keyed_hash_is_hmac_sha256(service: QueryService) -> None:
    got = rows(service, "SELECT email FROM hr.staff WHERE id = 1", "analyst")
    assert got == [{"email": hmac_hex("ann@eu.example", KEY)}]
    assert hmac_hex("ann@eu.example", KEY) != hmac_hex("ann@eu.example", b"another key")


def test_builtin_masks_keep_types_and_nulls(service: QueryService) -> None:
    table = service.query("SELECT id, email, ssn, hired FROM hr.staff ORDER BY id",
                          service.principal("auditor"))  # fmt: skip
    assert str(table.schema.field("hired").type) == "date32[day]"
    expected = [
        {"id": r[0], "email": None if r[2] is None else "***@" + r[2].split("@")[1],
         "ssn": None if r[3] is None else "*" * (len(r[3]) - 4) + r[3][-4:],
         "hired": dt.date(int(r[7][:4]), 1, 1)}
        for r in mesh.STAFF
    ]  # fmt: skip
    assert table.to_pylist() == expected


def test_mesh_rule_redacts_pii_for_callers_without_pii_reader(service: QueryService) -> None:
    got = rows(service, "SELECT id, name, email, salary FROM hr.staff ORDER BY id", "viewer")
    assert got == [
        {"id": r[0], "name": "****", "email": None if r[2] is None else "****",
         "salary": None if r[4] is None else decimal.Decimal(f"{r[4]:.2f}")}
        for r in mesh.STAFF
    ]  # fmt: skip


def test_roles_add_up_an_unrestricted_granting_role_admits_all(service: QueryService) -> None:
    got = rows(service, "SELECT id, ssn FROM hr.staff ORDER BY id", "both")
    assert got == [{"id": r[0], "ssn": r[3]} for r in mesh.STAFF]


def test_predicate_on_a_masked_column_compares_the_masked_value(service: QueryService) -> None:
    assert rows(service, "SELECT count(*) AS n FROM hr.staff WHERE salary IS NULL",
                "analyst") == [{"n": len(EU)}]  # fmt: skip
    assert rows(service, "SELECT count(*) AS n FROM hr.staff WHERE ssn = '111-22-3331'",
                "analyst") == [{"n": 0}]  # fmt: skip
    assert rows(service, "SELECT count(*) AS n FROM hr.staff WHERE ssn = '***-**-3331'",
                "analyst") == [{"n": 1}]  # fmt: skip


@pytest.mark.parametrize("product", ["staff", "people"])
def test_unsafe_predicate_never_sees_a_hidden_row(service: QueryService, product: str) -> None:
    # id 7 is a US row the analyst may not see: 100 / (id - 7) would divide by zero on it.
    sql = f"SELECT id FROM hr.{product} WHERE id > 1 AND 100 / (id - 7) < 0 ORDER BY id"
    assert rows(service, sql, "analyst") == [{"id": 3}, {"id": 4}]
    fragments = sent(service, sql, "analyst")
    assert len(fragments) == 1
    (source_sql,) = fragments
    assert "'EU'" in source_sql  # the row filter is pushed to the source ...
    # ... with the safe user predicate beside it (its literal a bound parameter where the
    # source takes one: sql.shapes) ...
    assert "> 1" in source_sql or "> CAST($1 AS INT)" in source_sql
    assert "100" not in source_sql  # ... and the division stays above the barrier


def test_source_sql_for_the_policy_on_sqlite(service: QueryService) -> None:
    sql = "SELECT id FROM hr.people WHERE id > 1 AND 100 / (id - 7) < 0"
    assert sent(service, sql, "analyst") == [
        'SELECT "people"."dept_id" AS "dept_id", "people"."email" AS "email", '
        '"people"."hired" AS "hired", "people"."id" AS "id", "people"."name" AS "name", '
        '"people"."region" AS "region", "people"."ssn" AS "ssn" FROM "staff" AS "people" '
        "WHERE \"people\".\"region\" = 'EU' AND \"people\".\"id\" > 1"
    ]


def test_a_same_source_join_is_not_pushed_through_a_barrier(service: QueryService) -> None:
    sql = ("SELECT s.name, d.name AS dept FROM hr.staff s JOIN hr.depts d ON s.dept_id = d.id "
           "ORDER BY 1")  # fmt: skip
    admin = service.prepare(sql, service.principal("admin"))
    analyst = service.prepare(sql, service.principal("analyst"))
    assert len(admin.plan.fragments) == 1
    assert admin.plan.residual is None
    assert analyst.plan.residual is not None  # the join runs above the barrier
    assert rows(service, sql, "analyst") == [
        {"name": r[1], "dept": dict((d[0], d[1]) for d in mesh.DEPTS)[r[6]]}
        for r in sorted(EU, key=lambda r: r[1])
    ]


def test_no_dynamic_filter_ships_keys_out_of_a_barrier(service: QueryService) -> None:
    sql = ("SELECT s.id, sum(x.amount) AS total FROM hr.staff s JOIN sales.sales x "
           "ON x.staff_id = s.id WHERE s.name = 'Bo Chen' GROUP BY 1")  # fmt: skip
    lake = service.connectors["lake"]
    assert isinstance(lake, SqlConnector)
    lake.sent_sql.clear()
    assert rows(service, sql, "admin") == [{"id": 2, "total": 7.0}]
    assert any(" IN (" in s or "BETWEEN" in s for s in lake.sent_sql)  # admin: keys shipped
    lake.sent_sql.clear()
    assert rows(service, sql, "analyst") == []  # Bo Chen is a US row
    assert lake.sent_sql
    assert not any(" IN (" in s or "BETWEEN" in s for s in lake.sent_sql)


def test_no_dynamic_filter_ships_keys_out_of_a_barrier_in_a_having_subquery(
    service: QueryService,
) -> None:
    """A grouped subquery with a HAVING restricts the scan it joins with (TPC-H Q18), but not
    when it reads a policy barrier: its keys stay in the merge."""
    sql = ("SELECT x.staff_id, x.amount FROM sales.sales x WHERE x.staff_id IN "
           "(SELECT s.id FROM hr.staff s GROUP BY s.id HAVING MAX(s.name) = 'Bo Chen') "
           "ORDER BY 1, 2")  # fmt: skip
    lake = service.connectors["lake"]
    assert isinstance(lake, SqlConnector)
    lake.sent_sql.clear()
    assert rows(service, sql, "admin") == [{"staff_id": 2, "amount": 7.0}]
    assert any(" IN (" in s for s in lake.sent_sql)  # admin: keys shipped
    lake.sent_sql.clear()
    assert rows(service, sql, "analyst") == []  # Bo Chen is a US row, and masked
    assert lake.sent_sql
    assert not any(" IN (" in s or "BETWEEN" in s for s in lake.sent_sql)


def test_explain_hides_the_physical_plan_from_non_admins(service: QueryService) -> None:
    sql = "EXPLAIN SELECT id, email FROM hr.people WHERE id > 1"
    table = service.query(sql, service.principal("analyst"))
    text = " ".join(str(v) for row in table.to_pylist() for v in row.values())
    for secret in ("people_db", '"staff"', "EU", "user_attribute", "region", "SHA256", "hr_db"):
        assert secret not in text
    assert "hr.people/analyst" in text
    assert "sqlite" in text
    plan = service.prepare(sql.removeprefix("EXPLAIN "), service.principal("analyst")).plan
    physical = explain_table(plan, service.connectors, {}, admin=True)
    assert "'EU'" in " ".join(physical.column("sql").to_pylist())  # what an admin would see


def test_policies_are_reported_for_the_audit(service: QueryService) -> None:
    prepared = service.prepare("SELECT * FROM hr.staff", service.principal("analyst"))
    assert prepared.policies == ("hr.staff/analyst",)
    prepared = service.prepare("SELECT * FROM hr.staff", service.principal("viewer"))
    assert prepared.policies == ("pii-redacted",)


def test_system_columns_say_which_columns_are_masked_for_the_caller(
    service: QueryService,
) -> None:
    sql = ("SELECT column_name FROM meshgate.columns WHERE domain = 'hr' AND product = 'staff' "
           "AND masked ORDER BY ordinal")  # fmt: skip
    assert [r["column_name"] for r in rows(service, sql, "analyst")] == ["email", "ssn", "salary"]
    assert [r["column_name"] for r in rows(service, sql, "viewer")] == ["name", "email", "ssn"]
    assert rows(service, sql, "admin") == []
