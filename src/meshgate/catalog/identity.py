"""Principals from an identity provider: JWT bearer tokens checked against configured keys.

PyJWT does the JOSE work. This module decides what it is asked: which keys are trusted, which
algorithms each may verify (only configured ones, and only with a key of the matching type, so
neither `alg: none` nor an RSA public key used as an HMAC secret can pass), which registered
claims a token must carry, and how its claims become a `Principal`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm, get_default_algorithms

from meshgate.catalog.config import EC_ALGORITHMS, HMAC_ALGORITHMS, RSA_ALGORITHMS, JwtConfig
from meshgate.errors import AuthenticationFailed, ConfigError
from meshgate.principal import Principal

_log = logging.getLogger("meshgate.auth")

INVALID_TOKEN = (
    "the bearer token is invalid or expired; get a new token from your identity provider"
)
_REQUIRED_CLAIMS = ["exp", "iss", "aud"]
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1,
}

VerifyingKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | bytes


@dataclass(frozen=True)
class TrustedKey:
    """One key the identity provider signs with, and the configured algorithms it may verify."""

    kid: str | None
    algorithms: frozenset[str]
    key: VerifyingKey


def looks_like_jwt(token: str) -> bool:
    """A JWS in compact form has three dot-separated parts; meshgate's own tokens have no dot."""
    return token.count(".") == 2


