"""Flight SQL over TLS: ADBC and pyarrow.flight reach the demo mesh through `grpc+tls://`,
with and without client certificates; plaintext and untrusted clients are turned away; a bad
`server.tls` is a config problem, not a failed handshake at the first query."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import psycopg
import pytest
from pyarrow import flight

from meshgate.catalog.tls import TlsMaterial
from meshgate.server import running_server
from meshgate.server.postgres import PostgresFrontEnd
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.server.flightsql_clients import descriptor
from tests.server.pki import Issued, Pki, make_pki
from tests.test_cli import MESHGATE, free_port, meshgate

COUNT_ORDERS = "SELECT count(*) AS n FROM sales.orders"
TLS_OPTION = "adbc.flight.sql.client_option."


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def service(demo_dir: Path) -> Iterator[QueryService]:
    service = QueryService.from_config(demo_dir)
    yield service
    service.close()


@pytest.fixture(scope="module")
def tls_uri(service: QueryService, pki: Pki) -> Iterator[str]:
    material = TlsMaterial(pki.server.certificate, pki.server.key)
    with running_server(service, tls=material) as server:
        yield f"grpc+tls://127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def mtls_uri(service: QueryService, pki: Pki) -> Iterator[str]:
    material = TlsMaterial(pki.server.certificate, pki.server.key, client_ca=pki.ca.certificate)
    with running_server(service, tls=material) as server:
        yield f"grpc+tls://localhost:{server.port}"


def _adbc_count(uri: str, pki: Pki, client: Issued | None = None) -> int:
    options = {"username": "analyst", "password": "analyst",
               TLS_OPTION + "tls_root_certs": pki.ca.certificate.decode()}
    if client is not None:
        options[TLS_OPTION + "mtls_cert_chain"] = client.certificate.decode()
        options[TLS_OPTION + "mtls_private_key"] = client.key.decode()
    with flightsql.connect(uri, db_kwargs=options) as conn, conn.cursor() as cursor:
        cursor.execute(COUNT_ORDERS)
        row = cursor.fetchone()
        assert row is not None
        return int(row[0])


def _pyarrow_count(uri: str, pki: Pki, client: Issued | None = None) -> int:
    extra = {} if client is None else {"cert_chain": client.certificate,
                                       "private_key": client.key}
    connection = flight.FlightClient(uri, tls_root_certs=pki.ca.certificate, **extra)
    try:
        header = connection.authenticate_basic_token("analyst", "analyst")
        options = flight.FlightCallOptions(headers=[header], timeout=30)
        command = descriptor(pb.CommandStatementQuery(query=COUNT_ORDERS))
        info = connection.get_flight_info(command, options)
        table = connection.do_get(info.endpoints[0].ticket, options).read_all()
        return int(table.column(0)[0].as_py())
    finally:
        connection.close()


def test_adbc_and_pyarrow_query_over_tls(tls_uri: str, pki: Pki) -> None:
    assert _adbc_count(tls_uri, pki) == 20_000
    assert _pyarrow_count(tls_uri, pki) == 20_000


def test_a_plaintext_client_gets_no_answer_from_a_tls_port(tls_uri: str) -> None:
    plain = tls_uri.replace("grpc+tls://", "grpc://")
    with pytest.raises(flightsql.Error), flightsql.connect(
        plain, db_kwargs={"username": "analyst", "password": "analyst"}
    ) as conn, conn.cursor() as cursor:
        cursor.execute(COUNT_ORDERS)


def test_a_client_that_does_not_trust_the_certificate_refuses_it(tls_uri: str) -> None:
    connection = flight.FlightClient(tls_uri)  # the system's roots, not the test CA
    try:
        with pytest.raises(flight.FlightError):
            connection.authenticate_basic_token("analyst", "analyst",
                                                flight.FlightCallOptions(timeout=10))
    finally:
        connection.close()


def test_mutual_tls_admits_a_client_certificate_of_the_trusted_ca(mtls_uri: str,
                                                                   pki: Pki) -> None:
    assert _adbc_count(mtls_uri, pki, pki.client) == 20_000
    assert _pyarrow_count(mtls_uri, pki, pki.client) == 20_000


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
def test_mutual_tls_turns_away_clients_without_a_trusted_certificate(
    mtls_uri: str, pki: Pki, who: str
) -> None:
    client = None if who == "no certificate" else pki.stranger
    with pytest.raises(flight.FlightError):
        _pyarrow_count(mtls_uri, pki, client)


def _write(directory: Path, pki: Pki) -> None:
    (directory / "server.pem").write_bytes(pki.server.certificate)
    (directory / "server.key").write_bytes(pki.server.key)
    (directory / "client.key").write_bytes(pki.client.key)


def _copy_demo(demo_dir: Path, directory: Path, server_yaml: str) -> None:
    directory.mkdir()
    for source in demo_dir.glob("*.yaml"):
        text = source.read_text(encoding="utf-8").replace("path: data/", f"path: {demo_dir}/data/")
        (directory / source.name).write_text(text, encoding="utf-8")
    (directory / "server.yaml").write_text(server_yaml, encoding="utf-8")


def test_a_key_of_another_certificate_is_a_config_problem(demo_dir: Path, tmp_path: Path,
                                                          pki: Pki) -> None:
    config = tmp_path / "config"
    _copy_demo(demo_dir, config, "server:\n  tls: {cert_file: server.pem, key_file: client.key}\n")
    _write(config, pki)
    result = meshgate("check", "--config", str(config))
    assert result.returncode != 0
    assert "server.yaml" in result.stderr
    assert "tls.key_file" in result.stderr
    assert "does not belong to the certificate" in result.stderr


def test_a_missing_certificate_file_is_a_config_problem(demo_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    _copy_demo(demo_dir, config, "server:\n  tls: {cert_file: nowhere.pem, key_file: x.key}\n")
    result = meshgate("check", "--config", str(config))
    assert result.returncode != 0
    assert "cannot read 'nowhere.pem'" in result.stderr
    assert "relative to the config directory" in result.stderr


def test_serve_with_tls_flags_answers_adbc(demo_dir: Path, tmp_path: Path, pki: Pki) -> None:
    _write(tmp_path, pki)
    port = free_port()
    process = subprocess.Popen(
        [str(MESHGATE), "serve", "--config", str(demo_dir), "--port", str(port),
         "--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    uri = f"grpc+tls://127.0.0.1:{port}"
    try:
        _wait_for_tls(uri, pki, process)
        assert _adbc_count(uri, pki) == 20_000
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
    assert f"on {uri}" in stderr


def _wait_for_tls(uri: str, pki: Pki, process: subprocess.Popen[str]) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "meshgate serve exited early"
        connection = flight.FlightClient(uri, tls_root_certs=pki.ca.certificate)
        try:
            connection.authenticate_basic_token("admin", "admin")
            return
        except flight.FlightError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise AssertionError(f"nothing answered on {uri} within 60 s")


# ---- the PostgreSQL wire protocol over the same certificate --------------------------------

@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    for name, issued in (("server", pki.server), ("client", pki.client),
                         ("stranger", pki.stranger)):
        (directory / f"{name}.pem").write_bytes(issued.certificate)
        (directory / f"{name}.key").write_bytes(issued.key)
        (directory / f"{name}.key").chmod(0o600)  # libpq refuses a key others may read
    (directory / "ca.pem").write_bytes(pki.ca.certificate)
    return directory


@pytest.fixture(scope="module")
def postgres_tls_port(service: QueryService, pki: Pki) -> Iterator[int]:
    front_end = PostgresFrontEnd(service, tls=TlsMaterial(pki.server.certificate,
                                                          pki.server.key)).start()
    yield front_end.port
    front_end.shutdown()


@pytest.fixture(scope="module")
def postgres_mtls_port(service: QueryService, pki: Pki) -> Iterator[int]:
    material = TlsMaterial(pki.server.certificate, pki.server.key, client_ca=pki.ca.certificate)
    front_end = PostgresFrontEnd(service, tls=material).start()
    yield front_end.port
    front_end.shutdown()


def _psql(port: int, ssl: str, *command: str) -> subprocess.CompletedProcess[str]:
    dsn = f"postgresql://analyst:analyst@localhost:{port}/meshgate?{ssl}"
    return subprocess.run(["psql", "-X", "-A", "-t", dsn, *command],
                          env={**os.environ, "PGCONNECT_TIMEOUT": "10"}, capture_output=True,
                          text=True, timeout=60, check=False)


def test_psql_and_psycopg_verify_the_server_and_query_over_tls(postgres_tls_port: int,
                                                               pki_files: Path) -> None:
    ssl = f"sslmode=verify-full&sslrootcert={pki_files / 'ca.pem'}"
    result = _psql(postgres_tls_port, ssl, "-c", COUNT_ORDERS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["20000"]
    result = _psql(postgres_tls_port, ssl, "-c", "\\conninfo")
    assert "SSL connection (protocol: TLSv1.3" in result.stdout
    with psycopg.connect(f"host=localhost port={postgres_tls_port} dbname=meshgate "
                         f"user=analyst password=analyst sslmode=verify-full "
                         f"sslrootcert={pki_files / 'ca.pem'}") as conn:
        assert conn.pgconn.ssl_in_use
        row = conn.execute("SELECT count(*) AS n FROM hr.employees WHERE region = %s",
                           ("EU",)).fetchone()
        assert row is not None
        assert row[0] > 0


def test_scram_over_tls_binds_the_exchange_to_the_certificate(postgres_tls_port: int,
                                                              pki_files: Path) -> None:
    """`channel_binding=require`: libpq signs in only with SCRAM-SHA-256-PLUS, whose proof
    covers the hash of the certificate it was shown (psql 15's libpq and psycopg's 18)."""
    ssl = f"sslmode=verify-full&sslrootcert={pki_files / 'ca.pem'}&channel_binding=require"
    result = _psql(postgres_tls_port, ssl, "-c", COUNT_ORDERS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["20000"]
    with psycopg.connect(f"host=localhost port={postgres_tls_port} dbname=meshgate "
                         f"user=analyst password=analyst sslmode=verify-full "
                         f"sslrootcert={pki_files / 'ca.pem'} channel_binding=require") as conn:
        assert conn.execute(COUNT_ORDERS).fetchone() == (20000,)


def test_psql_without_the_ca_refuses_the_certificate(postgres_tls_port: int) -> None:
    result = _psql(postgres_tls_port, "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                   "-c", COUNT_ORDERS)
    assert result.returncode != 0


def test_a_postgres_port_without_tls_says_so_to_a_client_that_requires_it(
    service: QueryService,
) -> None:
    front_end = PostgresFrontEnd(service).start()
    try:
        result = _psql(front_end.port, "sslmode=require", "-c", COUNT_ORDERS)
        assert result.returncode != 0
        assert "server does not support SSL" in result.stderr
        assert _psql(front_end.port, "sslmode=prefer", "-c", COUNT_ORDERS).stdout.split() \
            == ["20000"]
    finally:
        front_end.shutdown()


def test_postgres_mutual_tls_needs_a_client_certificate_of_the_ca(postgres_mtls_port: int,
                                                                  pki_files: Path) -> None:
    base = f"sslmode=verify-full&sslrootcert={pki_files / 'ca.pem'}"
    admitted = _psql(postgres_mtls_port, f"{base}&sslcert={pki_files / 'client.pem'}"
                                         f"&sslkey={pki_files / 'client.key'}", "-c", COUNT_ORDERS)
    assert admitted.returncode == 0, admitted.stderr
    assert admitted.stdout.split() == ["20000"]
    for client in (f"&sslcert={pki_files / 'stranger.pem'}&sslkey={pki_files / 'stranger.key'}",
                   "&sslcert=/nonexistent.pem&sslkey=/nonexistent.key"):
        refused = _psql(postgres_mtls_port, base + client, "-c", COUNT_ORDERS)
        assert refused.returncode != 0
