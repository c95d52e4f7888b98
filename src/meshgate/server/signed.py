"""Handles any replica can read: self-contained, HMAC-signed bearer tokens, prepared-statement
handles and tickets (`server.replicas.signing_key`).

One `meshgate serve` keeps its handles in memory, where a handle is only a random dictionary
key. Replicas behind a load balancer share no memory, so with a signing key each handle carries
what the next call needs — the user it belongs to, the SQL and session options to plan again, the
bound parameter rows, when it expires — sealed with an HMAC-SHA256 tag over a key every replica
holds. A replica that did not issue a handle verifies the tag, checks the expiry and that the
caller is the handle's user, and plans the SQL again for the caller as authenticated now (its
current grants and policies, never what the handle says about them). Nothing in a handle is a
secret from its own holder: it holds what that client sent; the tag only stops forgery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from meshgate.execution.limits import ResultLimits
from meshgate.spi import ScanSlice

_MAGIC = b"mg1"
_TAG_BYTES = 32
# A signed bearer token reads `mgr1.<base64url>`: two dot-separated parts, never a JWT's three.
TOKEN_PREFIX = "mgr1."


class Kind:
    """What a sealed blob is, so a ticket can never pass for a prepared handle or a token."""

    TOKEN = b"T"
    PREPARED = b"P"
    TICKET = b"Q"


class Signer:
    """Seals and opens blobs with the deployment's shared key."""

    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(b"meshgate replica handles\0" + key.encode()).digest()

    def seal(self, kind: bytes, payload: bytes) -> bytes:
        body = _MAGIC + kind + payload
        return body + hmac.new(self._key, body, hashlib.sha256).digest()

    def open(self, kind: bytes, sealed: bytes) -> bytes | None:
        """The payload, or None when `sealed` is not a blob of `kind` sealed with this key."""
        if len(sealed) < len(_MAGIC) + 1 + _TAG_BYTES or not sealed.startswith(_MAGIC + kind):
            return None
        body, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
        if not hmac.compare_digest(tag, hmac.new(self._key, body, hashlib.sha256).digest()):
            return None
        return body[len(_MAGIC) + 1:]


@dataclass(frozen=True)
class SignedToken:
    user: str
    expires_at: float  # wall-clock seconds


def issue_token(signer: Signer, user: str, ttl_seconds: float) -> str:
    payload = json.dumps({"u": user, "e": time.time() + ttl_seconds,
                          "n": secrets.token_urlsafe(12)}).encode()  # fmt: skip
    sealed = signer.seal(Kind.TOKEN, payload)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def open_token(signer: Signer, token: str) -> SignedToken | None:
    """The token's user and expiry if this deployment signed it (expired or not)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    text = token[len(TOKEN_PREFIX):]
    try:
        sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None
    payload = signer.open(Kind.TOKEN, sealed)
    if payload is None:
        return None
    fields = json.loads(payload)
    return SignedToken(str(fields["u"]), float(fields["e"]))


@dataclass(frozen=True)
class SealedStatement:
    """What a prepared handle or a ticket carries between replicas."""

    user: str
    sql: str
    default_domain: str | None
    strict: bool | None
    limits: ResultLimits | None
    schema_digest: str  # the result columns its client was told, to refuse a changed plan
    parameters: pa.Table | None  # the bound rows, as the client sent them
    expires_at: float  # wall-clock seconds
    part: ScanSlice | None = None  # a ticket's slice of a scan split into several endpoints


def schema_digest(schema: pa.Schema) -> str:
    return hashlib.sha256(schema.serialize().to_pybytes()).hexdigest()


def seal_statement(signer: Signer, kind: bytes, statement: SealedStatement) -> bytes:
    limits = statement.limits
    header: dict[str, Any] = {
        "u": statement.user, "q": statement.sql, "d": statement.default_domain,
        "s": statement.strict, "h": statement.schema_digest, "e": statement.expires_at,
        "l": None if limits is None else [limits.max_rows, limits.max_bytes,
                                          limits.timeout_seconds],
        "p": None if statement.part is None else [statement.part.source, statement.part.token],
    }
    encoded = json.dumps(header).encode()
    parameters = b""
    if statement.parameters is not None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, statement.parameters.schema) as writer:
            writer.write_table(statement.parameters)
        parameters = sink.getvalue().to_pybytes()
    return signer.seal(kind, struct.pack(">I", len(encoded)) + encoded + parameters)


def open_statement(signer: Signer, kind: bytes, sealed: bytes) -> SealedStatement | None:
    """The statement if this deployment sealed it as `kind` (expired or not)."""
    payload = signer.open(kind, sealed)
    if payload is None or len(payload) < 4:
        return None
    (length,) = struct.unpack(">I", payload[:4])
    header = json.loads(payload[4:4 + length])
    rest = payload[4 + length:]
    parameters = pa.ipc.open_stream(rest).read_all() if rest else None
    limits = None if header["l"] is None else ResultLimits(*header["l"])
    part = None if header.get("p") is None else ScanSlice(*header["p"])
    return SealedStatement(header["u"], header["q"], header["d"], header["s"], limits,
                           header["h"], parameters, float(header["e"]), part)
