"""SCRAM-SHA-256 sign-in on PostgreSQL's wire (RFC 5802/7677, PostgreSQL's SASL framing).

What psql, psycopg and libpq-based BI tools use by default: the password never crosses the
wire, and the server proves it holds the verifier too. Written on hashlib/hmac rather than
scramp 1.5.0 (PyPI), whose server refuses the empty user name libpq sends in the client-first
message (PostgreSQL takes the name from the startup packet).
The verifier and the decision come from the QueryService, so the login back-off, the audit
and the refusal's wording are Flight SQL's. Over TLS, SCRAM-SHA-256-PLUS binds the exchange
to the server's certificate (`tls-server-end-point`, RFC 5929), so a man in the middle with
another certificate cannot relay it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from typing import NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from meshgate.errors import AuthenticationFailed
from meshgate.principal import INVALID_CREDENTIALS, Principal, ScramVerifier
from meshgate.service import QueryService

SCRAM = "SCRAM-SHA-256"
SCRAM_PLUS = "SCRAM-SHA-256-PLUS"
_END_POINT = "tls-server-end-point"


def end_point_binding(certificate_pem: bytes) -> bytes:
    """RFC 5929's `tls-server-end-point`: the hash of the server's certificate, with the hash
    of its signature (SHA-256 in place of MD5 or SHA-1)."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    algorithm = certificate.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, (hashes.MD5, hashes.SHA1)):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate.public_bytes(Encoding.DER))
    return digest.finalize()


class ScramExchange:
    """One connection's SASL conversation: `step` takes each SASL message the client sends
    and answers server-first (bytes), then (principal, server-final) once the proof holds."""

    def __init__(self, service: QueryService, user: str, client: str,
                 binding: bytes | None) -> None:  # fmt: skip
        self._service = service
        self._user = user  # from the startup message: libpq leaves SCRAM's own name empty
        self._client = client
        self._binding = binding  # the TLS certificate's end-point hash, on TLS connections
        self.mechanisms = (SCRAM_PLUS, SCRAM) if binding is not None else (SCRAM,)
        self._verifier: ScramVerifier | None = None
        self._expected_c = ""
        self._nonce = ""
        self._first_bare = ""
        self._server_first = ""
        self._done = False

    def step(self, payload: bytes) -> bytes | tuple[Principal, bytes]:
        if self._done:
            raise AuthenticationFailed("the sign-in already ended; connect again")
        if self._verifier is None:
            return self._first(payload)
        self._done = True
        signature = self._final(self._verifier, payload)
        if signature is None:
            self._refuse()
        principal = self._service.scram_signed_in(self._user, True, self._client)
        return principal, b"v=" + base64.b64encode(signature)

    def _first(self, payload: bytes) -> bytes:
        """SASLInitialResponse: a mechanism name, then the client-first message."""
        end = payload.find(b"\x00")
        if end < 0 or len(payload) < end + 5:
            raise AuthenticationFailed("malformed SASL initial response")
        mechanism = payload[:end].decode(errors="replace")
        (length,) = struct.unpack("!i", payload[end + 1:end + 5])
        if mechanism not in self.mechanisms or length < 0:
            raise AuthenticationFailed(f"SASL mechanism {mechanism!r} is not offered; this "
                                       f"server offers {', '.join(self.mechanisms)}")
        verifier = self._service.scram_verifier(self._user, self._client)
        try:
            message = payload[end + 5:end + 5 + length].decode()
            flag, authzid, bare = message.split(",", 2)
            attributes = dict(part.split("=", 1) for part in bare.split(","))
            client_nonce = attributes["r"]
        except (UnicodeDecodeError, ValueError, KeyError):
            return self._refuse()
        plus = mechanism == SCRAM_PLUS
        if authzid or "m" in attributes or not client_nonce or not (
                (plus and flag == f"p={_END_POINT}")
                or (not plus and flag == "n")
                or (not plus and flag == "y" and self._binding is None)):  # fmt: skip
            # 'y' over TLS: the client could bind but thinks this server cannot (a downgrade).
            return self._refuse()
        header = f"{flag},{authzid},".encode()
        bound = (self._binding or b"") if plus else b""
        self._expected_c = base64.b64encode(header + bound).decode()
        self._nonce = client_nonce + base64.b64encode(os.urandom(18)).decode()
        self._first_bare = bare
        self._server_first = (f"r={self._nonce},s={base64.b64encode(verifier.salt).decode()},"
                              f"i={verifier.iterations}")  # fmt: skip
        self._verifier = verifier
        return self._server_first.encode()

    def _final(self, verifier: ScramVerifier, payload: bytes) -> bytes | None:
        """The server's signature when the client-final message proves the password."""
        try:
            message = payload.decode()
            without_proof, proof_text = message.rsplit(",p=", 1)
            attributes = dict(part.split("=", 1) for part in without_proof.split(","))
            proof = base64.b64decode(proof_text, validate=True)
        except (UnicodeDecodeError, ValueError):
            return None
        if not (hmac.compare_digest(attributes.get("c", ""), self._expected_c)
                and hmac.compare_digest(attributes.get("r", ""), self._nonce)
                and len(proof) == len(verifier.stored_key)):  # fmt: skip
            return None
        auth_message = f"{self._first_bare},{self._server_first},{without_proof}".encode()
        client_signature = hmac.new(verifier.stored_key, auth_message, "sha256").digest()
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), verifier.stored_key):
            return None
        return hmac.new(verifier.server_key, auth_message, "sha256").digest()

    def _refuse(self) -> NoReturn:
        """A malformed exchange counts as a wrong password (back-off, audit, same words)."""
        self._done = True
        self._service.scram_signed_in(self._user, False, self._client)
        raise AuthenticationFailed(INVALID_CREDENTIALS)
