"""PostgreSQL's wire protocol: the real psql and psycopg 3 see what Flight SQL clients see.

One QueryService (the demo mesh) serves both doors; each check runs the same SQL through ADBC
over Flight SQL and through the PostgreSQL front end and compares what a user reads.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import adbc_driver_flightsql.dbapi as adbc
import psycopg
import pytest
import yaml
from pyarrow import flight

from meshgate.demo.generate import demo_config_dir
from meshgate.server.postgres import PostgresFrontEnd
from meshgate.service import QueryService

EMPLOYEES = "SELECT id, name, email, ssn, salary, region FROM hr.employees ORDER BY id"
ENDLESS = ("SELECT count(*) AS n FROM sales.orders a, sales.orders b, sales.orders c "
           "WHERE a.amount + b.amount + c.amount < 0")  # hours of work for any engine


@pytest.fixture(scope="module")
def postgres_port(service: QueryService) -> Iterator[int]:
    front_end = PostgresFrontEnd(service).start()
    yield front_end.port
    front_end.shutdown()


def _dsn(port: int, user: str, password: str | None = None) -> str:
    return f"postgresql://{user}:{password or user}@127.0.0.1:{port}/meshgate"


def _flight_rows(server: flight.FlightServerBase, user: str, sql: str,
                 parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:  # fmt: skip
    uri = f"grpc://127.0.0.1:{server.port}"
    with (adbc.connect(uri, db_kwargs={"username": user, "password": user}) as connection,
          connection.cursor() as cursor):
        cursor.execute(sql, parameters or None)
        return [tuple(row) for row in cursor.fetchall()]


def _psql(port: int, user: str, password: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-A", "-t", "-F", "|", _dsn(port, user, password), *command],
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"}, capture_output=True, text=True,
        timeout=60, check=False)  # fmt: skip


def test_psql_runs_a_query_and_reads_the_rows_flight_sql_returns(
    postgres_port: int, server: flight.FlightServerBase
) -> None:
    sql = "SELECT id, region FROM hr.employees ORDER BY id LIMIT 5"
    result = _psql(postgres_port, "analyst", "analyst", "-c", sql)

    assert result.returncode == 0, result.stderr
    expected = [f"{id_}|{region}" for id_, region in _flight_rows(server, "analyst", sql)]
    assert result.stdout.split() == expected
    assert len(expected) == 5


def test_psql_with_a_wrong_password_is_refused(postgres_port: int) -> None:
    result = _psql(postgres_port, "analyst", "not-the-password", "-c", "SELECT 1")

    assert result.returncode != 0
    assert "invalid user name or password" in result.stderr


def test_psycopg_with_a_wrong_password_cannot_connect(postgres_port: int) -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(_dsn(postgres_port, "analyst", "wrong"))
    assert "invalid user name or password" in str(caught.value)


def test_a_wrong_password_answers_sqlstate_28p01_on_the_wire(postgres_port: int) -> None:
    """libpq shows no SQLSTATE for a failed connection, so this reads the ErrorResponse to a
    SCRAM exchange whose proof is wrong (what a wrong password gives)."""
    with socket.create_connection(("127.0.0.1", postgres_port), timeout=10) as connection:
        startup = struct.pack("!i", 196608) + b"user\x00analyst\x00database\x00meshgate\x00\x00"
        connection.sendall(struct.pack("!i", len(startup) + 4) + startup)
        kind, length, method = struct.unpack("!cii", connection.recv(9))
        assert (kind, method) == (b"R", 10)  # AuthenticationSASL
        assert connection.recv(length - 8) == b"SCRAM-SHA-256\x00\x00"
        first = b"n,,n=,r=clientnonce"
        initial = b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first)) + first
        connection.sendall(b"p" + struct.pack("!i", len(initial) + 4) + initial)
        kind, length, method = struct.unpack("!cii", connection.recv(9))
        assert (kind, method) == (b"R", 11)  # AuthenticationSASLContinue: server-first
        nonce = connection.recv(length - 8).split(b",")[0]
        final = b"c=biws," + nonce + b",p=" + b"A" * 43 + b"="  # a proof of 32 wrong bytes
        connection.sendall(b"p" + struct.pack("!i", len(final) + 4) + final)
        reply = connection.recv(4096)
    assert reply[:1] == b"E"
    fields = dict((item[:1], item[1:].decode()) for item in reply[5:].split(b"\x00") if item)
    assert fields[b"C"] == "28P01"
    assert fields[b"S"] == "ERROR"
    assert fields[b"M"].startswith("invalid user name or password")


def test_psycopg_binds_int_string_and_date_parameters(
    postgres_port: int, server: flight.FlightServerBase
) -> None:
    sql = "SELECT id, region FROM hr.employees WHERE id > {} AND region = {} ORDER BY id"
    with psycopg.connect(_dsn(postgres_port, "admin")) as connection:
        rows = connection.execute(sql.format("%s", "%s"), (3, "US")).fetchall()
        hired = connection.execute(
            "SELECT count(*) FROM hr.employees WHERE hire_date >= CAST(%s AS DATE)",
            ("2020-01-01",)).fetchone()  # fmt: skip

    assert rows == _flight_rows(server, "admin", sql.format("?", "?"), (3, "US"))
    assert rows
    assert all(region == "US" and id_ > 3 for id_, region in rows)
    assert hired is not None
    assert [hired] == _flight_rows(
        server, "admin", "SELECT count(*) FROM hr.employees WHERE hire_date >= DATE '2020-01-01'")


def test_a_date_parameter_psycopg_sends_binary_is_read(
    postgres_port: int, server: flight.FlightServerBase
) -> None:
    sql = "SELECT count(*) FROM hr.employees WHERE hire_date > {}"
    with psycopg.connect(_dsn(postgres_port, "admin")) as connection:
        hired = connection.execute(sql.format("%s"), (dt.date(2020, 1, 1),)).fetchall()

    assert hired == _flight_rows(server, "admin", sql.format("DATE '2020-01-01'"))
    assert 0 < hired[0][0] < 1200


def test_an_unreadable_binary_parameter_is_refused_clearly_and_the_connection_goes_on(
    postgres_port: int,
) -> None:
    with psycopg.connect(_dsn(postgres_port, "admin")) as connection:
        with pytest.raises(psycopg.Error) as caught:
            connection.execute("SELECT count(*) FROM hr.employees WHERE salary > %b",
                               (Decimal("1000.50"),))  # fmt: skip
        connection.rollback()
        assert connection.execute("SELECT 1 AS one").fetchone() == (1,)
    assert caught.value.sqlstate == "22023"
    assert "send it in text format" in str(caught.value)


def test_an_analyst_sees_the_masked_rows_flight_sql_shows(
    postgres_port: int, server: flight.FlightServerBase
) -> None:
    with psycopg.connect(_dsn(postgres_port, "analyst")) as connection:
        rows = connection.execute(EMPLOYEES).fetchall()

    flight_rows = _flight_rows(server, "analyst", EMPLOYEES)
    assert [tuple(row) for row in rows] == flight_rows
    assert {region for *_, region in rows} == {"EU"}  # the row filter
    assert all(salary is None for *_, salary, _region in rows)  # the salary mask
    assert all(ssn is None or ssn.startswith("***-**-") for _, _, _, ssn, _, _ in rows)


def test_an_ungranted_product_does_not_exist_as_over_flight_sql(
    postgres_port: int, server: flight.FlightServerBase
) -> None:
    sql = "SELECT * FROM finance.budgets"
    with psycopg.connect(_dsn(postgres_port, "partner")) as connection, \
            pytest.raises(psycopg.Error) as caught:
        connection.execute(sql)

    assert caught.value.sqlstate == "42P01"
    with pytest.raises(adbc.Error) as over_flight:
        _flight_rows(server, "partner", sql)
    flight_message = str(over_flight.value)
    assert "NOT_FOUND" in flight_message
    assert caught.value.diag.message_primary is not None
    assert caught.value.diag.message_primary in flight_message


def test_a_write_is_refused_and_session_setup_statements_answer(postgres_port: int) -> None:
    with psycopg.connect(_dsn(postgres_port, "admin"), autocommit=True) as connection:
        connection.execute("SET application_name = 'report'")
        version = connection.execute("SHOW server_version").fetchone()
        with pytest.raises(psycopg.Error) as caught:
            connection.execute("DELETE FROM sales.orders")
        assert connection.execute("SELECT count(*) FROM sales.orders").fetchone() != (0,)

    assert version is not None
    assert version[0].startswith("15")
    assert caught.value.sqlstate == "25006"
    assert "read-only" in str(caught.value)


@pytest.mark.parametrize("user", ["analyst", "partner"])
def test_psql_dt_lists_exactly_the_products_the_caller_may_read(
    postgres_port: int, server: flight.FlightServerBase, user: str
) -> None:
    listed = _psql(postgres_port, user, user, "-c", r"\dt")
    only_hr = _psql(postgres_port, user, user, "-c", r"\dt hr.emp*")

    assert listed.returncode == 0, listed.stderr
    readable = _flight_rows(server, user, "SELECT table_schema, table_name FROM "
                            "information_schema.tables WHERE table_type = 'BASE TABLE' "
                            "ORDER BY 1, 2")  # fmt: skip
    assert listed.stdout.split() == [f"{s}|{n}|table|meshgate" for s, n in readable]
    if user == "analyst":
        assert ("hr", "employees") in readable
        assert only_hr.stdout.split() == ["hr|employees|table|meshgate"]
    else:
        assert {schema for schema, _ in readable} == {"sales"}
        assert 'Did not find any relation named "hr.emp*"' in only_hr.stderr


@pytest.mark.parametrize(("sql", "code", "text"), [
    ("SELEC 1", "42601", "syntax error near 'SELEC'"),
    ("SELECT nope FROM hr.employees", "42703", "'nope' could not be resolved"),
    ("SELECT * FROM finance.budgets", "42P01", "does not exist or you are not allowed"),
])  # fmt: skip
def test_errors_carry_the_sqlstate_of_their_kind(
    postgres_port: int, sql: str, code: str, text: str
) -> None:
    with psycopg.connect(_dsn(postgres_port, "analyst"), autocommit=True) as connection:
        with pytest.raises(psycopg.Error) as caught:
            connection.execute(sql)
        assert connection.execute("SELECT 1 AS still_serving").fetchone() == (1,)
    assert caught.value.sqlstate == code
    assert text in str(caught.value)


@pytest.mark.postgres
def test_meshgate_serve_opens_postgres_port_over_a_real_postgresql_source(
    pg_database: str, tmp_path: Path
) -> None:
    """`meshgate serve` with `server.postgres_port` over the README's CRM example (a real
    PostgreSQL source): psql and psycopg read it as user mo, and the audit line is written."""
    example = tmp_path / "crm"
    shutil.copytree(demo_config_dir().parent / "examples" / "crm-postgres", example)
    loaded = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg_database,
                             "-f", str(example / "crm.sql")],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    mesh = example / "mesh.yaml"
    document = yaml.safe_load(mesh.read_text(encoding="utf-8"))
    flight_port, postgres_port = _free_port(), _free_port()
    document["server"].update(port=flight_port, postgres_port=postgres_port)
    mesh.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    parts = urlsplit(pg_database)
    env = {**os.environ, "CRM_PG_USER": parts.username or "",
           "CRM_PG_PASSWORD": parts.password or "",
           "CRM_PG_HOST": parts.netloc.rpartition("@")[2],
           "CRM_PG_DATABASE": parts.path.lstrip("/")}  # fmt: skip
    process = subprocess.Popen([str(Path(sys.executable).with_name("meshgate")), "serve",
                                "--config", str(example)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        rows = _first_answer(postgres_port, process,
                             "SELECT * FROM customers.accounts_per_country ORDER BY country")
        with psycopg.connect(_dsn(postgres_port, "mo", "analyst")) as connection:
            germany = connection.execute(
                "SELECT country, accounts FROM customers.accounts_per_country WHERE country = %s",
                ("DE",)).fetchall()  # fmt: skip
            with pytest.raises(psycopg.Error) as hidden:
                connection.execute("SELECT email FROM customers.contacts")
        listed = _psql(postgres_port, "mo", "analyst", "-c", r"\dt")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)

    assert rows == ["DE|2", "US|1"]
    assert germany == [("DE", 2)]
    assert hidden.value.sqlstate == "42P01"
    assert listed.stdout.split() == ["customers|accounts|table|meshgate",
                                     "customers|accounts_per_country|table|meshgate"]
    audit = [json.loads(line.split("meshgate.audit: ", 1)[1])
             for line in stderr.splitlines() if "meshgate.audit: " in line]
    assert any(record["user"] == "mo" and record["outcome"] == "ok"
               and record["products"] == ["customers.accounts_per_country"] for record in audit)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _first_answer(port: int, process: subprocess.Popen[str], sql: str) -> list[str]:
    """The rows psql reads once the server answers (it takes a few seconds to start)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "meshgate serve exited early"
        result = _psql(port, "mo", "analyst", "-c", sql)
        if result.returncode == 0:
            return result.stdout.split()
        time.sleep(0.3)
    raise AssertionError(f"nothing answered on port {port} within 60 s")


