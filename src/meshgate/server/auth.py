"""Basic -> Bearer authentication on every RPC (flightsql-clients.md §1, P11, P12).

Clients differ: JDBC and pyarrow send `Basic` (padded base64) on Handshake, ADBC sends it
unpadded, some send it on a data RPC directly, and JDBC with `token=` sends `Bearer` on
Handshake. So the middleware accepts `Basic` on any call and answers with a fresh opaque token
in the *initial* response headers; `Bearer` tokens are looked up in a TTL store. A bearer token
in JWS form (three dot-separated parts; meshgate's own tokens have none) comes from the
deployment's identity provider and is verified on every call instead, as sent. With
`server.replicas` a token is also signed (`server/signed.py`), so a replica that did not issue
it accepts it until it expires.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from pyarrow import flight

from meshgate.catalog.identity import expiry_of, looks_like_jwt
from meshgate.errors import AuthenticationFailed
from meshgate.principal import Principal
from meshgate.server.signed import Signer, issue_token, open_token

MAX_LEEWAY_SECONDS = 300  # the largest `server.jwt.leeway_seconds` the config accepts

Authenticate = Callable[[str, str], Principal]
AuthenticateToken = Callable[[str], Principal]
# A signed-in principal as the serving configuration defines it now (after a reload).
CurrentPrincipal = Callable[[Principal], Principal]


@dataclass(frozen=True)
class Credential:
    token: str
    principal: Principal
    expires_at: float


class TokenStore:
    """Bearer tokens bound to a principal; they expire `ttl_seconds` after issue.

    Opaque random tokens by default. With a `signer` (replicas), tokens are signed and name
    their user, and `principal_of` gives that user's principal on a replica that did not
    issue them.
    """

    def __init__(self, ttl_seconds: float,
                 on_expire: Callable[[str], None] | None = None, *,
                 signer: Signer | None = None,
                 principal_of: Callable[[str], Principal] | None = None) -> None:  # fmt: skip
        if (signer is None) != (principal_of is None):
            raise ValueError("a token signer needs `principal_of`, and only a signer uses it")
        self._ttl = ttl_seconds
        self._on_expire = on_expire
        self._signer = signer
        self._principal_of = principal_of
        self._tokens: dict[str, Credential] = {}
        self._closed_jwts: dict[str, float] = {}  # token -> wall-clock time it expires anyway
        self._lock = threading.Lock()

    def issue(self, principal: Principal) -> Credential:
        token = (secrets.token_urlsafe(32) if self._signer is None
                 else issue_token(self._signer, principal.name, self._ttl))
        credential = Credential(token, principal, time.monotonic() + self._ttl)
        with self._lock:
            self._tokens[credential.token] = credential
        self._expire()
        return credential

    def revoke(self, token: str) -> None:
        """End a session now (CloseSession): its token authenticates no more. An identity
        provider's token cannot be withdrawn at its source, so it is refused here until its
        `exp` (plus the largest leeway a deployment may allow); a signed token likewise, on
        this replica (the others accept it until it expires)."""
        signed = None if self._signer is None else open_token(self._signer, token)
        with self._lock:
            self._tokens.pop(token, None)
            if signed is not None:
                self._closed_jwts[token] = signed.expires_at
            elif looks_like_jwt(token):
                expiry = expiry_of(token)
                self._closed_jwts[token] = (time.time() + self._ttl if expiry is None
                                            else expiry + MAX_LEEWAY_SECONDS)
        if self._on_expire is not None:
            self._on_expire(token)

    def is_closed(self, token: str) -> bool:
        """Whether CloseSession ended this identity-provider (or signed) token's session."""
        now = time.time()
        with self._lock:
            for gone in [t for t, until in self._closed_jwts.items() if until <= now]:
                del self._closed_jwts[gone]
            return token in self._closed_jwts

    def resolve(self, token: str) -> Credential:
        with self._lock:
            credential = self._tokens.get(token)
        if credential is None:
            credential = self._from_another_replica(token)
        if credential is None or credential.expires_at <= time.monotonic():
            self._expire()
            raise AuthenticationFailed(
                "the bearer token is unknown or expired; authenticate again with user and password"
            )
        return credential

    def _from_another_replica(self, token: str) -> Credential | None:
        """A signed token this process did not issue (or forgot), kept from now on."""
        if self._signer is None or self._principal_of is None:
            return None
        signed = open_token(self._signer, token)
        if signed is None or self.is_closed(token):
            return None
        left = signed.expires_at - time.time()
        if left <= 0:
            return None
        try:
            principal = self._principal_of(signed.user)
        except AuthenticationFailed:  # removed from this replica's configuration
            return None
        credential = Credential(token, principal, time.monotonic() + left)
        with self._lock:
            self._tokens[token] = credential
        return credential

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            gone = [t for t, c in self._tokens.items() if c.expires_at <= now]
            for token in gone:
                del self._tokens[token]
        if self._on_expire is not None:
            for token in gone:
                self._on_expire(token)


