"""A real `meshgate serve` process through SIGTERM and configuration reloads.

Each test starts its own server over the demo mesh plus a PostgreSQL source (tests/server/
served.py), and drives it as an operator does: signals and edits of its config directory;
what it asserts is what clients and the operator see.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pytest
from pyarrow import flight

from meshgate.server.lifecycle import Reloader
from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as sql
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database
from tests.server.flightsql_clients import Session, descriptor, pack, unpack
from tests.server.served import (
    SLOW_SECONDS,
    Served,
    copy_demo,
    create_warehouse,
    eventually,
    http_get,
    serve,
    write_config,
    write_warehouse,
)

ANALYST = {"username": "analyst", "password": "analyst"}
EXIT_MARGIN_SECONDS = 10  # startup of the interpreter aside, how late an exit may come


@pytest.fixture(scope="module")
def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        create_warehouse(dsn)
        yield dsn


def _config(tmp_path: Path, demo_dir: Path, dsn: str, server_yaml: str) -> Path:
    directory = tmp_path / "config"
    write_config(directory, demo_dir, dsn, server_yaml)
    return directory


def _active_at_postgres(dsn: str, text: str) -> int:
    with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                       "datname = current_database() AND pid <> pg_backend_pid() AND "
                       "query LIKE $1", (f"%{text}%",))  # fmt: skip
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _in_background(session: Session, query: str) -> tuple[threading.Thread, list[object]]:
    """Run `query` on a thread; the list gets its table or the exception it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(session.fetch(sql.CommandStatementQuery(query=query))[1])
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _exit_code_within(served: Served, seconds: float) -> int:
    started = time.monotonic()
    code = served.process.wait(timeout=seconds)
    assert time.monotonic() - started <= seconds
    return code


# --- SIGTERM ------------------------------------------------------------------------------
def test_sigterm_lets_a_running_query_finish_refuses_new_calls_and_exits_0(
    pg_dsn: str, demo_dir: Path, tmp_path: Path
) -> None:
    directory = _config(tmp_path, demo_dir, pg_dsn,
                        "server: {shutdown_grace_seconds: 20, http_port: 0}\n")  # fmt: skip
    with serve(directory, http_port=0) as served:
        session = Session(served.uri, "admin", "admin")
        thread, outcome = _in_background(session, "SELECT n FROM ops.slow")
        eventually(lambda: _active_at_postgres(pg_dsn, '"slow"') == 1)
        served.signal(signal.SIGTERM)
        served.wait_for_log("shutting down: refusing new calls; 1 running queries have 20s")
        with pytest.raises(flight.FlightError):
            Session(served.uri, "admin", "admin")  # a new client is turned away
        status, body = http_get(f"{served.http}/readyz")  # balancers stop sending
        assert status == 503
        assert json.loads(body)["shutting_down"] is True
        thread.join(SLOW_SECONDS + EXIT_MARGIN_SECONDS)
        [table] = outcome
        assert isinstance(table, pa.Table), table
        assert table.column("n").to_pylist() == [1]
        assert _exit_code_within(served, EXIT_MARGIN_SECONDS) == 0
        stderr = served.stderr()
        assert stderr.endswith("meshgate: stopped\n")
        assert "cancelled" not in stderr
        session.close()


def test_sigterm_cancels_a_query_still_running_after_the_grace_period(
    pg_dsn: str, demo_dir: Path, tmp_path: Path
) -> None:
    grace = 1
    directory = _config(tmp_path, demo_dir, pg_dsn,
                        f"server: {{shutdown_grace_seconds: {grace}}}\n")  # fmt: skip
    with serve(directory) as served:
        session = Session(served.uri, "admin", "admin")
        thread, outcome = _in_background(session, "SELECT n FROM ops.spin")
        eventually(lambda: _active_at_postgres(pg_dsn, '"spin"') == 1)
        served.signal(signal.SIGTERM)
        assert _exit_code_within(served, grace + EXIT_MARGIN_SECONDS) == 0
        thread.join(EXIT_MARGIN_SECONDS)
        [error] = outcome
        assert isinstance(error, flight.FlightUnavailableError), error
        assert "the server is shutting down and stopped this query; run it again" in str(error)
        assert "grace period over, cancelled 1 running queries" in served.stderr()
        eventually(lambda: _active_at_postgres(pg_dsn, '"spin"') == 0, timeout=2)
        session.close()


