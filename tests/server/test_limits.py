"""`server.limits` seen by real clients: each limit reached gives its code and a message naming
the limit and what to do; under it queries answer; the server keeps answering afterwards.

The mesh is tests/policy/mesh.py's plus generated tables: `hr.numbers` (in the DuckDB file)
and `sales.words` (Parquet), so a join of the two runs in the DuckDB merge. Arrow's Flight
server cannot send gRPC RESOURCE_EXHAUSTED (its transport has no such code): limits reached
arrive as UNAVAILABLE whose message starts "resource exhausted:" (server/errors.py).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import duckdb
import pyarrow as pa
import pytest
from pyarrow import flight

from meshgate.errors import AuthenticationFailed
from meshgate.server import MeshgateFlightServer, running_server
from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.policy import mesh
from tests.server.flightsql_clients import Session

NUMBERS = 200_000
WORDS = 1_000_000
BIG = "SELECT n, n * 2 AS twice FROM hr.numbers"
MERGE_HEAVY = (
    "SELECT count(*) AS groups, max(c) AS most FROM (SELECT w.word, count(*) AS c "
    "FROM sales.words w JOIN hr.numbers x ON w.n % 1000 = x.n GROUP BY w.word) AS g"
)

CROSS = "SELECT count(*) AS n FROM sales.words a JOIN sales.words b ON a.n % 7 = b.n % 7"
JOINED = "SELECT count(*) AS n FROM hr.numbers x JOIN sales.words w ON w.n = x.n"

PRODUCTS = """
  - domain: hr
    name: numbers
    table: {source: hr_db, table: numbers}
    columns:
      - {name: n, type: BIGINT}
  - domain: sales
    name: words
    table: {source: lake, table: words}
    columns:
      - {name: n, type: BIGINT}
      - {name: word, type: VARCHAR}
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/policy/mesh's config and data, with the generated tables, built once."""
    directory = tmp_path_factory.mktemp("limits")
    config = mesh.build(directory)
    data = directory / "data"
    with duckdb.connect(str(data / "hr.duckdb")) as connection:
        connection.execute(f"CREATE TABLE numbers AS SELECT range AS n FROM range({NUMBERS})")
        connection.execute(
            f"COPY (SELECT range AS n, 'word-' || range || '-' || md5(range::VARCHAR) AS word "
            f"FROM range({WORDS})) TO '{data / 'lake' / 'words.parquet'}' (FORMAT parquet)")
    text = (config / "mesh.yaml").read_text(encoding="utf-8")
    (config / "mesh.yaml").write_text(text + PRODUCTS, encoding="utf-8")
    return config


def configured(base: Path, directory: Path, server: str) -> Path:
    """A copy of the base config (its data stays shared) with a `server:` section."""
    directory.mkdir(parents=True, exist_ok=True)
    for file in base.glob("*.yaml"):
        (directory / file.name).write_text(file.read_text(encoding="utf-8"), encoding="utf-8")
    (directory / "server.yaml").write_text(f"server: {server}\n", encoding="utf-8")
    return directory


@contextmanager
def serving(base: Path, directory: Path, server: str) -> Iterator[MeshgateFlightServer]:
    service = QueryService.from_config(configured(base, directory / "config", server))
    try:
        with running_server(service) as running:
            yield running
    finally:
        service.close()


def uri(server: MeshgateFlightServer) -> str:
    return f"grpc://127.0.0.1:{server.port}"


def adbc_connect(server: MeshgateFlightServer, user: str = "analyst") -> adbc.Connection:
    return adbc.connect(uri(server), db_kwargs={"username": user, "password": user},
                        autocommit=True)  # fmt: skip


def fetch(cursor: adbc.Cursor, sql: str) -> pa.Table:
    cursor.execute(sql)
    return cursor.fetch_arrow_table()


def refused(call: Callable[[], Any]) -> tuple[str, str, float]:
    """The ADBC status name and message of the error `call` raises, and how long it took."""
    started = time.monotonic()
    with pytest.raises(adbc.Error) as raised:
        call()
    return raised.value.status_code.name, str(raised.value), time.monotonic() - started


