"""Where the Flight SQL server listens, and with which TLS options pyarrow should bind it."""

from __future__ import annotations

from typing import Any

from meshgate.catalog.tls import TlsMaterial


def listening(host: str, port: int, tls: TlsMaterial | None) -> tuple[str, dict[str, Any]]:
    """The location to bind and pyarrow's TLS options: `grpc+tls://` with a certificate, and
    client certificates verified against `client_ca` when one is given."""
    if tls is None:
        return f"grpc://{host}:{port}", {}
    options: dict[str, Any] = {"tls_certificates": [(tls.cert_chain, tls.private_key)]}
    if tls.client_ca is not None:
        options.update(verify_client=True, root_certificates=tls.client_ca)
    return f"grpc+tls://{host}:{port}", options
