"""One client process of the load run: random queries over ADBC, every result compared.

A client draws from the mix of `load_queries` with its own seed, and notes each query's
outcome (right, wrong, or the gRPC code of its error) with its start and end, in seconds since
the moment every client was ready; the run (`benchmarks/load.py`) judges them afterwards.
"""

from __future__ import annotations

import multiprocessing
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa

from benchmarks.load_queries import KINDS, Answer, Expected, QueryKind, draw

CLIENT_TIMEOUT_SECONDS = 30
_CODE_NAMES = {"Unavailable": "UNAVAILABLE", "DeadlineExceeded": "DEADLINE_EXCEEDED",
               "Canceled": "CANCELLED", "InvalidArgument": "INVALID_ARGUMENT",
               "NotFound": "NOT_FOUND", "Internal": "INTERNAL", "Unknown": "UNKNOWN",
               "ResourceExhausted": "RESOURCE_EXHAUSTED", "Unauthenticated": "UNAUTHENTICATED",
               "PermissionDenied": "PERMISSION_DENIED", "Aborted": "ABORTED",
               "FailedPrecondition": "FAILED_PRECONDITION", "OutOfRange": "OUT_OF_RANGE",
               "Unimplemented": "UNIMPLEMENTED", "AlreadyExists": "ALREADY_EXISTS",
               "DataLoss": "DATA_LOSS"}  # fmt: skip
# The Go driver's "(Unavailable; DoGet: ...)" after the server's message.
_GRPC_CODE = re.compile(r"\((" + "|".join(_CODE_NAMES) + r"); ")


@dataclass(frozen=True)
class Outcome:
    """One query as a client saw it: times are seconds since the run's start."""

    kind: str
    role: str
    started: float
    ended: float
    result: str  # "ok", "wrong", or the gRPC code of the error
    detail: str = ""

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True)
class ClientSpec:
    uri: str
    role: str
    seed: int
    seconds: float


def error_code(error: BaseException) -> str:
    """The gRPC status of a failed ADBC call, as the Flight SQL driver reports it."""
    found = _GRPC_CODE.search(str(error))
    if found is None:
        return f"UNKNOWN ({type(error).__name__})"
    return _CODE_NAMES.get(found.group(1), found.group(1).upper())


def answer_of(table: pa.Table) -> Answer:
    columns = [column.to_pylist() for column in table.columns]
    return Answer(tuple(table.column_names), tuple(zip(*columns, strict=True)))


def run_client(spec: ClientSpec, expected: Expected, ready: Barrier,
               results: multiprocessing.Queue[list[Outcome]]) -> None:  # fmt: skip
    """Query at random for `spec.seconds` after every client is ready; put what it saw."""
    rng = random.Random(spec.seed)
    weights = [kind.weight for kind in KINDS]
    timeout = str(CLIENT_TIMEOUT_SECONDS)
    outcomes: list[Outcome] = []
    with flightsql.connect(spec.uri, autocommit=True, db_kwargs={
        "username": spec.role, "password": spec.role,
        "adbc.flight.sql.rpc.timeout_seconds.query": timeout,
        "adbc.flight.sql.rpc.timeout_seconds.fetch": timeout,
    }) as conn:  # fmt: skip
        ready.wait()
        start = time.monotonic()
        while (now := time.monotonic() - start) < spec.seconds:
            kind = rng.choices(KINDS, weights)[0]
            sql, parameters, key = draw(kind, rng, expected)
            outcomes.append(query(conn, kind, spec.role, sql, parameters,
                                  expected.answer(kind, key), start, now))  # fmt: skip
    results.put(outcomes)


def query(conn: Any, kind: QueryKind, role: str, sql: str, parameters: Sequence[Any],
          expected: Answer, start: float, started: float) -> Outcome:  # fmt: skip
    """Run one query on `conn` and compare its result with `expected`."""
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, parameters or None)
            got = answer_of(cursor.fetch_arrow_table())
    except Exception as error:
        return Outcome(kind.name, role, started, time.monotonic() - start, error_code(error),
                       str(error)[:1000])  # fmt: skip
    ended = time.monotonic() - start
    if got != expected:
        detail = f"{sql} {list(parameters)}: {len(got.rows)} rows {got.rows[:2]}, expected " \
            f"{len(expected.rows)} {expected.rows[:2]}"  # fmt: skip
        return Outcome(kind.name, role, started, ended, "wrong", detail[:600])
    return Outcome(kind.name, role, started, ended, "ok")