def expiry_of(token: str) -> float | None:
    """The `exp` claim (epoch seconds) of a token already verified, or None if it has none."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    expiry = claims.get("exp")
    return float(expiry) if isinstance(expiry, int | float) else None


class IdentityProvider:
    """Verifies bearer tokens of one configured issuer and maps their claims to a principal."""

    def __init__(self, config: JwtConfig, keys: tuple[TrustedKey, ...]) -> None:
        self._config = config
        self._keys = keys

    @classmethod
    def from_config(cls, config: JwtConfig, directory: Path) -> IdentityProvider:
        return cls(config, trusted_keys(config, directory))

    def authenticate(self, token: str) -> Principal:
        """The principal a valid token names; every failure answers the same to the caller."""
        return self._principal(self._verified_claims(token))

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            kid = header.get("kid")
            if not isinstance(algorithm, str):
                raise jwt.InvalidAlgorithmError("the header's alg is not a name")
            candidates = [
                k for k in self._keys
                if algorithm in k.algorithms and (kid is None or k.kid in (None, kid))
            ]
            if not candidates:
                raise jwt.InvalidAlgorithmError("no trusted key verifies this alg and kid")
            failure: jwt.PyJWTError = jwt.InvalidSignatureError("no candidate key")
            for candidate in candidates:
                try:
                    return jwt.decode(
                        token,
                        candidate.key,
                        algorithms=[algorithm],
                        audience=self._config.audience,
                        issuer=self._config.issuer,
                        leeway=self._config.leeway_seconds,
                        options={"require": _REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
                    )
                except jwt.InvalidSignatureError as exc:
                    failure = exc  # a JWKS may hold several keys for one algorithm
            raise failure
        except jwt.PyJWTError as exc:
            _log.info("refused a bearer token: %s", exc)
            raise AuthenticationFailed(INVALID_TOKEN) from None

    def _principal(self, claims: dict[str, Any]) -> Principal:
        user_claim = self._config.user_claim
        name = claims.get(user_claim)
        if not isinstance(name, str) or not name:
            raise AuthenticationFailed(
                f"the bearer token names no user in its {user_claim!r} claim; ask your identity "
                "provider's administrator to include it"
            )
        return Principal(name, self._roles(claims), self._attributes(claims))

    def _roles(self, claims: dict[str, Any]) -> frozenset[str]:
        claim = self._config.roles_claim
        value = None if claim is None else claims.get(claim)
        if value is None:
            return frozenset()
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list) and all(isinstance(role, str) for role in value):
            return frozenset(value)
        raise AuthenticationFailed(
            f"the bearer token's {claim!r} claim must be a list of role names; ask your "
            "identity provider's administrator to fix the token's claims"
        )

    def _attributes(self, claims: dict[str, Any]) -> dict[str, str]:
        attributes: dict[str, str] = {}
        for attribute, claim in self._config.attribute_claims.items():
            value = claims.get(claim)
            if value is None:
                continue
            if isinstance(value, bool):
                attributes[attribute] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                attributes[attribute] = str(value)
            else:
                raise AuthenticationFailed(
                    f"the bearer token's {claim!r} claim must be a single value; ask your "
                    "identity provider's administrator to fix the token's claims"
                )
        return attributes


def trusted_keys(config: JwtConfig, directory: Path) -> tuple[TrustedKey, ...]:
    """The keys of `server.jwt`, each checked against the algorithms it is allowed to verify.

    Raises `ConfigError` naming the key (`server.jwt.key_file: ...`) so the loader can report it
    beside every other problem.
    """
    algorithms = frozenset(config.algorithms)
    if algorithms <= HMAC_ALGORITHMS:
        assert config.key is not None  # the model requires `key` for HS*
        return (TrustedKey(None, algorithms, _hmac_secret(config.key, algorithms)),)
    if config.key is not None:
        return (_pem_key(config.key.encode(), algorithms, "server.jwt.key"),)
    if config.key_file is not None:
        data = _read(directory, config.key_file, "server.jwt.key_file")
        return (_pem_key(data, algorithms, "server.jwt.key_file"),)
    assert config.jwks_file is not None
    data = _read(directory, config.jwks_file, "server.jwt.jwks_file")
    return _jwks_keys(data, algorithms, "server.jwt.jwks_file")


def _read(directory: Path, name: str, where: str) -> bytes:
    try:
        return (directory / name).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot read {name!r} ({exc.strerror}); paths are relative to the "
            "config directory"
        ) from None


def _hmac_secret(secret: str, algorithms: frozenset[str]) -> bytes:
    data = secret.encode()
    if b"-----BEGIN" in data or data.startswith(b"ssh-"):
        raise ConfigError(
            "server.jwt.key: an HS* secret must be random bytes, not a PEM or SSH key; for "
            "public keys list RS*/PS*/ES* algorithms instead"
        )
    _check_length(data, algorithms, "server.jwt.key")
    return data


def _pem_key(data: bytes, algorithms: frozenset[str], where: str) -> TrustedKey:
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key: object = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{where}: not a PEM public key or certificate (a private key never belongs here)"
        ) from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ConfigError(f"{where}: only RSA and EC public keys are supported")
    fitting = _fitting(key, algorithms)
    if not fitting:
        raise ConfigError(
            f"{where}: the key is {_describe(key)} but `algorithms` lists "
            f"{', '.join(sorted(algorithms))}; list algorithms that fit the key"
        )
    _check_length(key, fitting, where)
    return TrustedKey(None, fitting, key)


def _jwks_keys(data: bytes, algorithms: frozenset[str], where: str) -> tuple[TrustedKey, ...]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(
            f"{where}: not valid JSON; expected a JWK Set {{\"keys\": [...]}}"
        ) from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: expected a JWK Set {{\"keys\": [...]}}")
    keys: list[TrustedKey] = []
    for index, entry in enumerate(entries):
        label = f"{where}: keys[{index}]"
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        key = _jwk(entry, label)
        if key is None:
            continue
        fitting = _fitting(key, algorithms)
        if "alg" in entry:
            fitting &= {entry["alg"]}
        if fitting:
            _check_length(key, fitting, label)
            kid = entry.get("kid")
            keys.append(TrustedKey(kid if isinstance(kid, str) else None, fitting, key))
    if not keys:
        raise ConfigError(
            f"{where}: no signing key in the set fits `algorithms` "
            f"({', '.join(sorted(algorithms))})"
        )
    return tuple(keys)


def _jwk(entry: dict[str, Any], label: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey | None:
    kty = entry.get("kty")
    if kty == "oct":
        raise ConfigError(
            f"{label}: a symmetric (oct) key; HS* secrets are read only from the environment "
            "(`key: \"${VARIABLE}\"`)"
        )
    if "d" in entry:
        raise ConfigError(f"{label}: a private key; a JWK Set here holds public keys only")
    try:
        if kty == "RSA":
            key: object = RSAAlgorithm.from_jwk(entry)
        elif kty == "EC":
            key = ECAlgorithm.from_jwk(entry)
        else:
            return None  # other key types (OKP, ...) are not configured algorithms
    except jwt.InvalidKeyError as exc:
        raise ConfigError(f"{label}: not a usable key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ConfigError(f"{label}: a private key; a JWK Set here holds public keys only")
    return key


def _fitting(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
             algorithms: frozenset[str]) -> frozenset[str]:
    """The configured algorithms this key can verify: RSA -> RS*/PS*, EC -> ES* of its curve."""
    if isinstance(key, rsa.RSAPublicKey):
        return algorithms & RSA_ALGORITHMS
    return frozenset(a for a in algorithms & EC_ALGORITHMS if isinstance(key.curve, _CURVES[a]))


def _describe(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"an RSA key ({key.key_size} bits)"
    return f"an EC key on curve {key.curve.name}"


def _check_length(key: VerifyingKey, algorithms: frozenset[str], where: str) -> None:
    """Refuse at startup the short keys PyJWT would refuse on every token."""
    implementations = get_default_algorithms()
    for name in sorted(algorithms):
        problem = implementations[name].check_key_length(key)
        if problem:
            raise ConfigError(f"{where}: {problem} Configure a longer key.")