# --- reload -------------------------------------------------------------------------------
def _revoke_sales_from_analysts(directory: Path) -> None:
    access = directory / "access.yaml"
    text = access.read_text(encoding="utf-8")
    assert 'grants: ["sales.*", "hr.*"]' in text
    access.write_text(text.replace('grants: ["sales.*", "hr.*"]', 'grants: ["hr.*"]'),
                      encoding="utf-8")  # fmt: skip


def _set_schema(session: Session, schema: str) -> None:
    request = flight_pb2.SetSessionOptionsRequest()
    request.session_options["schema"].string_value = schema
    [body] = session.action("SetSessionOptions", request.SerializeToString())
    assert dict(flight_pb2.SetSessionOptionsResult.FromString(body).errors) == {}


def _count(session: Session, query: str) -> int:
    table = session.fetch(sql.CommandStatementQuery(query=query))[1]
    return int(table.column(0)[0].as_py())


def test_sighup_revokes_a_grant_for_open_connections_and_sessions(
    pg_dsn: str, demo_dir: Path, tmp_path: Path
) -> None:
    directory = _config(tmp_path, demo_dir, pg_dsn, "server: {reload_poll_seconds: null}\n")
    with serve(directory) as served, \
            flightsql.connect(served.uri, db_kwargs=ANALYST) as adbc, adbc.cursor() as cursor:
        session = Session(served.uri, "analyst", "analyst")
        _set_schema(session, "sales")
        cursor.execute("SELECT count(*) FROM sales.orders")
        assert cursor.fetchone() == (20000,)
        assert _count(session, "SELECT count(*) FROM orders") == 20000

        _revoke_sales_from_analysts(directory)
        served.signal(signal.SIGHUP)
        served.wait_for_log("configuration reloaded (SIGHUP): generation 1")

        with pytest.raises(flightsql.ProgrammingError, match="NOT_FOUND"):
            cursor.execute("SELECT count(*) FROM sales.orders")
        with pytest.raises(pa.ArrowKeyError, match=r"data product 'sales\.orders' does not exist"):
            _count(session, "SELECT count(*) FROM orders")  # same token, same session
        cursor.execute("SELECT count(*) FROM hr.employees")
        assert cursor.fetchone() is not None
        assert _count(session, "SELECT count(*) FROM hr.employees") > 0
        session.close()


def test_a_reload_that_changes_a_users_roles_applies_to_their_open_session(
    pg_dsn: str, demo_dir: Path, tmp_path: Path
) -> None:
    directory = _config(tmp_path, demo_dir, pg_dsn, "server: {reload_poll_seconds: null}\n")
    with serve(directory) as served:
        analyst = Session(served.uri, "analyst", "analyst")
        partner = Session(served.uri, "partner", "partner")
        assert _count(analyst, "SELECT count(*) FROM hr.departments") > 0
        assert _count(partner, "SELECT count(*) FROM sales.orders") == 20000
        access = directory / "access.yaml"
        text = access.read_text(encoding="utf-8")
        users = text.index("users:")
        text = text[:users] + text[users:].replace("roles: [analyst, pii_reader]",
                                                   "roles: [partner]", 1)  # fmt: skip
        text = text.replace("  - name: partner\n    password_hash:", "  - name: gone\n"
                            "    password_hash:", 1)  # fmt: skip
        access.write_text(text, encoding="utf-8")
        served.signal(signal.SIGHUP)
        served.wait_for_log("configuration reloaded (SIGHUP): generation 1")
        with pytest.raises(pa.ArrowKeyError, match=r"data product 'hr\.departments' does not"):
            _count(analyst, "SELECT count(*) FROM hr.departments")
        assert _count(analyst, "SELECT count(*) FROM sales.orders") == 20000
        with pytest.raises(flight.FlightUnauthenticatedError, match="authenticate again"):
            _count(partner, "SELECT count(*) FROM sales.orders")
        analyst.close()
        partner.close()


