"""Who is asking: authenticated principals and the password hashes that admit them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from meshgate.errors import AuthenticationFailed

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class Principal:
    """An authenticated user with its roles and attributes (inputs to grants and policies)."""

    name: str
    roles: frozenset[str]
    attributes: Mapping[str, str] = field(default_factory=dict)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A self-describing scrypt hash: `scrypt$n$r$p$salt$digest` (base64)."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    salt_text = base64.b64encode(salt).decode()
    digest_text = base64.b64encode(digest).decode()
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt_text}${digest_text}"


SCRAM_PREFIX = "SCRAM-SHA-256$"
SCRAM_ITERATIONS = 100_000  # PBKDF2 rounds: PostgreSQL's 4096 is cheap to crack offline


@dataclass(frozen=True)
class ScramVerifier:
    """What a server keeps to check a SCRAM-SHA-256 sign-in (RFC 5802/7677) without the
    password: PostgreSQL's `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` form,
    base64, so a verifier can be copied from (or to) a PostgreSQL's `pg_authid`."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(cls, password: str, iterations: int = SCRAM_ITERATIONS,
                      salt: bytes | None = None) -> ScramVerifier:  # fmt: skip
        salt = salt if salt is not None else os.urandom(16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        return cls(iterations, salt, hashlib.sha256(client_key).digest(),
                   hmac.new(salted, b"Server Key", "sha256").digest())  # fmt: skip

    @classmethod
    def parse(cls, text: str) -> ScramVerifier:
        """Raises ValueError when `text` is not a verifier in PostgreSQL's form."""
        if not text.startswith(SCRAM_PREFIX):
            raise ValueError("not a SCRAM-SHA-256 verifier")
        try:
            head, keys = text[len(SCRAM_PREFIX):].split("$")
            iterations, salt = head.split(":")
            stored_key, server_key = keys.split(":")
            verifier = cls(int(iterations), base64.b64decode(salt, validate=True),
                           base64.b64decode(stored_key, validate=True),
                           base64.b64decode(server_key, validate=True))  # fmt: skip
        except (ValueError, TypeError) as exc:
            raise ValueError("a SCRAM-SHA-256 verifier reads "
                             "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>") from exc
        if verifier.iterations < 4096 or len(verifier.stored_key) != 32 \
                or len(verifier.server_key) != 32 or not verifier.salt:
            raise ValueError("a SCRAM-SHA-256 verifier needs at least 4096 iterations, a salt "
                             "and two 32-byte keys")
        return verifier

    def __str__(self) -> str:
        def text(value: bytes) -> str:
            return base64.b64encode(value).decode()

        return (f"{SCRAM_PREFIX}{self.iterations}:{text(self.salt)}$"
                f"{text(self.stored_key)}:{text(self.server_key)}")

    def admits(self, password: str) -> bool:
        """Constant-time check of a clear-text password (Flight SQL's Basic sign-in)."""
        other = ScramVerifier.from_password(password, self.iterations, self.salt)
        return hmac.compare_digest(other.stored_key, self.stored_key)


def scram_hash(password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """A password hash that also lets PostgreSQL clients sign in with SCRAM-SHA-256."""
    return str(ScramVerifier.from_password(password, iterations))


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a hash made by `hash_password` or
    `scram_hash`."""
    if stored.startswith(SCRAM_PREFIX):
        try:
            return ScramVerifier.parse(stored).admits(password)
        except ValueError:
            return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


INVALID_CREDENTIALS = "invalid user name or password; check the credentials your client sends"


class Directory:
    """The users of a deployment; answers the same error, after the same work, for unknown
    users and bad passwords."""

    def __init__(self, users: Mapping[str, tuple[str, Principal]]) -> None:
        self._users = dict(users)
        # An unknown name is checked against this, so its refusal costs one scrypt too and its
        # timing does not tell which names exist.
        self._decoy = hash_password(base64.b64encode(os.urandom(16)).decode())
        self._scram_decoy = scram_hash(base64.b64encode(os.urandom(16)).decode())
        self._decoy_key = os.urandom(32)

    def authenticate(self, name: str, password: str) -> Principal:
        entry = self._users.get(name)
        stored = entry[0] if entry is not None else self._decoy
        admitted = verify_password(password, stored)
        # The other kind of hash too: the time taken tells neither whether the name exists
        # nor which kind of hash it has (scrypt and PBKDF2 cost differently).
        verify_password(password, self._decoy if stored.startswith(SCRAM_PREFIX)
                        else self._scram_decoy)  # fmt: skip
        if not admitted or entry is None:
            raise AuthenticationFailed(INVALID_CREDENTIALS)
        return entry[1]

    def scram_verifier(self, name: str) -> tuple[ScramVerifier, bool]:
        """The verifier a SCRAM exchange for `name` runs against, and whether it is the
        user's own. Unknown users, and users whose hash is scrypt (no SCRAM keys), get a decoy
        whose salt is fixed per name, as PostgreSQL does: asking twice tells nothing."""
        entry = self._users.get(name)
        if entry is not None and entry[0].startswith(SCRAM_PREFIX):
            try:
                return ScramVerifier.parse(entry[0]), True
            except ValueError:
                pass
        seed = hmac.new(self._decoy_key, name.encode(), "sha256").digest()
        return ScramVerifier(SCRAM_ITERATIONS, seed[:16], seed[16:] + seed[:16],
                             hashlib.sha256(seed).digest()), False  # fmt: skip

    def principal(self, name: str) -> Principal:
        """Look up a principal without a password (trusted in-process callers: CLI, tests)."""
        entry = self._users.get(name)
        if entry is None:
            raise AuthenticationFailed(f"unknown user {name!r}")
        return entry[1]


class LoginBackoff:
    """Refuses sign-ins, without checking the password, for `lockout_seconds` once a user
    name (from one client address, where the front end knows it) has failed `max_failures`
    times within `window_seconds`, or once one client address has failed
    `max_failures_per_client` times whatever the names it tried: online password guessing,
    of one account or across many, meets a wall."""

    def __init__(self, max_failures: int, window_seconds: float, lockout_seconds: float,
                 clock: Callable[[], float] = time.monotonic,
                 max_failures_per_client: int | None = None) -> None:  # fmt: skip
        self._max = max_failures
        self._max_per_client = max_failures_per_client
        self._window = window_seconds
        self._lockout = lockout_seconds
        self._clock = clock
        # Keyed by (user name, address) and, for an address's total, by (None, address).
        self._failures: dict[tuple[str | None, str | None], list[float]] = {}
        self._locked: dict[tuple[str | None, str | None], float] = {}
        self._lock = threading.Lock()

    def check(self, name: str, client: str | None) -> None:
        """Raise if this name (and address), or this address, is locked out; called before
        the password."""
        now = self._clock()
        keys: list[tuple[str | None, str | None]] = [(name, client)]
        if client is not None:
            keys.append((None, client))
        with self._lock:
            for key in keys:
                until = self._locked.get(key)
                if until is not None and until > now:
                    raise AuthenticationFailed(
                        f"too many failed logins; retry in {math.ceil(until - now)} s"
                    )
                self._locked.pop(key, None)

    def failed(self, name: str, client: str | None) -> None:
        now = self._clock()
        with self._lock:
            self._count((name, client), self._max, now)
            if client is not None and self._max_per_client is not None:
                self._count((None, client), self._max_per_client, now)
            if len(self._failures) > _MAX_TRACKED:  # random names must not grow it forever
                self._forget_older_than(now - self._window)

    def _count(self, key: tuple[str | None, str | None], most: int, now: float) -> None:
        recent = [t for t in self._failures.get(key, ()) if t > now - self._window]
        recent.append(now)
        if len(recent) >= most:
            self._locked[key] = now + self._lockout
            recent = []
        self._failures[key] = recent

    def succeeded(self, name: str, client: str | None) -> None:
        with self._lock:
            self._failures.pop((name, client), None)

    def _forget_older_than(self, horizon: float) -> None:
        for key in [k for k, times in self._failures.items() if not times or times[-1] <= horizon]:
            del self._failures[key]
        for key in [k for k, until in self._locked.items() if until <= self._clock()]:
            del self._locked[key]


_MAX_TRACKED = 10_000