def parse_basic(encoded: str) -> tuple[str, str]:
    """`user:password` from a Basic credential; padding optional, split on the first ':'."""
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationFailed(
            "the Basic credential is not valid base64 of 'user:password'"
        ) from None
    user, sep, password = text.partition(":")
    if not sep:
        raise AuthenticationFailed("the Basic credential has no ':' between user and password")
    return user, password


class CallCredential(flight.ServerMiddleware):  # type: ignore[misc]
    """The principal of one call, and the token to hand back if this call logged in."""

    def __init__(self, credential: Credential, issued: bool) -> None:
        self.credential = credential
        self._issued = issued
        self.client: str | None = None  # the peer, set by the RPC handler that knows it

    @property
    def principal(self) -> Principal:
        return self.credential.principal

    @property
    def token(self) -> str:
        return self.credential.token

    def sending_headers(self) -> dict[str, str]:
        if self._issued:
            return {"authorization": f"Bearer {self.credential.token}"}
        return {}


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Authenticates every call; failures are UNAUTHENTICATED without a traceback."""

    def __init__(self, authenticate: Authenticate, tokens: TokenStore,
                 authenticate_token: AuthenticateToken,
                 current: CurrentPrincipal | None = None) -> None:  # fmt: skip
        self._authenticate = authenticate
        self._tokens = tokens
        self._authenticate_token = authenticate_token
        self._current = current

    def start_call(self, info: flight.CallInfo,
                   headers: dict[str, list[str]]) -> CallCredential:
        try:
            credential = self._credential(headers)
        except AuthenticationFailed as exc:
            raise flight.FlightUnauthenticatedError(exc.message) from None
        if info.method == flight.FlightMethod.HANDSHAKE:
            # JDBC with `token=` handshakes with its Bearer and keeps only what comes back.
            return CallCredential(credential.credential, issued=True)
        return credential

    def _credential(self, headers: dict[str, list[str]]) -> CallCredential:
        values = headers.get("authorization", [])
        if not values:
            raise AuthenticationFailed(
                "no credentials: send user and password (Basic) or a bearer token"
            )
        scheme, _, value = values[0].strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            user, password = parse_basic(value)
            principal = self._authenticate(user, password)
            return CallCredential(self._tokens.issue(principal), issued=True)
        if scheme.lower() == "bearer" and looks_like_jwt(value):
            if self._tokens.is_closed(value):
                raise AuthenticationFailed(
                    "this bearer token's session was closed; get a new token from your "
                    "identity provider"
                )
            # Its `exp` is checked on every call, so the credential itself never expires.
            principal = self._authenticate_token(value)
            return CallCredential(Credential(value, principal, math.inf), issued=False)
        if scheme.lower() == "bearer":
            credential = self._tokens.resolve(value)
            if self._current is not None:
                # Roles a reload took away (or the user it removed) stop at the next call.
                principal = self._current(credential.principal)
                if principal != credential.principal:
                    credential = replace(credential, principal=principal)
            return CallCredential(credential, issued=False)
        raise AuthenticationFailed(
            f"unsupported authorization scheme {scheme!r}; use Basic or Bearer"
        )


class NoopAuthHandler(flight.ServerAuthHandler):  # type: ignore[misc]
    """Lets Handshake succeed (pyarrow answers UNIMPLEMENTED without one); auth is middleware."""

    def authenticate(self, outgoing: flight.ServerAuthSender,
                     incoming: flight.ServerAuthReader) -> None:
        return None

    def is_valid(self, token: bytes) -> str:
        return ""
