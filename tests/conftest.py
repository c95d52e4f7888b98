"""Shared fixtures: the demo mesh in a temporary directory, and a real PostgreSQL.

PostgreSQL comes from, in order: the DSN in MESHGATE_TEST_PG_DSN, a testcontainers container
where Docker runs, or a failure that says how to provide one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_DSN_VARIABLE = "MESHGATE_TEST_PG_DSN"


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """A DSN of a PostgreSQL server the tests may create databases on."""
    dsn = os.environ.get(PG_DSN_VARIABLE)
    if dsn:
        yield dsn
        return
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
    except Exception:
        pytest.fail(
            f"these tests need PostgreSQL: set {PG_DSN_VARIABLE}="
            "postgresql://user@host:5432/postgres (a role that may CREATE DATABASE), "
            "or run a Docker engine so testcontainers can start one",
            pytrace=False,
        )
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16", driver=None) as container:
        yield container.get_connection_url()


@contextlib.contextmanager
def fresh_pg_database(server_dsn: str) -> Iterator[str]:
    """Create a uniquely named database, yield its DSN, drop it afterwards."""
    import adbc_driver_postgresql.dbapi as pg

    name = f"meshgate_test_{secrets.token_hex(6)}"
    with pg.connect(server_dsn, autocommit=True) as admin, admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(server_dsn, name)
    finally:
        with pg.connect(server_dsn, autocommit=True) as admin, admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database(pg_server_dsn: str) -> Iterator[str]:
    """A fresh, uniquely named database; dropped afterwards. Yields its DSN."""
    with fresh_pg_database(pg_server_dsn) as dsn:
        yield dsn


def _with_database(dsn: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of config/demo with its data generated (deterministically) in a temp dir."""
    from meshgate.demo.generate import prepare_demo

    return prepare_demo(tmp_path_factory.mktemp("demo"))
