"""Fuzz a real `meshgate serve` with hostile SQL and Flight SQL messages (issue 16, item 6).

    python -m tests.fuzz.run_fuzz --inputs 10000 [--seed N] [--deep]

Every input is one RPC. The run fails when the server process dies, when a call does not
return within its deadline (a hang), when a call answers UNKNOWN or an error carrying a Python
traceback, when INTERNAL comes without an error id that the server's log holds, when a handle
of another principal or an expired handle is accepted, or when the server's RSS grows by
50 MB or more from after warm-up to the end. It prints inputs per kind, a histogram of status
codes, the elapsed time and RSS start/end/peak, and the failing inputs (hypothesis minimises
the SQL it generated).
"""

from __future__ import annotations

import argparse
import base64
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from pyarrow import flight

from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as pb
from tests.fuzz import inputs
from tests.fuzz.served import HANDLE_TTL_SECONDS, ServedDemo

CALL_DEADLINE_SECONDS = 10.0
OVERSIZED_DEADLINE_SECONDS = 30.0
RSS_GROWTH_LIMIT = 50 * 1024 * 1024
DEFAULT_MAX_DEPTH = 60  # nesting the code handles today; --deep goes far past it
DEEP_MAX_DEPTH = 3000
# Copies of a span a mutation makes, and repeats of a long soup: more (with --deep) meets
# planning that no deadline bounds yet (30 self-joins, 69 KB soups take minutes).
DEFAULT_MAX_COPIES, DEEP_MAX_COPIES = 3, 30
DEFAULT_MAX_REPEATS, DEEP_MAX_REPEATS = 200, 2000
MAX_BATCHES_READ = 20

# Share of the budget per kind; the rest of the budget goes to generated SQL.
SHARES = {
    "sql_mutated": 0.25,
    "command_payload": 0.15,
    "action_payload": 0.15,
    "ticket": 0.06,
    "handle_foreign": 0.04,
    "handle_expired": 0.02,
    "rpc_and_auth": 0.03,
}
_ERROR_ID = re.compile(r"internal error ([0-9a-f]{12})")
_GRPC_CODE = re.compile(r"gRPC returned ([a-z ]+) error")
_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (flight.FlightInternalError, "INTERNAL"),
    (flight.FlightUnauthenticatedError, "UNAUTHENTICATED"),
    (flight.FlightUnauthorizedError, "PERMISSION_DENIED"),
    (flight.FlightUnavailableError, "UNAVAILABLE"),
    (flight.FlightTimedOutError, "DEADLINE_EXCEEDED"),
    (flight.FlightCancelledError, "CANCELLED"),
    (flight.FlightServerError, "UNKNOWN"),
    (pa.ArrowInvalid, "INVALID_ARGUMENT"),
    (pa.ArrowKeyError, "NOT_FOUND"),
    (pa.ArrowNotImplementedError, "UNIMPLEMENTED"),
)


def status_of(error: BaseException) -> str:
    """The gRPC status a pyarrow.flight exception stands for."""
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code
    found = _GRPC_CODE.search(str(error))
    if found:
        return found.group(1).upper().replace(" ", "_")
    return f"CLIENT:{type(error).__name__}"


@dataclass(frozen=True)
class Failure:
    kind: str
    what: str
    reason: str


class FuzzFailure(AssertionError):
    """Raised inside hypothesis so it minimises the SQL that caused it."""


@dataclass
class Outcome:
    status: str = "OK"
    message: str = ""
    seconds: float = 0.0
    value: object = None


@dataclass
class Report:
    kinds: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    internal_with_id: list[tuple[str, str]] = field(default_factory=list)
    minimised: list[str] = field(default_factory=list)
    seconds_per_kind: dict[str, float] = field(default_factory=dict)
    rss_after_phase: list[tuple[str, int]] = field(default_factory=list)
    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    seconds: float = 0.0

    @property
    def inputs(self) -> int:
        return sum(self.kinds.values())