def test_booleans_dates_and_decimals_read_as_over_flight_sql(
    postgres_port: int, server: flight.FlightServerBase
) -> None:
    sql = ("SELECT id, is_active, hire_date, salary FROM hr.employees "
           "WHERE is_active = %s ORDER BY id LIMIT 20")  # fmt: skip
    with psycopg.connect(_dsn(postgres_port, "admin")) as connection:
        inactive = connection.execute(sql, (False,)).fetchall()
        active = connection.execute(sql, (True,)).fetchall()

    assert inactive == _flight_rows(server, "admin", sql.replace("%s", "false"))
    assert active == _flight_rows(server, "admin", sql.replace("%s", "true"))
    assert inactive
    assert {row[1] for row in inactive} == {False}
    assert {row[1] for row in active} == {True}


def test_psql_d_describes_a_readable_product_and_not_a_hidden_one(
    postgres_port: int, server: flight.FlightServerBase
) -> None:
    described = _psql(postgres_port, "analyst", "analyst", "-c", r"\d hr.employees")
    unqualified = _psql(postgres_port, "analyst", "analyst", "-c", r"\d orders")
    hidden = _psql(postgres_port, "analyst", "analyst", "-c", r"\d finance.budgets")
    missing = _psql(postgres_port, "analyst", "analyst", "-c", r"\d finance.nothing_here")

    assert described.returncode == 0, described.stderr
    columns = _flight_rows(server, "analyst", "SELECT column_name FROM information_schema.columns"
                           " WHERE table_schema = 'hr' AND table_name = 'employees' "
                           "ORDER BY ordinal_position")  # fmt: skip
    lines = described.stdout.splitlines()
    assert [line.split("|")[0] for line in lines] == [name for (name,) in columns]
    assert "salary|numeric(10,2)|||" in lines
    assert "hire_date|date|||" in lines
    assert "ts|timestamp with time zone|||" in unqualified.stdout.splitlines()
    assert hidden.stderr.replace("budgets", "X") == missing.stderr.replace("nothing_here", "X")
    assert 'Did not find any relation named "finance.budgets"' in hidden.stderr


