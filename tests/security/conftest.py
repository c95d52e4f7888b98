"""One server per source kind (session scope) and an analyst connection to each."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import duckdb
import pytest

from tests.conftest import fresh_pg_database
from tests.security.deployment import KINDS, Deployment, deployed
from tests.security.oracle import analyst_view


class AuditLines(logging.Handler):
    """The `meshgate.audit` lines the server writes: what each source was sent, per query."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))

    def of(self, sql: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("sql") == sql]

    def wait_for(self, sql: str, seconds: float = 5.0) -> dict[str, Any]:
        """The audit line of `sql`, written when the server closes the stream."""
        deadline = time.monotonic() + seconds
        while not self.of(sql):
            assert time.monotonic() < deadline, f"no audit line for {sql!r}"
            time.sleep(0.01)
        return self.of(sql)[-1]


@pytest.fixture(scope="session")
def audit() -> Iterator[AuditLines]:
    handler = AuditLines()
    logger = logging.getLogger("meshgate.audit")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.fixture(scope="session", params=KINDS)
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    kind: str = request.param

    @contextlib.contextmanager
    def pg_dsn() -> Iterator[str]:
        with fresh_pg_database(request.getfixturevalue("pg_server_dsn")) as dsn:
            yield dsn

    root: Path = tmp_path_factory.mktemp(f"security-{kind}")
    with deployed(kind, root, pg_dsn) as running:
        yield running


@pytest.fixture(scope="session")
def oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = analyst_view()
    yield connection
    connection.close()


def connect(deployment: Deployment, user: str) -> adbc.Connection:
    return adbc.connect(deployment.uri, db_kwargs={"username": user, "password": user},
                        autocommit=True)


@pytest.fixture(scope="session")
def analyst(deployment: Deployment) -> Iterator[adbc.Connection]:
    with connect(deployment, "analyst") as connection:
        yield connection


@pytest.fixture(scope="session", params=["clean", "hidden"])
def phase(request: pytest.FixtureRequest, deployment: Deployment) -> str:
    """Run each case without, then with, the hidden row in the source."""
    deployment.hide(request.param == "hidden")
    return str(request.param)