class Principal:
    """A signed-in user: a FlightClient and the bearer token sent on every call."""

    def __init__(self, uri: str, user: str) -> None:
        self.uri, self.user = uri, user
        self.client = flight.connect(uri)
        self.sign_in()

    def sign_in(self) -> None:
        name, value = self.client.authenticate_basic_token(self.user, self.user)
        self.headers = [(name, value)]

    def options(self, deadline: float = CALL_DEADLINE_SECONDS,
                headers: list[tuple[bytes, bytes]] | None = None) -> flight.FlightCallOptions:
        return flight.FlightCallOptions(timeout=deadline,
                                        headers=self.headers if headers is None else headers)

    def close(self) -> None:
        self.client.close()


class Fuzzer:
    """Sends inputs one RPC at a time and judges each answer."""

    def __init__(self, served: ServedDemo, rng: random.Random, deep: bool) -> None:
        self.served = served
        self.rng = rng
        self.max_depth = DEEP_MAX_DEPTH if deep else DEFAULT_MAX_DEPTH
        self.max_copies = DEEP_MAX_COPIES if deep else DEFAULT_MAX_COPIES
        self.max_repeats = DEEP_MAX_REPEATS if deep else DEFAULT_MAX_REPEATS
        self.report = Report()
        self.admin = Principal(served.uri, "admin")
        self.analyst = Principal(served.uri, "analyst")
        self.partner = Principal(served.uri, "partner")
        self.disposable = Principal(served.uri, "partner")  # CloseSession may end it
        self.flight_info = b""  # the last real FlightInfo, for cancel actions

    def close(self) -> None:
        for principal in (self.admin, self.analyst, self.partner, self.disposable):
            principal.close()

    # ---- judging -----------------------------------------------------------------------------

    def send(self, kind: str, what: str, call: Callable[[float], object], *,
             deadline: float = CALL_DEADLINE_SECONDS,
             must_fail_with: tuple[str, ...] = ()) -> Outcome:
        """Run one RPC (`call(deadline)`), record its status, and judge it."""
        started = time.monotonic()
        outcome = Outcome()
        try:
            outcome.value = call(deadline)
        except (pa.ArrowException, flight.FlightError) as error:
            outcome.status, outcome.message = status_of(error), str(error)
        except Exception as error:  # the client library refused what we built: a finding
            outcome.status, outcome.message = f"CLIENT:{type(error).__name__}", str(error)
        outcome.seconds = time.monotonic() - started
        self.report.kinds[kind] += 1
        spent = self.report.seconds_per_kind
        spent[kind] = spent.get(kind, 0.0) + outcome.seconds
        self.report.codes[outcome.status] += 1
        reason = self._judge(outcome, deadline, must_fail_with)
        if reason is not None:
            self.report.failures.append(Failure(kind, _shorten(what), reason))
        if self.report.inputs % 50 == 0:
            self._sample_rss()
        if reason is not None and not self.served.alive():
            raise ServerDied(what)
        return outcome

    def _judge(self, outcome: Outcome, deadline: float,
               must_fail_with: tuple[str, ...]) -> str | None:
        if not self.served.alive():
            return f"the server process exited (code {self.served.process.returncode})"
        if outcome.seconds >= deadline * 0.95:
            return f"no answer within {deadline:.0f} s (hang): {outcome.status}"
        if outcome.status.startswith("CLIENT:"):
            return None  # refused before it left this process: the server saw nothing
        if "Traceback" in outcome.message or "File \"" in outcome.message:
            return f"{outcome.status} with a Python traceback: {_shorten(outcome.message)}"
        if outcome.status == "UNKNOWN":
            return f"UNKNOWN status (an unmapped server exception): {_shorten(outcome.message)}"
        if outcome.status == "INTERNAL":
            found = _ERROR_ID.search(outcome.message)
            if found is None:
                return f"INTERNAL without an error id: {_shorten(outcome.message)}"
            if f"internal error {found.group(1)}" not in self.served.log_text():
                return f"INTERNAL error id {found.group(1)} is not in the server log"
            self.report.internal_with_id.append((found.group(1), _shorten(outcome.message)))
        if must_fail_with and outcome.status not in must_fail_with:
            return f"expected {'/'.join(must_fail_with)}, got {outcome.status}"
        return None

    def _sample_rss(self) -> None:
        if self.served.alive():
            self.report.rss_peak = max(self.report.rss_peak, self.served.rss_bytes())

    # ---- RPC helpers -------------------------------------------------------------------------

    def run_sql(self, kind: str, sql: str | bytes, who: Principal | None = None) -> Outcome:
        """GetFlightInfo of a statement (raw bytes where not UTF-8), then DoGet of it."""
        who = who or self.admin
        if isinstance(sql, str):
            command = inputs.wrap(pb.CommandStatementQuery(query=sql))
        else:
            command = inputs.wrap_raw(inputs.type_url(pb.CommandStatementQuery),
                                      inputs.invalid_utf8_query(pb.CommandStatementQuery, sql))
        text = sql if isinstance(sql, str) else repr(sql)
        oversized = len(command) > 500_000
        deadline = OVERSIZED_DEADLINE_SECONDS if oversized else CALL_DEADLINE_SECONDS
        outcome = self.send(kind, text, lambda t: self.info_and_read(who, command, t),
                            deadline=deadline)
        return outcome

    def info_and_read(self, who: Principal, command: bytes, deadline: float) -> int:
        """GetFlightInfo, then DoGet of its first endpoint: the rows read (a capped number
        of batches; the rest is cancelled). One deadline covers both."""
        started = time.monotonic()
        info = who.client.get_flight_info(flight.FlightDescriptor.for_command(command),
                                          who.options(deadline))
        if isinstance(info, flight.FlightInfo):
            self.flight_info = info.serialize()
        if not info.endpoints:
            return 0
        left = max(0.1, deadline - (time.monotonic() - started))
        return read_some(who, info.endpoints[0].ticket, left)

    def prepare_and_run(self, kind: str, sql: str) -> None:
        """CreatePreparedStatement, GetFlightInfo + DoGet of it, ClosePreparedStatement."""
        body = inputs.wrap(pb.ActionCreatePreparedStatementRequest(query=sql))
        created = self.send(kind, f"prepare {sql}", lambda t: action(self.admin,
                            "CreatePreparedStatement", body, t))
        if created.status != "OK" or not isinstance(created.value, list) or not created.value:
            return
        result = pb.ActionCreatePreparedStatementResult()
        unpack_any(created.value[0], result)
        handle = result.prepared_statement_handle
        command = inputs.wrap(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle))
        self.send(kind, f"execute prepared {sql}",
                  lambda t: self.info_and_read(self.admin, command, t))
        close = inputs.wrap(pb.ActionClosePreparedStatementRequest(
            prepared_statement_handle=handle))
        self.send(kind, f"close prepared {sql}",
                  lambda t: action(self.admin, "ClosePreparedStatement", close, t))

    # ---- phases ------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Every real query once per principal, so caches and pools are at their size."""
        for who in (self.admin, self.analyst, self.partner):
            for sql in inputs.REAL_QUERIES:
                self.run_sql("warm_up", sql, who)
        self.report.rss_start = self.served.rss_bytes()
        self.report.rss_peak = self.report.rss_start

    def generated_sql(self, budget: int, seed: int) -> None:
        """Hypothesis-generated SQL; on a failure hypothesis shrinks it to a minimal one."""
        sent = [0]

        @hypothesis_seed(seed)
        @settings(max_examples=budget, deadline=None, database=None, print_blob=False,
                  suppress_health_check=list(HealthCheck),
                  phases=(Phase.generate, Phase.shrink))
        @given(sql=inputs.sql_statements(self.max_depth, self.max_repeats))
        def probe(sql: str) -> None:
            if not self.served.alive():
                raise FuzzFailure("the server process exited")
            before = len(self.report.failures)
            sent[0] += 1
            if sent[0] % 5 == 0:
                self.prepare_and_run("sql_generated", sql)
            else:
                self.run_sql("sql_generated", sql)
            if len(self.report.failures) > before:
                raise FuzzFailure(f"{self.report.failures[-1].reason}: {sql!r}")

        try:
            probe()
        except FuzzFailure as failure:
            self.report.minimised.append(str(failure))
        except BaseException as failures:  # several distinct failures, or a flaky one
            if isinstance(failures, ServerDied | KeyboardInterrupt):
                raise
            self.report.minimised.append(f"{type(failures).__name__}: {_shorten(str(failures))}")

    def mutated_sql(self, budget: int) -> None:
        for i in range(budget):
            data = inputs.mutate(self.rng.choice(inputs.REAL_QUERIES), self.rng, self.max_copies)
            try:
                sql: str | bytes = data.decode()
            except UnicodeDecodeError:
                sql = data
            who = (self.admin, self.analyst, self.partner)[i % 3]
            self.run_sql("sql_mutated", sql, who)

    def command_payloads(self, budget: int) -> None:
        """Random and broken commands to GetFlightInfo, GetSchema, DoGet and DoPut."""
        for _ in range(budget):
            what, data = inputs.command_payload(self.rng)
            rpc = self.rng.choices(("GetFlightInfo", "GetSchema", "DoGet", "DoPut", "path"),
                                   weights=(6, 2, 1, 1, 0.5))[0]
            call = self._command_call(rpc, data)
            self.send("command_payload", f"{rpc} {what}: {data[:80]!r}", call)

    def _command_call(self, rpc: str, data: bytes) -> Callable[[float], object]:
        who = self.rng.choice((self.admin, self.partner))
        descriptor = flight.FlightDescriptor.for_command(data)
        if rpc == "GetFlightInfo":
            return lambda t: self.info_and_read(who, data, t)
        if rpc == "GetSchema":
            return lambda t: who.client.get_schema(descriptor, who.options(t))
        if rpc == "DoGet":
            return lambda t: read_some(who, flight.Ticket(data), t)
        if rpc == "DoPut":
            return lambda t: put(who, descriptor, t)
        path = flight.FlightDescriptor.for_path(*[inputs.random_text(self.rng, 10)
                                                  for _ in range(self.rng.randint(1, 3))])
        return lambda t: who.client.get_flight_info(path, who.options(t))

    def action_payloads(self, budget: int) -> None:
        names = tuple(inputs.ACTIONS) + inputs.UNKNOWN_ACTIONS
        for _ in range(budget):
            name = self.rng.choice(names)
            what, body = inputs.action_body(name, self.rng, self.flight_info)
            who = self.disposable if name == "CloseSession" else \
                self.rng.choice((self.admin, self.analyst, self.partner))
            outcome = self.send("action_payload", f"DoAction {name[:40]!r} {what}: {body[:80]!r}",
                                partial(action, who, name, body))
            if name == "CloseSession" and outcome.status == "OK":
                who.sign_in()
            if name == "SetSessionOptions" and outcome.status == "OK":
                self._reset_session(who)

    def _reset_session(self, who: Principal) -> None:
        """Random session options may name a schema; start that principal afresh."""
        if who is not self.disposable:
            body = flight_pb2.CloseSessionRequest().SerializeToString()
            action(who, "CloseSession", body, CALL_DEADLINE_SECONDS)
            who.sign_in()

    def tickets(self, budget: int) -> None:
        """Random tickets, tickets shaped like meshgate's with unknown handles, and real
        tickets corrupted."""
        for _ in range(budget):
            who = self.rng.choice((self.admin, self.partner))
            choice = self.rng.randrange(4)
            if choice == 0:
                data = self.rng.randbytes(self.rng.randint(0, 100))
            elif choice == 1:
                handle = self.rng.choice((self.rng.randbytes(16).hex().encode(), b"",
                                          self.rng.randbytes(self.rng.randint(1, 300))))
                data = inputs.wrap(pb.TicketStatementQuery(statement_handle=handle))
            else:
                data = inputs.corrupt(self._real_ticket(), self.rng)
            self.send("ticket", f"DoGet {data[:80]!r}",
                      partial(read_some, who, flight.Ticket(data)))

    def _real_ticket(self) -> bytes:
        info = self.admin.client.get_flight_info(
            flight.FlightDescriptor.for_command(inputs.wrap(pb.CommandStatementQuery(
                query=self.rng.choice(inputs.REAL_QUERIES[:10])))), self.admin.options())
        ticket: bytes = info.endpoints[0].ticket.ticket
        return ticket

    def foreign_handles(self, budget: int) -> None:
        """Tickets, FlightInfos and prepared statements of one principal used by another:
        each must be NOT_FOUND (or not cancellable), and the owner's must still work."""
        pairs = ((self.admin, self.partner), (self.partner, self.analyst),
                 (self.analyst, self.admin))
        kind = "handle_foreign"
        while self.report.kinds[kind] < budget:
            owner, other = self.rng.choice(pairs)
            sql = "SELECT order_id, amount FROM sales.orders ORDER BY order_id LIMIT 50"
            info = owner.client.get_flight_info(flight.FlightDescriptor.for_command(
                inputs.wrap(pb.CommandStatementQuery(query=sql))), owner.options())
            ticket = info.endpoints[0].ticket
            self.send(kind, f"{other.user} DoGet {owner.user}'s ticket",
                      partial(read_some, other, ticket), must_fail_with=("NOT_FOUND",))
            cancel = flight_pb2.CancelFlightInfoRequest()
            cancel.info.ParseFromString(info.serialize())
            result = self.send(kind, f"{other.user} CancelFlightInfo of {owner.user}'s query",
                               partial(action, other, "CancelFlightInfo",
                                       cancel.SerializeToString()))
            if result.status == "OK" and isinstance(result.value, list):
                status = flight_pb2.CancelFlightInfoResult.FromString(result.value[0]).status
                if status != flight_pb2.CANCEL_STATUS_NOT_CANCELLABLE:
                    self.report.failures.append(Failure(
                        kind, f"{other.user} cancelled {owner.user}'s query",
                        f"CancelFlightInfo of another principal's query answered {status}"))
            self.send(kind, f"{owner.user} DoGet own ticket after others tried it",
                      partial(read_some, owner, ticket), must_fail_with=("OK",))
            self._foreign_prepared(kind, owner, other)

    def _foreign_prepared(self, kind: str, owner: Principal, other: Principal) -> None:
        created = action(owner, "CreatePreparedStatement", inputs.wrap(
            pb.ActionCreatePreparedStatementRequest(
                query="SELECT order_id FROM sales.orders WHERE amount > ? LIMIT 5")),
            CALL_DEADLINE_SECONDS)
        result = pb.ActionCreatePreparedStatementResult()
        unpack_any(created[0], result)
        handle = result.prepared_statement_handle
        command = inputs.wrap(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle))
        descriptor = flight.FlightDescriptor.for_command(command)
        close = inputs.wrap(pb.ActionClosePreparedStatementRequest(
            prepared_statement_handle=handle))
        steal: dict[str, Callable[[float], object]] = {
            "GetFlightInfo": lambda t: other.client.get_flight_info(descriptor, other.options(t)),
            "GetSchema": lambda t: other.client.get_schema(descriptor, other.options(t)),
            "DoPut (bind)": lambda t: put(other, descriptor, t),
            "ClosePreparedStatement": lambda t: action(other, "ClosePreparedStatement", close,
                                                       t),
        }
        for rpc, call in steal.items():
            self.send(kind, f"{other.user} {rpc} of {owner.user}'s prepared statement", call,
                      must_fail_with=("NOT_FOUND",))
        self.send(kind, f"{owner.user} GetFlightInfo of own prepared statement",
                  lambda t: owner.client.get_flight_info(descriptor, owner.options(t)),
                  must_fail_with=("OK",))
        action(owner, "ClosePreparedStatement", close, CALL_DEADLINE_SECONDS)

    def expired_handles(self, budget: int) -> None:
        """Tickets and prepared statements left unused past their TTL: NOT_FOUND."""
        kind = "handle_expired"
        while self.report.kinds[kind] < budget:
            batch = max(1, min(10, (budget - self.report.kinds[kind]) // 3))
            tickets, prepared = [], []
            for i in range(batch):
                sql = f"SELECT order_id FROM sales.orders WHERE order_id = {i}"
                info = self.admin.client.get_flight_info(flight.FlightDescriptor.for_command(
                    inputs.wrap(pb.CommandStatementQuery(query=sql))), self.admin.options())
                tickets.append(info.endpoints[0].ticket)
                created = action(self.admin, "CreatePreparedStatement", inputs.wrap(
                    pb.ActionCreatePreparedStatementRequest(query=sql)), CALL_DEADLINE_SECONDS)
                result = pb.ActionCreatePreparedStatementResult()
                unpack_any(created[0], result)
                prepared.append(result.prepared_statement_handle)
            time.sleep(HANDLE_TTL_SECONDS + 1.0)
            for ticket in tickets:
                self.send(kind, "DoGet of an expired ticket",
                          partial(read_some, self.admin, ticket),
                          must_fail_with=("NOT_FOUND",))
            for handle in prepared:
                command = inputs.wrap(pb.CommandPreparedStatementQuery(
                    prepared_statement_handle=handle))
                self.send(kind, "GetFlightInfo of an expired prepared statement",
                          partial(info_with_authorization, self.admin, command, None),
                          must_fail_with=("NOT_FOUND",))
                close = inputs.wrap(pb.ActionClosePreparedStatementRequest(
                    prepared_statement_handle=handle))
                self.send(kind, "ClosePreparedStatement of an expired prepared statement",
                          partial(action, self.admin, "ClosePreparedStatement", close),
                          must_fail_with=("NOT_FOUND",))

    def rpc_and_auth(self, budget: int) -> None:
        """ListFlights, ListActions, DoExchange, and calls with forged credentials."""
        kind = "rpc_and_auth"
        for _ in range(budget):
            choice = self.rng.randrange(5)
            if choice == 0:
                criteria = self.rng.randbytes(self.rng.randint(0, 50))
                self.send(kind, f"ListFlights {criteria!r}",
                          partial(list_flights, self.admin, criteria))
            elif choice == 1:
                self.send(kind, "ListActions",
                          lambda t: list(self.partner.client.list_actions(
                              self.partner.options(t))))
            elif choice == 2:
                data = inputs.command_payload(self.rng)[1]
                self.send(kind, f"DoExchange {data[:60]!r}", partial(exchange, self.admin, data))
            else:
                header = self._forged_authorization()
                command = inputs.wrap(pb.CommandStatementQuery(query="SELECT 1"))
                self.send(kind, f"GetFlightInfo with authorization {header[:80]!r}",
                          partial(info_with_authorization, self.admin, command, header),
                          must_fail_with=("UNAUTHENTICATED",))

    def _forged_authorization(self) -> bytes:
        rng = self.rng
        user = inputs.random_text(rng, 12).replace(":", "")
        return rng.choice((
            b"Bearer " + rng.randbytes(16).hex().encode(),
            b"Bearer " + base64.b64encode(rng.randbytes(40)),
            b"Bearer a.b.c",
            b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
            b"Basic " + base64.b64encode(f"fuzz-{user}:{user}".encode()),
            b"Basic " + rng.randbytes(12).hex().encode(),
            b"Basic ",
            b"Digest " + rng.randbytes(8).hex().encode(),
            b"",
        ))

    def oversized(self, deep: bool) -> None:
        """Messages of megabytes: SQL, tickets, action bodies, descriptors. SQL of 8 MB only
        with `deep`: without the SQL length limit it takes seconds to parse and plan."""
        kind = "oversized"
        big = 8 * 1024 * 1024
        sql_size = big if deep else 1024 * 1024
        self.run_sql(kind, "SELECT 1 AS " + "x" * sql_size)
        self.run_sql(kind, "SELECT '" + "a" * sql_size + "'")
        self.run_sql(kind, "SELECT 1 -- " + "ab" * (sql_size // 2))
        if deep:
            self.run_sql(kind, "SELECT " + "1," * (big // 2) + "1")
        huge_ticket = inputs.wrap(pb.TicketStatementQuery(statement_handle=b"h" * big))
        self.send(kind, "DoGet of an 8 MB ticket",
                  lambda t: read_some(self.admin, flight.Ticket(huge_ticket), t),
                  deadline=OVERSIZED_DEADLINE_SECONDS)
        body = inputs.wrap(pb.ActionCreatePreparedStatementRequest(
            query="SELECT 'x' AS " + "y" * sql_size))
        self.send(kind, f"CreatePreparedStatement of {sql_size // 1024 // 1024} MB",
                  lambda t: action(self.admin, "CreatePreparedStatement", body, t),
                  deadline=OVERSIZED_DEADLINE_SECONDS)
        raw = self.rng.randbytes(big)
        self.send(kind, "GetFlightInfo of 8 MB random bytes",
                  lambda t: self.admin.client.get_flight_info(
                      flight.FlightDescriptor.for_command(raw), self.admin.options(t)),
                  deadline=OVERSIZED_DEADLINE_SECONDS)
        self.send(kind, "CancelFlightInfo of 8 MB random bytes",
                  lambda t: action(self.admin, "CancelFlightInfo", raw, t),
                  deadline=OVERSIZED_DEADLINE_SECONDS)

    def finish(self) -> None:
        self.report.rss_end = self.served.rss_bytes()
        self.report.rss_peak = max(self.report.rss_peak, self.report.rss_end)


class ServerDied(Exception):
    """The server process exited; nothing more can be sent."""


def read_some(who: Principal, ticket: flight.Ticket, deadline: float) -> int:
    """DoGet, reading at most MAX_BATCHES_READ batches; the rows read."""
    reader = who.client.do_get(ticket, who.options(deadline))
    rows = 0
    for _ in range(MAX_BATCHES_READ):
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            return rows
        rows += chunk.data.num_rows if chunk.data is not None else 0
    reader.cancel()
    return rows


def action(who: Principal, name: str, body: bytes, deadline: float) -> list[bytes]:
    results = who.client.do_action(flight.Action(name, body), who.options(deadline))
    return [result.body.to_pybytes() for result in results]


def put(who: Principal, descriptor: flight.FlightDescriptor, deadline: float) -> None:
    """DoPut of one parameter row, as a client binding a prepared statement does."""
    table = pa.table({"0": pa.array(["1"])})
    writer, reader = who.client.do_put(descriptor, table.schema, who.options(deadline))
    with writer:
        writer.write_table(table)
        writer.done_writing()
        reader.read()


def list_flights(who: Principal, criteria: bytes, deadline: float) -> list[flight.FlightInfo]:
    return list(who.client.list_flights(criteria, who.options(deadline)))


def info_with_authorization(who: Principal, command: bytes, authorization: bytes | None,
                            deadline: float) -> flight.FlightInfo:
    """GetFlightInfo of `command`, sent with `authorization` instead of `who`'s bearer token
    unless it is None."""
    headers = None if authorization is None else [(b"authorization", authorization)]
    return who.client.get_flight_info(flight.FlightDescriptor.for_command(command),
                                      who.options(deadline, headers))


def exchange(who: Principal, data: bytes, deadline: float) -> None:
    writer, reader = who.client.do_exchange(flight.FlightDescriptor.for_command(data),
                                            who.options(deadline))
    with writer:
        reader.read_all()


def unpack_any(data: bytes, message: pb.ActionCreatePreparedStatementResult) -> None:
    from google.protobuf import any_pb2

    if not any_pb2.Any.FromString(data).Unpack(message):
        raise AssertionError("CreatePreparedStatement answered something else")


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def budgets(total: int) -> dict[str, int]:
    shares = {kind: max(1, round(total * share)) for kind, share in SHARES.items()}
    shares["sql_generated"] = max(1, total - sum(shares.values()))
    return shares


@contextmanager
def fuzzing(directory: Path, seed: int, deep: bool) -> Iterator[Fuzzer]:
    with ServedDemo(directory) as served:
        fuzzer = Fuzzer(served, random.Random(seed), deep)
        try:
            yield fuzzer
        finally:
            fuzzer.close()


def run(total: int, seed: int, deep: bool, directory: Path) -> Report:
    """The whole fuzz run against a fresh server in `directory`."""
    shares = budgets(total)
    started = time.monotonic()
    with fuzzing(directory, seed, deep) as fuzzer:
        fuzzer.warm_up()
        fuzzer.report.kinds.clear()
        fuzzer.report.codes.clear()
        fuzzer.report.seconds_per_kind.clear()
        phases: dict[str, Callable[[], None]] = {
            "oversized": lambda: fuzzer.oversized(deep),
            "sql_generated": lambda: fuzzer.generated_sql(shares["sql_generated"], seed),
            "sql_mutated": lambda: fuzzer.mutated_sql(shares["sql_mutated"]),
            "command_payload": lambda: fuzzer.command_payloads(shares["command_payload"]),
            "action_payload": lambda: fuzzer.action_payloads(shares["action_payload"]),
            "ticket": lambda: fuzzer.tickets(shares["ticket"]),
            "handle_foreign": lambda: fuzzer.foreign_handles(shares["handle_foreign"]),
            "handle_expired": lambda: fuzzer.expired_handles(shares["handle_expired"]),
            "rpc_and_auth": lambda: fuzzer.rpc_and_auth(shares["rpc_and_auth"]),
        }
        try:
            for name, phase in phases.items():
                phase()
                fuzzer.report.rss_after_phase.append((name, fuzzer.served.rss_bytes()))
        except ServerDied:
            pass
        report = fuzzer.report
        if fuzzer.served.alive():
            fuzzer.finish()
        report.seconds = time.monotonic() - started
        return report


def verdict(report: Report, total: int) -> list[str]:
    """What makes the run fail, beyond the per-input failures."""
    problems = [f"{f.kind}: {f.reason} <- {f.what}" for f in report.failures]
    if report.inputs < total:
        problems.append(f"only {report.inputs} of {total} inputs were sent")
    if report.rss_end and report.rss_end - report.rss_start >= RSS_GROWTH_LIMIT:
        problems.append(f"server RSS grew {_mb(report.rss_end - report.rss_start)} "
                        f"(limit {_mb(RSS_GROWTH_LIMIT)})")
    return problems


def _mb(value: int) -> str:
    return f"{value / 1024 / 1024:.1f} MB"


def summary(report: Report, problems: list[str]) -> str:
    lines = [f"meshgate fuzz: {report.inputs} inputs in {report.seconds:.1f} s "
             f"({report.inputs / max(report.seconds, 1e-9):.0f}/s)", "inputs per kind:"]
    lines += [f"  {kind:<16} {count:>6}  {report.seconds_per_kind.get(kind, 0.0):7.1f} s"
              for kind, count in sorted(report.kinds.items())]
    lines.append("status codes:")
    lines += [f"  {code:<20} {count:>6}" for code, count in report.codes.most_common()]
    lines.append(f"server RSS: start {_mb(report.rss_start)}, end {_mb(report.rss_end)}, "
                 f"peak {_mb(report.rss_peak)}, growth {_mb(report.rss_end - report.rss_start)}")
    lines.append("  after each phase: " + ", ".join(
        f"{name} {_mb(rss)}" for name, rss in report.rss_after_phase))
    if report.internal_with_id:
        lines.append(f"INTERNAL answers with a logged error id: {len(report.internal_with_id)} "
                     "(first five below)")
        lines += [f"  {error_id}: {message}" for error_id, message in
                  report.internal_with_id[:5]]
    if report.minimised:
        lines.append("hypothesis, minimised:")
        lines += [f"  {text}" for text in report.minimised]
    if problems:
        lines.append(f"FAILED: {len(problems)} problem(s) (first 40):")
        lines += [f"  {problem}" for problem in problems[:40]]
    else:
        lines.append("passed: no crash, no hang, no INTERNAL without a logged error id, "
                     f"RSS growth under {_mb(RSS_GROWTH_LIMIT)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run_fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs to send")
    parser.add_argument("--seed", type=int, default=16, help="seed of every generator")
    parser.add_argument("--deep", action="store_true",
                        help=f"nest generated SQL up to {DEEP_MAX_DEPTH} levels (default "
                             f"{DEFAULT_MAX_DEPTH}), repeat pieces of SQL up to "
                             f"{DEEP_MAX_REPEATS} times ({DEFAULT_MAX_REPEATS}) and spans "
                             f"{DEEP_MAX_COPIES} ({DEFAULT_MAX_COPIES}), send 8 MB SQL (1 MB): "
                             "for a server with SQL limits and a planning deadline")
    parser.add_argument("--workdir", type=Path, metavar="DIR",
                        help="keep the mesh copy and the server log (server.log) here")
    args = parser.parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        report = run(args.inputs, args.seed, args.deep, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="meshgate-fuzz-") as directory:
            report = run(args.inputs, args.seed, args.deep, Path(directory))
    problems = verdict(report, args.inputs)
    print(summary(report, problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
