"""Who is asking: authenticated principals and the password hashes that admit them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
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


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a hash made by `hash_password`."""
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


class Directory:
    """The users of a deployment; answers the same error for unknown users and bad passwords."""

    def __init__(self, users: Mapping[str, tuple[str, Principal]]) -> None:
        self._users = dict(users)

    def authenticate(self, name: str, password: str) -> Principal:
        entry = self._users.get(name)
        if entry is None or not verify_password(password, entry[0]):
            raise AuthenticationFailed(
                "invalid user name or password; check the credentials your client sends"
            )
        return entry[1]

    def principal(self, name: str) -> Principal:
        """Look up a principal without a password (trusted in-process callers: CLI, tests)."""
        entry = self._users.get(name)
        if entry is None:
            raise AuthenticationFailed(f"unknown user {name!r}")
        return entry[1]
