"""SCRAM-SHA-256 sign-in on the PostgreSQL wire, with the real psql and psycopg (libpq).

A wrong password, an unknown user and a user whose hash has no SCRAM keys are refused with
the same words and SQLSTATE; the login back-off counts SCRAM failures as Flight SQL's; and
`server.postgres_auth: password` keeps the clear-text exchange for scrypt-only users.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from meshgate.principal import INVALID_CREDENTIALS, hash_password
from meshgate.server.postgres import PostgresFrontEnd
from meshgate.service import QueryService


@pytest.fixture(scope="module")
def scrypt_config(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo mesh plus `legacy`, a user whose hash is scrypt (no SCRAM verifier)."""
    config = shutil.copytree(demo_dir, tmp_path_factory.mktemp("scram") / "demo")
    access = config / "access.yaml"
    document = yaml.safe_load(access.read_text(encoding="utf-8"))
    document["users"].append({"name": "legacy", "password_hash": hash_password("legacy"),
                              "roles": ["partner"]})  # fmt: skip
    access.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def service(scrypt_config: Path) -> Iterator[QueryService]:
    service = QueryService.from_config(scrypt_config)
    yield service
    service.close()


@pytest.fixture(scope="module")
def scram_port(service: QueryService) -> Iterator[int]:
    front_end = PostgresFrontEnd(service).start()
    yield front_end.port
    front_end.shutdown()


def _connect(port: int, user: str, password: str,
             require_auth: str = "") -> psycopg.Connection[tuple[object, ...]]:  # fmt: skip
    options = f" require_auth={require_auth}" if require_auth else ""
    return psycopg.connect(f"host=127.0.0.1 port={port} dbname=meshgate user={user} "
                           f"password={password} connect_timeout=10{options}")


def test_psycopg_signs_in_with_scram_only(scram_port: int) -> None:
    """`require_auth=scram-sha-256` makes libpq refuse any other method the server asks for."""
    with _connect(scram_port, "analyst", "analyst", require_auth="scram-sha-256") as connection:
        # the analyst's row filter: EU rows only
        assert connection.execute("SELECT count(*) FROM hr.employees").fetchone() == (376,)


def test_psql_signs_in_with_scram_and_queries(scram_port: int) -> None:
    result = subprocess.run(
        ["psql", "-X", "-A", "-t", f"postgresql://partner:partner@127.0.0.1:{scram_port}/meshgate",
         "-c", "SELECT count(*) FROM sales.orders"],
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"}, capture_output=True, text=True,
        timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["20000"]


@pytest.mark.parametrize(("user", "password"), [
    ("analyst", "wrong"),       # a wrong password
    ("nobody", "nobody"),       # an unknown user
    ("legacy", "legacy"),       # the right password, but a hash SCRAM cannot check
])  # fmt: skip
def test_every_refusal_reads_the_same(scram_port: int, user: str, password: str) -> None:
    with pytest.raises(psycopg.OperationalError) as refused:
        _connect(scram_port, user, password)
    assert str(refused.value).endswith(f"failed: ERROR:  {INVALID_CREDENTIALS}")


def _server_first(port: int, user: str) -> bytes:
    """The salt and iteration count the server hands a client for `user`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        startup = (struct.pack("!i", 196608) + b"user\x00" + user.encode()
                   + b"\x00database\x00meshgate\x00\x00")  # fmt: skip
        connection.sendall(struct.pack("!i", len(startup) + 4) + startup)
        _, length, _ = struct.unpack("!cii", connection.recv(9))
        connection.recv(length - 8)
        first = b"n,,n=,r=nonce"
        initial = b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first)) + first
        connection.sendall(b"p" + struct.pack("!i", len(initial) + 4) + initial)
        _, length, method = struct.unpack("!cii", connection.recv(9))
        assert method == 11
        salt_and_rounds = connection.recv(length - 8).split(b",", 1)[1]
        return salt_and_rounds


def test_an_unknown_user_gets_a_steady_salt_that_tells_nothing(scram_port: int) -> None:
    """Asked twice, an unknown name gets the same salt (a fresh one each time would show
    the name does not exist), and the same iteration count as a real user."""
    unknown = _server_first(scram_port, "nobody")
    assert unknown == _server_first(scram_port, "nobody")
    assert unknown != _server_first(scram_port, "somebody")
    assert unknown.split(b",i=")[1] == _server_first(scram_port, "analyst").split(b",i=")[1]


def test_postgres_auth_password_admits_a_scrypt_user_in_clear_text(service: QueryService) -> None:
    front_end = PostgresFrontEnd(service, auth="password").start()
    try:
        with _connect(front_end.port, "legacy", "legacy", require_auth="password") as connection:
            assert connection.execute("SELECT count(*) FROM sales.orders").fetchone() == (20000,)
        with pytest.raises(psycopg.OperationalError, match="invalid user name or password"):
            _connect(front_end.port, "legacy", "wrong")
    finally:
        front_end.shutdown()