def test_repeated_wrong_passwords_lock_the_user_out_across_connections(
    demo_dir: Path, tmp_path: Path
) -> None:
    """The login back-off counts per user and host, so reconnecting does not reset it (the
    demo users sign in with SCRAM, the PostgreSQL wire's default); each refusal is audited."""
    config = shutil.copytree(demo_dir, tmp_path / "demo")
    mesh = config / "mesh.yaml"
    document = yaml.safe_load(mesh.read_text(encoding="utf-8"))
    document.setdefault("server", {})["login"] = {"max_failures": 2, "window_seconds": 60,
                                                  "lockout_seconds": 60}  # fmt: skip
    mesh.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    service = QueryService.from_config(config)
    front_end = PostgresFrontEnd(service).start()
    try:
        for _ in range(2):
            with pytest.raises(psycopg.OperationalError, match="invalid user name or password"):
                psycopg.connect(_dsn(front_end.port, "analyst", "wrong"))
        with pytest.raises(psycopg.OperationalError) as locked:
            psycopg.connect(_dsn(front_end.port, "analyst", "analyst"))
        with psycopg.connect(_dsn(front_end.port, "admin")) as other_user:
            assert other_user.execute("SELECT 1 AS one").fetchone() == (1,)
    finally:
        front_end.shutdown()
        service.close()
    assert "too many failed logins; retry in" in str(locked.value)
    assert [r.outcome for r in service.audit.records(None)
            if r.user == "analyst"] == ["login_failed"] * 3