def test_a_bad_config_is_logged_with_its_problems_and_the_old_one_keeps_serving(
    pg_dsn: str, demo_dir: Path, tmp_path: Path
) -> None:
    directory = _config(tmp_path, demo_dir, pg_dsn, "server: {reload_poll_seconds: null}\n")
    with serve(directory) as served, \
            flightsql.connect(served.uri, db_kwargs=ANALYST) as adbc, adbc.cursor() as cursor:
        access = directory / "access.yaml"
        access.write_text(access.read_text(encoding="utf-8").replace(
            'grants: ["sales.*", "hr.*"]', 'grants: ["sales.*", "hr.*"]\n    colour: blue'),
            encoding="utf-8")  # fmt: skip
        _revoke_sales_from_analysts(directory)  # would revoke, were the file valid
        mark = len(served.stderr())
        served.signal(signal.SIGHUP)
        stderr = served.wait_for_log("configuration reload (SIGHUP) rejected", after=mark)
        assert "access.yaml" in stderr[mark:]
        assert "colour" in stderr[mark:]
        cursor.execute("SELECT count(*) FROM sales.orders")
        assert cursor.fetchone() == (20000,)


def test_a_changed_config_file_is_picked_up_without_a_signal(
    pg_dsn: str, demo_dir: Path, tmp_path: Path
) -> None:
    directory = _config(tmp_path, demo_dir, pg_dsn, "server: {reload_poll_seconds: 0.5}\n")
    with serve(directory) as served, \
            flightsql.connect(served.uri, db_kwargs=ANALYST) as adbc, adbc.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sales.orders")
        assert cursor.fetchone() == (20000,)
        _revoke_sales_from_analysts(directory)
        served.wait_for_log("configuration reloaded (config files changed)")
        with pytest.raises(flightsql.ProgrammingError, match="NOT_FOUND"):
            cursor.execute("SELECT count(*) FROM sales.orders")


def _prepare(session: Session, query: str) -> bytes:
    [body] = session.action("CreatePreparedStatement",
                            pack(sql.ActionCreatePreparedStatementRequest(query=query)))
    result = unpack(body, sql.ActionCreatePreparedStatementResult())
    handle: bytes = result.prepared_statement_handle
    return handle


def _execute(session: Session, handle: bytes) -> pa.Table:
    command = sql.CommandPreparedStatementQuery(prepared_statement_handle=handle)
    info = session.client.get_flight_info(descriptor(command), session.options)
    return session.client.do_get(info.endpoints[0].ticket, session.options).read_all()


def test_a_prepared_statement_is_replanned_after_a_reload_or_refused_clearly(
    pg_dsn: str, demo_dir: Path, tmp_path: Path
) -> None:
    directory = _config(tmp_path, demo_dir, pg_dsn, "server: {reload_poll_seconds: null}\n")
    with serve(directory) as served:
        session = Session(served.uri, "admin", "admin")
        handle = _prepare(session, "SELECT DISTINCT kind FROM ops.events")
        assert _execute(session, handle).column("kind").to_pylist() == ["click"]

        # The product now reads another table with the same columns: planned again.
        write_warehouse(directory, pg_dsn, "events_v2")
        served.signal(signal.SIGHUP)
        served.wait_for_log("configuration reloaded (SIGHUP): generation 1")
        assert _execute(session, handle).column("kind").to_pylist() == ["view"]

        # Its result gains a column the client was not told about: refused, with what to do.
        handle_all = _prepare(session, "SELECT * FROM ops.events")
        write_warehouse(directory, pg_dsn, "events_wide", columns="{name: extra, type: BIGINT}")
        served.signal(signal.SIGHUP)
        served.wait_for_log("configuration reloaded (SIGHUP): generation 2")
        with pytest.raises(pa.ArrowInvalid, match="columns changed; prepare the statement again"):
            _execute(session, handle_all)
        assert _execute(session, _prepare(session, "SELECT * FROM ops.events")).schema.names \
            == ["id", "kind", "extra"]
        session.close()


def test_a_reload_names_each_changed_setting_that_waits_for_a_restart(
    demo_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "config"
    copy_demo(demo_dir, directory, "server: {limits: {merge_memory_limit: 1GB}}\n")
    service = QueryService.from_config(directory)
    try:
        (directory / "server.yaml").write_text(
            "server: {limits: {merge_memory_limit: 2GB, max_result_rows: 5},"
            " ticket_ttl_seconds: 60}\n", encoding="utf-8")
        with caplog.at_level(logging.WARNING, logger="meshgate.server.lifecycle"):
            assert Reloader(service, directory).reload("test")
        waiting = sorted(r.getMessage().split("server.", 1)[1].split(" ", 1)[0]
                         for r in caplog.records if "applies at the next restart" in r.getMessage())
        # The row limit follows the reload; the merge's memory and the handle stores do not.
        assert waiting == ["limits.merge_memory_limit", "ticket_ttl_seconds"]
    finally:
        service.close()