def answers(cursor: adbc.Cursor) -> bool:
    return bool(fetch(cursor, "SELECT count(*) AS n FROM hr.depts").to_pylist() == [{"n": 2}])


# ---- rows and bytes returned ----------------------------------------------------------------


def test_a_result_past_max_result_rows_ends_with_an_error(base: Path, tmp_path: Path) -> None:
    with serving(base, tmp_path, "{limits: {max_result_rows: 1000}}") as server, \
            adbc_connect(server) as conn, conn.cursor() as cursor:  # fmt: skip
        code, message, _ = refused(lambda: fetch(cursor, BIG))
        assert code == "IO"  # gRPC UNAVAILABLE, the nearest code Arrow's server can send
        assert "resource exhausted: the result has more than 1,000 rows" in message
        assert "server.limits.max_result_rows" in message
        assert "add a LIMIT" in message
        assert fetch(cursor, f"{BIG} ORDER BY n LIMIT 1000").num_rows == 1000  # at the limit
        assert answers(cursor)


def test_a_result_past_max_result_bytes_ends_with_an_error(base: Path, tmp_path: Path) -> None:
    with serving(base, tmp_path, "{limits: {max_result_bytes: 100000}}") as server, \
            adbc_connect(server) as conn, conn.cursor() as cursor:  # fmt: skip
        _, message, _ = refused(lambda: fetch(cursor, BIG))
        assert "resource exhausted: the result is larger than 100,000 bytes" in message
        assert "server.limits.max_result_bytes" in message
        assert fetch(cursor, "SELECT n FROM hr.numbers ORDER BY n LIMIT 100").num_rows == 100


def test_pyarrow_flight_sees_the_row_limit_mid_stream(base: Path, tmp_path: Path) -> None:
    with serving(base, tmp_path, "{limits: {max_result_rows: 1000}}") as server:
        session = Session(uri(server), "analyst", "analyst")
        try:
            with pytest.raises(flight.FlightUnavailableError, match="resource exhausted: the "
                               "result has more than 1,000 rows"):  # fmt: skip
                session.fetch(pb.CommandStatementQuery(query=BIG))
        finally:
            session.close()


# ---- session overrides ----------------------------------------------------------------------


def test_a_session_may_lower_the_row_limit_never_raise_it(base: Path, tmp_path: Path) -> None:
    option = "adbc.flight.sql.session.option."
    with serving(base, tmp_path, "{limits: {max_result_rows: 1000}}") as server, \
            adbc_connect(server) as conn, conn.cursor() as cursor:  # fmt: skip
        conn.adbc_connection.set_options(**{option + "max_result_rows": "10"})
        _, message, _ = refused(lambda: fetch(cursor, "SELECT n FROM hr.numbers LIMIT 11"))
        assert "more than 10 rows" in message
        assert "max_result_rows" in message
        assert fetch(cursor, "SELECT n FROM hr.numbers LIMIT 10").num_rows == 10
        code, _, _ = refused(lambda: conn.adbc_connection.set_options(
            **{option + "max_result_rows": "5000"}))  # above the configured 1000
        assert code == "INVALID_ARGUMENT"
        _, message, _ = refused(lambda: fetch(cursor, "SELECT n FROM hr.numbers LIMIT 12"))
        assert "more than 10 rows" in message  # the refused raise changed nothing


def test_a_session_query_timeout_ends_a_long_merge(base: Path, tmp_path: Path) -> None:
    with serving(base, tmp_path, "{}") as server:
        session = Session(uri(server), "analyst", "analyst")
        try:
            request = flight_pb2.SetSessionOptionsRequest()
            request.session_options["query_timeout_seconds"].double_value = 0.5
            [body] = session.action("SetSessionOptions", request.SerializeToString())
            assert not flight_pb2.SetSessionOptionsResult.FromString(body).errors
            started = time.monotonic()
            with pytest.raises(flight.FlightTimedOutError, match="ran past its deadline"):
                session.fetch(pb.CommandStatementQuery(query=CROSS))
            assert time.monotonic() - started < 20
        finally:
            session.close()


# ---- concurrency ----------------------------------------------------------------------------