def test_zoned_timestamps_keep_their_instant_and_zone(
    postgres_port: int, server: flight.FlightServerBase
) -> None:
    sql = "SELECT order_id, ts FROM sales.orders ORDER BY order_id LIMIT 5"
    with psycopg.connect(_dsn(postgres_port, "admin")) as connection:
        rows = connection.execute(sql).fetchall()
        binary = connection.cursor(binary=True).execute(sql).fetchall()

    assert rows == _flight_rows(server, "admin", sql)
    assert binary == rows
    assert all(ts.utcoffset() == dt.timedelta(0) for _, ts in rows)


def test_binary_results_a_column_cannot_have_are_refused_and_text_still_works(
    postgres_port: int,
) -> None:
    sql = "SELECT id, salary FROM hr.employees ORDER BY id LIMIT 3"
    with psycopg.connect(_dsn(postgres_port, "admin"), autocommit=True) as connection:
        with pytest.raises(psycopg.Error) as caught:
            connection.cursor(binary=True).execute(sql).fetchall()
        text = connection.execute(sql).fetchall()
    assert caught.value.sqlstate == "0A000"
    assert "'salary' cannot be sent in binary format yet" in str(caught.value)
    assert len(text) == 3
    assert all(isinstance(salary, Decimal) for _, salary in text)


