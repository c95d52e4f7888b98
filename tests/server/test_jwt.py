"""JWT bearer tokens from an identity provider, as real clients send them to a real server.

The test plays the identity provider: it makes RSA, EC and HMAC keys with `cryptography`, signs
tokens with PyJWT (or by hand, for the forgeries PyJWT refuses to make), and configures meshgate
to trust it through `server.jwt` (a PEM key file, a JWK Set file, a secret from the environment).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as adbc
import jwt
import pyarrow as pa
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pyarrow import flight

from meshgate.server import running_server
from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.server.flightsql_clients import descriptor

ISSUER = "https://idp.example.com/realms/acme"
AUDIENCE = "meshgate"
SECRET_VARIABLE = "MESHGATE_TEST_JWT_SECRET"
REFUSED = "the bearer token is invalid or expired"


@dataclass(frozen=True)
class IdentityProviderKeys:
    """What the test's identity provider signs with, and a stranger's key it must not trust."""

    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    stranger: rsa.RSAPrivateKey
    secret: str

    @property
    def rsa_public_pem(self) -> bytes:
        return self.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture(scope="module")
def keys() -> IdentityProviderKeys:
    return IdentityProviderKeys(
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
        stranger=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        secret=secrets.token_urlsafe(48),
    )


def claims(**changes: Any) -> dict[str, Any]:
    """A token for alice, an analyst in the EU office; a change of None drops the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice@example.com", "groups": ["analyst"],
        "office": "EU", "iat": now, "nbf": now - 5, "exp": now + 300,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def rs256(keys: IdentityProviderKeys, **changes: Any) -> str:
    """A token the identity provider signed with its RSA key."""
    return jwt.encode(claims(**changes), keys.rsa_key, algorithm="RS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any]) -> str:
    """An `alg: none` token: a header, the claims and an empty signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def hand_signed_hs256(payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 token made without PyJWT, which refuses a PEM key as an HMAC secret."""
    signing_input = ".".join(
        _b64(json.dumps(part).encode()) for part in ({"alg": "HS256", "typ": "JWT"}, payload)
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def write_mesh(demo_dir: Path, target: Path, jwt_section: dict[str, Any]) -> Path:
    """The demo mesh (YAML and data) plus an identity provider configured under `server.jwt`."""
    shutil.copytree(demo_dir, target)
    section = {"server": {"jwt": {
        "issuer": ISSUER, "audience": AUDIENCE, "roles_claim": "groups",
        "attribute_claims": {"region": "office"}, **jwt_section,
    }}}
    (target / "identity.yaml").write_text(yaml.safe_dump(section), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def rs256_mesh(demo_dir: Path, keys: IdentityProviderKeys,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    mesh = write_mesh(demo_dir, tmp_path_factory.mktemp("rs256") / "mesh",
                      {"algorithms": ["RS256"], "key_file": "keys/idp.pem"})
    (mesh / "keys").mkdir()
    (mesh / "keys" / "idp.pem").write_bytes(keys.rsa_public_pem)
    return mesh


def _serve(mesh: Path) -> Iterator[str]:
    service = QueryService.from_config(mesh)
    try:
        with running_server(service) as server:
            yield f"grpc://127.0.0.1:{server.port}"
    finally:
        service.close()


@pytest.fixture(scope="module")
def rs256_uri(rs256_mesh: Path) -> Iterator[str]:
    yield from _serve(rs256_mesh)


@pytest.fixture(scope="module")
def es256_uri(demo_dir: Path, keys: IdentityProviderKeys,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Trusts a JWK Set as identity providers publish it: an EC key and an RSA key for RS256."""
    mesh = write_mesh(demo_dir, tmp_path_factory.mktemp("es256") / "mesh",
                      {"algorithms": ["ES256"], "jwks_file": "jwks.json"})
    ec_jwk = json.loads(ECAlgorithm.to_jwk(keys.ec_key.public_key()))
    rsa_jwk = json.loads(RSAAlgorithm.to_jwk(keys.rsa_key.public_key()))
    jwks = {"keys": [{**rsa_jwk, "kid": "rsa-1", "alg": "RS256", "use": "sig"},
                     {**ec_jwk, "kid": "ec-1", "use": "sig"}]}
    (mesh / "jwks.json").write_text(json.dumps(jwks), encoding="utf-8")
    yield from _serve(mesh)


@pytest.fixture(scope="module")
def hs256_uri(demo_dir: Path, keys: IdentityProviderKeys,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    mesh = write_mesh(demo_dir, tmp_path_factory.mktemp("hs256") / "mesh",
                      {"algorithms": ["HS256"], "key": f"${{{SECRET_VARIABLE}}}"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_VARIABLE, keys.secret)
        service = QueryService.from_config(mesh)
    try:
        with running_server(service) as server:
            yield f"grpc://127.0.0.1:{server.port}"
    finally:
        service.close()


def bearer(token: str) -> flight.FlightCallOptions:
    return flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])


def pyarrow_query(uri: str, token: str, sql: str) -> list[dict[str, Any]]:
    """A Flight SQL statement the way a plain pyarrow.flight client runs it, token as is."""
    client = flight.connect(uri)
    try:
        command = descriptor(pb.CommandStatementQuery(query=sql))
        info = client.get_flight_info(command, bearer(token))
        table = client.do_get(info.endpoints[0].ticket, bearer(token)).read_all()
        rows: list[dict[str, Any]] = table.to_pylist()
        return rows
    finally:
        client.close()


def adbc_query(uri: str, token: str, sql: str) -> list[tuple[Any, ...]]:
    header = adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value
    with adbc.connect(uri, db_kwargs={header: f"Bearer {token}"}, autocommit=True) as conn, \
            conn.cursor() as cursor:
        cursor.execute(sql)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows


def test_close_session_ends_an_identity_provider_token_here(
        rs256_uri: str, keys: IdentityProviderKeys) -> None:
    token = rs256(keys, jti="closed-by-its-client")  # no other test sends this one
    assert pyarrow_query(rs256_uri, token, "SELECT 1 AS one") == [{"one": 1}]
    client = flight.connect(rs256_uri)
    try:
        action = flight.Action("CloseSession", flight_pb2.CloseSessionRequest().SerializeToString())
        list(client.do_action(action, bearer(token)))
    finally:
        client.close()
    with pytest.raises(flight.FlightUnauthenticatedError,
                       match="this bearer token's session was closed; get a new token"):
        pyarrow_query(rs256_uri, token, "SELECT 1 AS one")
    assert pyarrow_query(rs256_uri, rs256(keys, jti="another"), "SELECT 1 AS one") == [{"one": 1}]


# ---- accepted tokens ----------------------------------------------------------------------------

def test_pyarrow_rs256_token_queries_as_the_user_its_claims_name(
        rs256_uri: str, keys: IdentityProviderKeys) -> None:
    token = rs256(keys)
    assert pyarrow_query(rs256_uri, token, "SELECT current_user AS who") == [
        {"who": "alice@example.com"}
    ]


def test_adbc_es256_token_from_a_jwks_is_accepted_by_its_kid(
        es256_uri: str, keys: IdentityProviderKeys) -> None:
    token = jwt.encode(claims(sub="bob"), keys.ec_key, algorithm="ES256", headers={"kid": "ec-1"})
    assert adbc_query(es256_uri, token, "SELECT current_user") == [("bob",)]


def test_adbc_hs256_token_signed_with_the_secret_from_the_environment(
        hs256_uri: str, keys: IdentityProviderKeys) -> None:
    token = jwt.encode(claims(sub="carol"), keys.secret, algorithm="HS256")
    assert adbc_query(hs256_uri, token, "SELECT current_user") == [("carol",)]


def test_grants_follow_the_roles_in_the_token(rs256_uri: str, keys: IdentityProviderKeys) -> None:
    analyst = rs256(keys)
    admin = rs256(keys, sub="root@example.com", groups=["admin"])
    nobody = rs256(keys, groups=None)
    budgets = "SELECT count(*) AS n FROM finance.budgets"
    orders = "SELECT count(*) AS n FROM sales.orders"
    assert pyarrow_query(rs256_uri, analyst, orders) == [{"n": 20_000}]
    assert pyarrow_query(rs256_uri, admin, budgets)[0]["n"] > 0
    with pytest.raises(pa.ArrowKeyError, match="does not exist or you are not allowed"):
        pyarrow_query(rs256_uri, analyst, budgets)
    with pytest.raises(pa.ArrowKeyError, match="does not exist or you are not allowed"):
        pyarrow_query(rs256_uri, nobody, orders)


def test_adbc_sees_only_the_domains_the_token_grants(
        rs256_uri: str, keys: IdentityProviderKeys) -> None:
    token = rs256(keys)
    rows = adbc_query(rs256_uri, token, "SELECT domain FROM meshgate.domains ORDER BY domain")
    assert rows == [("hr",), ("sales",)]


def test_claims_become_roles_and_attributes(rs256_mesh: Path, keys: IdentityProviderKeys) -> None:
    service = QueryService.from_config(rs256_mesh)
    try:
        token = rs256(keys, groups=["analyst", "pii_reader"])
        principal = service.authenticate_token(token)
    finally:
        service.close()
    assert principal.name == "alice@example.com"
    assert principal.roles == {"analyst", "pii_reader"}
    assert principal.attributes == {"region": "EU"}


def test_basic_still_returns_meshgates_own_session_token(rs256_uri: str) -> None:
    client = flight.connect(rs256_uri)
    _, value = client.authenticate_basic_token(b"analyst", b"analyst")
    token = value.decode().removeprefix("Bearer ")
    assert "." not in token
    assert pyarrow_query(rs256_uri, token, "SELECT current_user AS who") == [{"who": "analyst"}]


# ---- refused tokens -----------------------------------------------------------------------------

def _rs256_forgeries(keys: IdentityProviderKeys) -> dict[str, str]:
    now = int(time.time())
    genuine = rs256(keys)
    header, _, signature = genuine.split(".")
    escalated = _b64(json.dumps(claims(groups=["admin"])).encode())
    return {
        "expired": rs256(keys, exp=now - 60),
        "not yet valid": rs256(keys, nbf=now + 600),
        "wrong issuer": rs256(keys, iss="https://evil.example.com/"),
        "wrong audience": rs256(keys, aud="another-service"),
        "no expiry": rs256(keys, exp=None),
        "wrong signature": jwt.encode(claims(), keys.stranger, algorithm="RS256"),
        "tampered claims": f"{header}.{escalated}.{signature}",
        "alg none": unsigned(claims()),
        "HS256 with the RSA public key as secret": hand_signed_hs256(claims(),
                                                                     keys.rsa_public_pem),
        "alg not a name": ".".join([_b64(json.dumps({"alg": ["RS256"]}).encode()),
                                    *genuine.split(".")[1:]]),
        "not a JWT at all": "a.b.c",
        "ES256 not configured": jwt.encode(claims(), keys.ec_key, algorithm="ES256"),
    }


FORGERIES = ("expired", "not yet valid", "wrong issuer", "wrong audience", "no expiry",
             "wrong signature", "tampered claims", "alg none",
             "HS256 with the RSA public key as secret", "ES256 not configured",
             "alg not a name", "not a JWT at all")


@pytest.mark.parametrize("case", FORGERIES)
def test_pyarrow_refuses_each_bad_token_as_unauthenticated(
        case: str, rs256_uri: str, keys: IdentityProviderKeys) -> None:
    token = _rs256_forgeries(keys)[case]
    with pytest.raises(flight.FlightUnauthenticatedError) as refused:
        pyarrow_query(rs256_uri, token, "SELECT current_user AS who")
    assert REFUSED in str(refused.value)
    assert "Traceback" not in str(refused.value)


def test_the_reason_for_a_refusal_is_logged_for_the_operator_only(
        rs256_uri: str, keys: IdentityProviderKeys, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="meshgate.auth"), \
            pytest.raises(flight.FlightUnauthenticatedError) as refused:
        pyarrow_query(rs256_uri, rs256(keys, aud="another-service"), "SELECT 1 AS one")
    assert "audience" in caplog.text.lower()
    assert REFUSED in str(refused.value)
    assert "audience" not in str(refused.value).lower()


@pytest.mark.parametrize("case", ["expired", "alg none", "HS256 with the RSA public key as secret"])
def test_adbc_refuses_bad_tokens_as_unauthenticated(
        case: str, rs256_uri: str, keys: IdentityProviderKeys) -> None:
    with pytest.raises(adbc.Error, match=r"(?i)unauthenticated.*invalid or expired"):
        adbc_query(rs256_uri, _rs256_forgeries(keys)[case], "SELECT 1")


def test_a_jwks_key_for_another_algorithm_is_not_trusted(
        es256_uri: str, keys: IdentityProviderKeys) -> None:
    # The set publishes the RSA key for RS256, but this deployment accepts only ES256.
    token = jwt.encode(claims(), keys.rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    with pytest.raises(flight.FlightUnauthenticatedError, match=REFUSED):
        pyarrow_query(es256_uri, token, "SELECT 1 AS one")


def test_a_kid_the_jwks_does_not_hold_is_refused(
        es256_uri: str, keys: IdentityProviderKeys) -> None:
    token = jwt.encode(claims(), keys.ec_key, algorithm="ES256", headers={"kid": "unknown"})
    with pytest.raises(flight.FlightUnauthenticatedError, match=REFUSED):
        pyarrow_query(es256_uri, token, "SELECT 1 AS one")


def test_hs256_deployment_refuses_rs256_and_a_wrong_secret(
        hs256_uri: str, keys: IdentityProviderKeys) -> None:
    for token in (rs256(keys),
                  jwt.encode(claims(), secrets.token_urlsafe(48), algorithm="HS256"),
                  unsigned(claims())):
        with pytest.raises(flight.FlightUnauthenticatedError, match=REFUSED):
            pyarrow_query(hs256_uri, token, "SELECT 1 AS one")


def test_a_token_without_the_user_claim_says_what_is_missing(
        rs256_uri: str, keys: IdentityProviderKeys) -> None:
    token = rs256(keys, sub=None)
    with pytest.raises(flight.FlightUnauthenticatedError, match="names no user in its 'sub'"):
        pyarrow_query(rs256_uri, token, "SELECT 1 AS one")


def test_a_server_without_an_identity_provider_refuses_jwts(
        uri: str, keys: IdentityProviderKeys) -> None:
    token = rs256(keys)
    with pytest.raises(flight.FlightUnauthenticatedError, match="sign in with user and password"):
        pyarrow_query(uri, token, "SELECT 1 AS one")


# ---- a bad jwt section stops the commands -------------------------------------------------------

@pytest.mark.parametrize("command", ["check", "serve"])
def test_check_and_serve_stop_on_a_bad_jwt_section(
        command: str, rs256_mesh: Path, tmp_path: Path) -> None:
    mesh = tmp_path / "mesh"
    shutil.copytree(rs256_mesh, mesh)
    (mesh / "keys" / "idp.pem").write_text("not a key", encoding="utf-8")
    extra = ("--port", "0") if command == "serve" else ()
    result = subprocess.run(
        [str(Path(sys.executable).with_name("meshgate")), command, "--config", str(mesh), *extra],
        capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ),
    )
    assert result.returncode == 2
    assert re.search(
        r"identity\.yaml:\d+:\d+: server\.jwt\.key_file: not a PEM public key", result.stderr
    )
    assert "Traceback" not in result.stderr