def open_stream(session: Session, sql: str) -> flight.FlightStreamReader:
    """A started DoGet the client does not read: its query runs (and holds a slot)."""
    info = session.info(pb.CommandStatementQuery(query=sql))
    reader = session.client.do_get(info.endpoints[0].ticket, session.options)
    return reader


def test_queries_past_the_per_user_limit_queue_then_are_refused(base: Path, tmp_path: Path) -> None:
    limits = "{limits: {max_concurrent_queries_per_user: 2, queue_timeout_seconds: 1}}"
    with serving(base, tmp_path, limits) as server:
        sessions = [Session(uri(server), "analyst", "analyst") for _ in range(3)]
        other = Session(uri(server), "admin", "admin")
        try:
            held = [open_stream(s, CROSS) for s in sessions[:2]]  # hours of merge work
            assert server.service.slots.running("analyst") == 2
            started = time.monotonic()
            with pytest.raises(flight.FlightUnavailableError) as raised:
                sessions[2].fetch(pb.CommandStatementQuery(query="SELECT 1 AS one"))
            assert time.monotonic() - started >= 0.9  # it waited in the queue first
            assert "resource exhausted: you already run 2 queries at once" in str(raised.value)
            assert "max_concurrent_queries_per_user" in str(raised.value)
            # Another user is not held up by analyst's queries.
            assert other.fetch(pb.CommandStatementQuery(query="SELECT 1 AS one"))[1].num_rows
            # A queued query gets the slot a finished one frees within the queue timeout.
            result: list[pa.Table] = []
            waiting = threading.Thread(target=lambda: result.append(sessions[2].fetch(
                pb.CommandStatementQuery(query="SELECT 1 AS one"))[1]))
            waiting.start()
            time.sleep(0.2)
            held[0].cancel()  # its client closes it: the slot is free
            waiting.join(10)
            assert [t.num_rows for t in result] == [1]
            held[1].cancel()
        finally:
            for session in [*sessions, other]:
                session.close()
        assert wait_until(lambda: server.service.slots.running() == 0)


def test_the_total_limit_counts_every_user(base: Path, tmp_path: Path) -> None:
    limits = "{limits: {max_concurrent_queries: 2, queue_timeout_seconds: 0.5}}"
    with serving(base, tmp_path, limits) as server:
        analyst = Session(uri(server), "analyst", "analyst")
        admin = Session(uri(server), "admin", "admin")
        try:
            held = [open_stream(analyst, CROSS), open_stream(admin, CROSS)]
            with pytest.raises(flight.FlightUnavailableError) as raised:
                admin.fetch(pb.CommandStatementQuery(query="SELECT 1 AS one"))
            assert "the server already runs 2 queries at once" in str(raised.value)
            assert "server.limits.max_concurrent_queries)" in str(raised.value)
            for reader in held:
                reader.cancel()
        finally:
            analyst.close()
            admin.close()


def test_a_client_that_abandons_its_streams_releases_its_slots(base: Path, tmp_path: Path) -> None:
    limits = "{limits: {max_concurrent_queries_per_user: 1, queue_timeout_seconds: 5}}"
    with serving(base, tmp_path, limits) as server:
        leaving = Session(uri(server), "analyst", "analyst")
        open_stream(leaving, CROSS)
        assert server.service.slots.running("analyst") == 1
        leaving.close()  # the connection goes away with the stream unread
        # gRPC notices the gone client and the merge is interrupted; on a loaded CI machine
        # (-n 2, 2 cores) that once took over 10 s.
        assert wait_until(lambda: server.service.slots.running("analyst") == 0, seconds=30)
        with adbc_connect(server) as conn, conn.cursor() as cursor:
            assert answers(cursor)


def wait_until(condition: Callable[[], bool], seconds: float = 10) -> bool:
    give_up = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.05)
    return True


# ---- the merge's memory ---------------------------------------------------------------------