def test_a_list_column_reads_as_an_array_and_is_refused_in_binary(postgres_port: int) -> None:
    """In PostgreSQL's text forms: psycopg reads the list as a list, the interval as a
    timedelta; neither has a binary form here, and asking for one is refused, not garbled."""
    sql = "SELECT [1, 2] AS pair, INTERVAL 1 DAY AS one_day"
    with psycopg.connect(_dsn(postgres_port, "admin"), autocommit=True) as connection:
        text = connection.execute(sql).fetchone()
        with pytest.raises(psycopg.Error) as caught:
            connection.cursor(binary=True).execute(sql).fetchall()
        assert connection.execute("SELECT 1 AS one").fetchone() == (1,)
    assert text == ([1, 2], dt.timedelta(days=1))
    assert caught.value.sqlstate == "0A000"


def test_a_cancel_request_stops_the_running_query_and_keeps_the_connection(
    postgres_port: int,
) -> None:
    """psql's Ctrl-C and psycopg's cancel() send a CancelRequest on a second connection with
    the key the first one was given: the query ends with 57014, the connection goes on."""
    with psycopg.connect(_dsn(postgres_port, "analyst")) as conn:
        timer = threading.Timer(1.0, conn.cancel_safe)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(ENDLESS)
        timer.join()
        assert time.monotonic() - started < 30
        conn.rollback()
        row = conn.execute("SELECT count(*) AS n FROM sales.orders").fetchone()
        assert row == (20_000,)


def test_a_cancel_request_with_a_wrong_key_cancels_nothing(postgres_port: int) -> None:
    with psycopg.connect(_dsn(postgres_port, "analyst")) as conn:
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                conn.execute(ENDLESS)
            except BaseException as exc:
                outcome.append(exc)

        query = threading.Thread(target=run)
        query.start()
        time.sleep(1.0)
        with socket.create_connection(("127.0.0.1", postgres_port), timeout=10) as probe:
            probe.sendall(struct.pack("!IIII", 16, 80877102, conn.info.backend_pid, 12345))
            assert probe.recv(1) == b""  # a cancel connection is closed without an answer
        query.join(2.0)
        assert query.is_alive()  # still running: the key was wrong
        conn.cancel_safe()
        query.join(30)
        assert isinstance(outcome[0], psycopg.errors.QueryCanceled)
