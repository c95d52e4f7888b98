"""A throw-away certificate authority for the TLS tests: a server certificate for
localhost/127.0.0.1, a client certificate of the same CA, and one of a CA nobody trusts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from ipaddress import IPv4Address

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Issued:
    certificate: bytes
    key: bytes


@dataclass(frozen=True)
class Pki:
    ca: Issued
    server: Issued
    client: Issued
    stranger: Issued  # a client certificate from a CA the server does not trust


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(common: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
           *, ca: bool = False, server: bool = False) -> tuple[Issued, x509.Name,
                                                              ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common)
    signer_name, signer_key = issuer if issuer is not None else (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(signer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False)
    certificate = builder.sign(signer_key, hashes.SHA256())
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return Issued(certificate.public_bytes(serialization.Encoding.PEM), pem_key), subject, key


def make_pki() -> Pki:
    ca, ca_name, ca_key = _issue("meshgate test CA", None, ca=True)
    server, _, _ = _issue("localhost", (ca_name, ca_key), server=True)
    client, _, _ = _issue("analyst", (ca_name, ca_key))
    _, other_name, other_key = _issue("another CA", None, ca=True)
    stranger, _, _ = _issue("analyst", (other_name, other_key))
    return Pki(ca, server, client, stranger)
