"""Basic -> Bearer as clients send it: padded (pyarrow, JDBC), unpadded (ADBC/Go), on any RPC."""

from __future__ import annotations

import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc
import grpc  # type: ignore[import-untyped]
import pytest
from pyarrow import flight

from meshgate.server.auth import parse_basic
from meshgate.server.proto import flight_sql_pb2 as pb
from tests.server.flightsql_clients import basic, descriptor
from tests.server.test_deployment import served

CATALOGS = descriptor(pb.CommandGetCatalogs())
INVALID = "invalid user name or password; check the credentials your client sends"


def _options(authorization: str) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(headers=[(b"authorization", authorization.encode())])


def test_pyarrow_handshake_returns_a_bearer_token_that_later_calls_use(uri: str) -> None:
    client = flight.connect(uri)
    name, value = client.authenticate_basic_token(b"analyst", b"analyst")
    assert name == b"authorization"
    assert value.startswith(b"Bearer ")
    info = client.get_flight_info(CATALOGS, flight.FlightCallOptions(headers=[(name, value)]))
    assert info.schema.names == ["catalog_name"]


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_basic_on_a_data_rpc_is_answered_with_a_bearer_in_the_initial_headers(
        server: flight.FlightServerBase, uri: str, padded: bool) -> None:
    # "admin:admin" is 11 bytes, so its base64 ends in '=' unless the padding is dropped (Go).
    header = basic("admin", "admin", padded=padded)
    assert header.endswith("=") == padded
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_stream("/arrow.flight.protocol.FlightService/ListActions",
                                    request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        responses = call(b"", metadata=[("authorization", header)])
        headers = dict(responses.initial_metadata())
        list(responses)
    assert headers["authorization"].startswith("Bearer ")
    bearer = headers["authorization"]
    client = flight.connect(uri)
    info = client.get_flight_info(CATALOGS, _options(bearer))
    table = client.do_get(info.endpoints[0].ticket, _options(bearer)).read_all()
    assert table.column("catalog_name").to_pylist() == ["demo"]


def test_bearer_on_handshake_is_echoed_back(server: flight.FlightServerBase, uri: str) -> None:
    client = flight.connect(uri)
    _, bearer = client.authenticate_basic_token(b"analyst", b"analyst")
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.stream_stream("/arrow.flight.protocol.FlightService/Handshake",
                                     request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
        responses = call(iter([b""]), metadata=[("authorization", bearer.decode())])
        headers = dict(responses.initial_metadata())
        list(responses)
    assert headers["authorization"] == bearer.decode()


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_basic_splits_on_the_first_colon_only(padded: bool) -> None:
    encoded = basic("ops", "pa:ss:word", padded=padded).removeprefix("Basic ")
    assert parse_basic(encoded) == ("ops", "pa:ss:word")


def test_adbc_connects_with_unpadded_basic(uri: str) -> None:
    with adbc.connect(uri, db_kwargs={"username": "analyst", "password": "analyst"},
                      autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1 AS one")
        assert cursor.fetchall() == [(1,)]


def test_wrong_password_is_unauthenticated(uri: str) -> None:
    client = flight.connect(uri)
    with pytest.raises(flight.FlightUnauthenticatedError, match="invalid user name or password"):
        client.authenticate_basic_token(b"analyst", b"wrong")


def test_adbc_wrong_password_fails_at_connect(uri: str) -> None:
    with pytest.raises(adbc.Error, match=r"(?i)unauthenticated"):
        adbc.connect(uri, db_kwargs={"username": "analyst", "password": "wrong"},
                     autocommit=True)


def test_unknown_user_answers_like_a_wrong_password(uri: str) -> None:
    client = flight.connect(uri)
    with pytest.raises(flight.FlightUnauthenticatedError, match="invalid user name or password"):
        client.authenticate_basic_token(b"nobody", b"analyst")


def test_no_credentials_are_rejected(uri: str) -> None:
    client = flight.connect(uri)
    with pytest.raises(flight.FlightUnauthenticatedError, match="no credentials"):
        client.get_flight_info(CATALOGS)


@pytest.mark.parametrize("authorization", ["Bearer None", "Bearer forged-token", "Digest abc"])
def test_unknown_tokens_and_schemes_are_rejected(uri: str, authorization: str) -> None:
    client = flight.connect(uri)
    refusal = (
        "unsupported authorization scheme 'Digest'" if authorization.startswith("Digest")
        else "the bearer token is unknown or expired; authenticate again"
    )
    with pytest.raises(flight.FlightUnauthenticatedError, match=refusal):
        client.get_flight_info(CATALOGS, _options(authorization))


def test_basic_that_is_not_base64_is_rejected(uri: str) -> None:
    client = flight.connect(uri)
    with pytest.raises(flight.FlightUnauthenticatedError, match="base64"):
        client.get_flight_info(CATALOGS, _options("Basic !!!not-base64!!!"))


def _handshake(uri: str, user: str, password: str) -> str:
    """One real Basic handshake; the refusal's message, or "" when it logged in."""
    client = flight.connect(uri)
    try:
        client.authenticate_basic_token(user.encode(), password.encode())
        return ""
    except flight.FlightUnauthenticatedError as exc:
        return str(exc)
    finally:
        client.close()


def test_unknown_users_cost_a_password_check_like_known_ones(demo_dir: Path,
                                                             tmp_path: Path) -> None:
    def seconds(user: str) -> float:
        started = time.perf_counter()
        assert _handshake(uri, user, "not-the-password").startswith(INVALID)
        return time.perf_counter() - started

    with served(demo_dir, tmp_path / "config", "server: {login: {max_failures: 100}}\n") as uri:
        known = min(seconds("analyst") for _ in range(3))
        unknown = min(seconds(f"nobody{i}") for i in range(3))
    assert unknown > 0.5 * known


def test_failed_logins_back_off_per_user_without_checking_the_password(
        demo_dir: Path, tmp_path: Path) -> None:
    limits = "server: {login: {max_failures: 3, window_seconds: 60, lockout_seconds: 1}}\n"
    with served(demo_dir, tmp_path / "config", limits) as uri:
        for _ in range(3):
            assert _handshake(uri, "analyst", "guess").startswith(INVALID)
        for password in ("analyst", "guess"):  # refused unchecked, the right one too
            assert _handshake(uri, "analyst", password).startswith(
                "too many failed logins; retry in 1 s")
        assert _handshake(uri, "admin", "admin") == ""  # other users are not held up
        time.sleep(1.1)
        assert _handshake(uri, "analyst", "analyst") == ""
        for _ in range(2):  # a success starts the count afresh
            for _ in range(2):
                assert _handshake(uri, "analyst", "guess").startswith(INVALID)
            assert _handshake(uri, "analyst", "analyst") == ""
