"""Every query, allowed or refused, and every failed login leaves one audit record."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import flight

from meshgate.demo.generate import prepare_demo
from meshgate.errors import MeshgateError, Status
from meshgate.server import running_server
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.server.flightsql_clients import Session, adbc_refusal

FIELDS = {"time", "query_id", "user", "roles", "client", "sql", "outcome", "status", "error_id",
          "message", "products", "policies", "deprecated", "sources", "rows", "bytes",
          "seconds"}  # fmt: skip
NOT_READABLE = "does not exist or you are not allowed to read it"


@pytest.fixture
def audit_dir(demo_dir: Path, tmp_path: Path) -> Path:
    """The demo mesh with an audit file that rotates at 4 KiB."""
    config = tmp_path / "config"
    config.mkdir()
    for source in demo_dir.iterdir():
        if source.suffix == ".yaml":
            text = source.read_text(encoding="utf-8")
            text = text.replace("path: data/", f"path: {demo_dir}/data/")
            (config / source.name).write_text(text, encoding="utf-8")
    (config / "server.yaml").write_text(
        "server:\n  audit: {file: audit/audit.jsonl, max_bytes: 4096, backups: 2}\n",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def service(audit_dir: Path) -> Iterator[QueryService]:
    svc = QueryService.from_config(audit_dir)
    yield svc
    svc.close()


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "meshgate.audit"]


def test_allowed_denied_forbidden_syntax_and_login_lines_over_flight(
    service: QueryService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="meshgate.audit")
    with running_server(service) as server:
        uri = f"grpc://127.0.0.1:{server.port}"
        wrong = adbc_refusal("UNAUTHENTICATED", "invalid user name or password")
        with pytest.raises(adbc.Error, match=wrong), adbc.connect(
            uri, db_kwargs={"username": "analyst", "password": "wrong"}
        ) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        with adbc.connect(uri, db_kwargs={"username": "analyst", "password": "analyst"},
                          autocommit=True) as conn:  # fmt: skip
            with conn.cursor() as cursor:
                cursor.execute("SELECT id, ssn FROM hr.employees ORDER BY id LIMIT 3")
                assert len(cursor.fetchall()) == 3
            for bad, refusal in (
                ("SELECT * FROM finance.budgets",
                 adbc_refusal("NOT_FOUND", f"data product 'finance.budgets' {NOT_READABLE}")),
                ("DROP TABLE sales.orders",
                 adbc_refusal("INVALID_ARGUMENT", "DROP statements are not allowed")),
                ("SELEC 1", adbc_refusal("INVALID_ARGUMENT", "syntax error near 'SELEC'")),
            ):
                with conn.cursor() as cursor, pytest.raises(adbc.Error, match=refusal):
                    cursor.execute(bad)
    records = lines(caplog)
    assert all(set(r) == FIELDS for r in records)
    by_sql = {r["sql"]: r for r in records}
    login = next(r for r in records if r["outcome"] == "login_failed")
    assert login["user"] == "analyst"
    assert login["status"] == "UNAUTHENTICATED"
    assert "wrong" not in json.dumps(login)  # never the password
    ok = by_sql["SELECT id, ssn FROM hr.employees ORDER BY id LIMIT 3"]
    assert ok["outcome"] == "ok"
    assert ok["rows"] == 3
    assert ok["roles"] == ["analyst", "pii_reader"]
    assert ok["policies"] == ["hr.employees/analyst"]
    assert ok["products"] == ["hr.employees"]
    assert ok["client"]
    assert "127.0.0.1" in ok["client"]
    assert ok["sources"]
    assert all(s["source"] == "hr_db" for s in ok["sources"])
    assert ok["bytes"] > 0
    # Rows and bytes per source: the analyst's filter lets through the EU rows only.
    assert sum(s["rows"] for s in ok["sources"]) >= 3
    assert all(s["bytes"] > 0 for s in ok["sources"] if s["rows"])
    for sql, status in (("SELECT * FROM finance.budgets", "NOT_FOUND"),
                        ("DROP TABLE sales.orders", "INVALID_ARGUMENT"),
                        ("SELEC 1", "INVALID_ARGUMENT")):  # fmt: skip
        assert by_sql[sql]["outcome"] == "denied"
        assert by_sql[sql]["status"] == status
        assert by_sql[sql]["sources"] == []
        assert by_sql[sql]["client"]
        assert "127.0.0.1" in by_sql[sql]["client"]


def test_the_audit_file_rotates(service: QueryService, audit_dir: Path) -> None:
    analyst = service.principal("analyst")
    for number in range(40):
        service.query(f"SELECT {number} AS n, count(*) FROM sales.orders", analyst)
    files = sorted((audit_dir / "audit").iterdir())
    assert [f.name for f in files] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    for file in files:
        assert all(json.loads(line)["user"] == "analyst" for line in file.read_text().splitlines())


def test_query_history_shows_the_callers_own_queries(service: QueryService) -> None:
    analyst, admin, partner = (service.principal(u) for u in ("analyst", "admin", "partner"))
    service.query("SELECT 'analyst was here' AS x", analyst)
    service.query("SELECT 'partner was here' AS x", partner)
    service.query("SELECT 'admin was here' AS x", admin)
    with pytest.raises(MeshgateError, match=f"'hr.employees' {NOT_READABLE}") as denied:
        service.prepare("SELECT * FROM hr.employees", partner)  # denied: partner has no hr
    assert denied.value.status is Status.NOT_FOUND
    history = "SELECT user, sql, outcome, source_sql FROM meshgate.query_history"
    mine = service.query(history, analyst).to_pylist()
    assert {r["user"] for r in mine} == {"analyst"}
    assert any(r["sql"] == "SELECT 'analyst was here' AS x" for r in mine)
    assert all(r["source_sql"] is None for r in mine)  # physical SQL is for admins
    theirs = service.query(history, partner).to_pylist()
    assert {r["user"] for r in theirs} == {"partner"}
    assert {r["outcome"] for r in theirs} >= {"ok", "denied"}
    everyone = service.query(history, admin).to_pylist()
    assert {"analyst", "partner", "admin"} <= {r["user"] for r in everyone}
    again = service.query(history, analyst).to_pylist()
    assert len(again) > len(mine)  # a live view, never a cached snapshot


def test_a_source_failing_under_a_running_query_is_an_error_with_the_callers_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real fault that is no MeshgateError: after planning, the Parquet file behind
    finance.exchange_rates is rewritten with text where the plan expects decimals, so the
    source's batches fail their cast (ArrowInvalid). The caller, the audit record and the
    server log name the same error id."""
    demo = prepare_demo(tmp_path / "demo")
    rates = demo / "data" / "finance" / "exchange_rates.parquet"
    sql = "SELECT rate_date, currency, rate_to_usd FROM finance.exchange_rates"
    service = QueryService.from_config(demo)
    try:
        with running_server(service) as server:
            session = Session(f"grpc://127.0.0.1:{server.port}", "admin", "admin")
            try:
                info = session.info(pb.CommandStatementQuery(query=sql))
                stored = pq.read_table(rates)
                column = stored.schema.get_field_index("usd_rate")
                text = pa.array(["not a number"] * stored.num_rows)
                pq.write_table(stored.set_column(column, "usd_rate", text), rates)
                with caplog.at_level(logging.ERROR), pytest.raises(
                    flight.FlightUnavailableError,
                    match=r"source 'finance_lake', which this query reads, is unavailable right "
                          r"now \(error id",
                ) as raised:
                    session.client.do_get(info.endpoints[0].ticket, session.options).read_all()
            finally:
                session.close()
        quoted = re.search(r"error id ([0-9a-f]+)", str(raised.value))
        assert quoted is not None
        error_id = quoted.group(1)
        [record] = [r for r in service.audit.records() if r.sql == sql]
        assert (record.outcome, record.status) == ("error", "UNAVAILABLE")
        assert record.error_id == error_id
        assert record.rows == 0
        logged = [r for r in caplog.records if error_id in r.getMessage()]
        assert any(
            r.exc_info is not None and r.exc_info[0] is pa.ArrowInvalid for r in logged
        ), "the server log keeps the source's own exception under the same id"
    finally:
        service.close()