def test_a_merge_past_its_memory_limit_spills_under_the_state_directory_or_is_refused(
    base: Path, tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    server_yaml = f"{{state_directory: '{state}', limits: {{merge_memory_limit: 50MB}}}}"
    spilled: list[int] = []
    with serving(base, tmp_path, server_yaml) as server, \
            adbc_connect(server) as conn, conn.cursor() as cursor:  # fmt: skip
        assert fetch(cursor, JOINED).to_pylist() == [{"n": NUMBERS}]  # opens the merge
        engine = server.service.engine
        spill = engine.spill  # type: ignore[attr-defined]
        assert spill is not None
        assert spill.path.parent == state
        watching = threading.Event()

        def watch() -> None:
            while not watching.is_set():
                spilled.append(sum(1 for p in spill.path.iterdir() if p.suffix != ".lock"))
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        outcome: list[dict[str, Any]] | str
        try:
            outcome = fetch(cursor, MERGE_HEAVY).to_pylist()
        except adbc.Error as error:
            outcome = str(error)
        finally:
            watching.set()
            watcher.join(5)
        if isinstance(outcome, str):  # refused: named, and the server stays up
            assert "resource exhausted: the merge step of this query needed more memory" \
                in outcome
            assert "server.limits.merge_memory_limit" in outcome
        else:  # answered right: every word joins one number
            assert outcome == [{"groups": WORDS, "most": 1}]
            # A million groups do not fit in 50MB: DuckDB spilled into this process's folder.
            # (Refused, it may have spilled first or not: an operator that cannot spill fails
            # at once, as one did in a CI run after 0.17 s.)
            assert max(spilled) > 0
        assert answers(cursor)  # the server is still up and answering
    assert not list(state.glob("spill-*"))  # removed at shutdown


def test_spill_folders_of_dead_processes_are_removed_at_start(base: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    stale = state / "spill-999999-deadbeef"
    stale.mkdir(parents=True)
    (stale / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 1024)
    (stale / ".owner.lock").write_bytes(b"")
    with serving(base, tmp_path, f"{{state_directory: '{state}'}}") as server, \
            adbc_connect(server) as conn, conn.cursor() as cursor:  # fmt: skip
        assert answers(cursor)
        assert fetch(cursor, JOINED).to_pylist() == [{"n": NUMBERS}]
        assert not stale.exists()
        [own] = state.glob("spill-*")  # this server's, held while it runs
    assert not own.exists()


# ---- SQL text -------------------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT n FROM hr.numbers WHERE " + " OR ".join(f"n = {i}" for i in range(6000)),
     "a chain of OR joins more than 64 conditions"),  # ~100 KB; sqlglot's simplifier took minutes
    ("SELECT n FROM hr.numbers WHERE " + " AND ".join(f"n <> {i}" for i in range(100)),
     "a chain of AND joins more than 64 conditions"),
    ("SELECT n FROM hr.numbers WHERE " + " AND ".join(
        "(" + " AND ".join(f"n <> {j * 10 + i}" for i in range(10)) + ")" for j in range(10)),
     "a chain of AND joins 100 conditions"),  # parentheses do not hide a chain
    ("SELECT " + "(" * 5000 + "1" + ")" * 5000 + " AS x",
     "nests parentheses more than 150 levels deep"),
    ("SELECT " + " + ".join(["1"] * 600) + " AS x", "is nested more than 150 levels deep"),
    ("SELECT n FROM hr.numbers WHERE n IN (" + ", ".join(map(str, range(20_000))) + ")",
     "an IN list has more than 1,000 values"),
    ("SELECT 1 AS x -- " + "x" * 1_000_000, "more than this server accepts (1,000,000"),
], ids=["or-chain", "and-chain", "parenthesised-chains", "parentheses", "operator-chain",
        "in-list", "length"])
def test_oversized_sql_is_refused_fast_and_the_server_answers_on(
    base: Path, tmp_path: Path, sql: str, expected: str
) -> None:
    with serving(base, tmp_path, "{}") as server, \
            adbc_connect(server) as conn, conn.cursor() as cursor:  # fmt: skip
        code, message, _seconds = refused(lambda: fetch(cursor, sql))
        assert code == "INVALID_ARGUMENT"
        assert expected in message
        assert "server.limits." in message
        assert "Traceback" not in message
        assert "RecursionError" not in message
        assert answers(cursor)


