"""The server's TLS material (`server.tls`), read and checked before a server starts.

gRPC reports a bad certificate or a key of another certificate only as a failed handshake on
the first client call, long after start-up; reading the PEM files here turns each mistake into
a config problem that names the key and says what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshgate.catalog.config import TlsConfig
from meshgate.errors import ConfigError


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes as gRPC takes them; `client_ca` set means client certificates are required."""

    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None


def tls_material(config: TlsConfig, directory: Path) -> TlsMaterial:
    """Read `server.tls` (paths relative to `directory`); raise `ConfigError` naming the key."""
    chain = _read(directory, config.cert_file, "server.tls.cert_file")
    key = _read(directory, config.key_file, "server.tls.key_file")
    client_ca = None
    if config.client_ca_file is not None:
        client_ca = _read(directory, config.client_ca_file, "server.tls.client_ca_file")
        _certificates(client_ca, "server.tls.client_ca_file")
    leaf = _certificates(chain, "server.tls.cert_file")[0]
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"server.tls.key_file: not an unencrypted PEM private key ({exc}); give the key "
            "of the server certificate, decrypted (e.g. `openssl pkey -in KEY -out PLAIN`)"
        ) from None
    if _public_bytes(private.public_key()) != _public_bytes(leaf.public_key()):
        raise ConfigError(
            "server.tls.key_file: this key does not belong to the certificate in "
            "server.tls.cert_file; give the key the certificate was issued for"
        )
    return TlsMaterial(chain, key, client_ca)


def _read(directory: Path, name: str, where: str) -> bytes:
    try:
        return (directory / name).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot read {name!r} ({exc.strerror}); paths are relative to the "
            "config directory"
        ) from None


def _certificates(data: bytes, where: str) -> list[x509.Certificate]:
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError:
        found = []
    if not found:
        raise ConfigError(f"{where}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return found


def _public_bytes(key: object) -> bytes:
    assert hasattr(key, "public_bytes")
    encoded: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encoded