def test_files_the_merge_reads_itself_are_named_in_the_audit(
    service: QueryService, caplog: pytest.LogCaptureFixture
) -> None:
    """A merge scan runs no fragment, but the operator must still see which source it read."""
    admin = service.principal("admin")
    sql = ("SELECT d.name, sum(b.amount) AS total FROM finance.budgets b "
           "JOIN hr.departments d ON d.id = b.department_id GROUP BY 1")  # fmt: skip
    steps = [r["step"] for r in service.explain(sql, admin).to_pylist()]
    assert "merge scan 1" in steps  # the premise: budgets is read by the merge itself
    with caplog.at_level(logging.INFO, logger="meshgate.audit"):
        service.query(sql, admin)
    (record,) = [r for r in lines(caplog) if r["sql"] == sql]
    by_source = {s["source"]: s for s in record["sources"]}
    assert set(by_source) == {"hr_db", "finance_lake"}
    merge_read = by_source["finance_lake"]
    assert merge_read["read_by"] == "merge"
    assert "budgets.parquet" in merge_read["sql"]
    assert merge_read["rows"] is None  # DuckDB does not count them: no made-up figure
    assert by_source["hr_db"]["read_by"] == "source"
    assert by_source["hr_db"]["rows"] > 0
    history = service.query("SELECT sql, source_sql FROM meshgate.query_history", admin)
    (row,) = [r for r in history.to_pylist() if r["sql"] == sql]
    assert any("budgets.parquet" in s for s in row["source_sql"])