def test_sql_under_the_limits_runs(base: Path, tmp_path: Path) -> None:
    with serving(base, tmp_path, "{}") as server, \
            adbc_connect(server) as conn, conn.cursor() as cursor:  # fmt: skip
        ors = " OR ".join(f"n = {i}" for i in range(40))
        assert fetch(cursor, f"SELECT n FROM hr.numbers WHERE {ors}").num_rows == 40
        values = ", ".join(map(str, range(1000)))
        assert fetch(cursor, f"SELECT n FROM hr.numbers WHERE n IN ({values})").num_rows == 1000
        assert fetch(cursor, "SELECT " + " + ".join(["1"] * 100) + " AS x").to_pylist() == \
            [{"x": 100}]
        ranges = " OR ".join(f"n BETWEEN {i} AND {i}" for i in range(0, 300, 10))
        assert fetch(cursor, f"SELECT n FROM hr.numbers WHERE {ranges}").num_rows == 30


# ---- sign-in back-off per client address ----------------------------------------------------


def test_an_address_failing_across_many_names_is_locked_out(base: Path, tmp_path: Path) -> None:
    """The back-off the PostgreSQL door uses (it knows the client's address): many names
    tried from one address lock that address out, the right password included; another
    address still signs in."""
    server_yaml = "{login: {max_failures: 100, max_failures_per_client: 5}}"
    service = QueryService.from_config(configured(base, tmp_path / "config", server_yaml))
    try:
        for attempt in range(5):
            with pytest.raises(AuthenticationFailed, match="invalid user name or password"):
                service.authenticate(f"guess{attempt}", "wrong", "10.0.0.9")
        with pytest.raises(AuthenticationFailed, match="too many failed logins"):
            service.authenticate("analyst", "analyst", "10.0.0.9")
        assert service.authenticate("analyst", "analyst", "10.0.0.10").name == "analyst"
    finally:
        service.close()


def test_an_unknown_user_costs_the_same_password_hash_as_a_known_one(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Structural, not timed: a refusal of an unknown name runs the same scrypt and the same
    PBKDF2, with the same cost parameters, as a wrong password of a real user, whichever kind
    of hash (scrypt or SCRAM verifier) that user has."""
    service = QueryService.from_config(configured(base, tmp_path / "config", "{}"))
    calls: list[tuple[str, int, int, int]] = []
    real_scrypt, real_pbkdf2 = hashlib.scrypt, hashlib.pbkdf2_hmac

    def scrypt(password: bytes, **options: Any) -> bytes:
        calls.append(("scrypt", options["n"], options["r"], options["p"]))
        return real_scrypt(password, **options)

    def pbkdf2(name: str, password: bytes, salt: bytes, rounds: int) -> bytes:
        calls.append(("pbkdf2", rounds, 0, 0))
        return real_pbkdf2(name, password, salt, rounds)

    monkeypatch.setattr(hashlib, "scrypt", scrypt)
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", pbkdf2)
    try:
        costs = []
        for user in ("analyst", "nobody-by-this-name"):
            calls.clear()
            with pytest.raises(AuthenticationFailed, match="invalid user name or password"):
                service.authenticate(user, "wrong", None)
            costs.append(sorted(calls))
        assert costs[0] == costs[1]
        assert [kind for kind, *_ in costs[0]] == ["pbkdf2", "scrypt"]
    finally:
        service.close()


def test_limit_rejections_are_counted_in_the_metrics(base: Path, tmp_path: Path) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    def rejections(server: MeshgateFlightServer) -> dict[str, float]:
        text = generate_latest(server.service.metrics.registry).decode()
        family = next(f for f in text_string_to_metric_families(text)
                      if f.name == "meshgate_limit_rejections")
        return {s.labels["limit"]: s.value for s in family.samples if s.name.endswith("_total")}

    with serving(base, tmp_path, "{limits: {max_result_rows: 1000, max_in_list: 3}}") as server, \
            adbc_connect(server) as conn, conn.cursor() as cursor:  # fmt: skip
        refused(lambda: fetch(cursor, BIG))
        refused(lambda: fetch(cursor, "SELECT n FROM hr.numbers WHERE n IN (1, 2, 3, 4, 5)"))
        assert rejections(server) == {"max_result_rows": 1.0, "sql_size": 1.0}
