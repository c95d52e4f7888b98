"""The Flight SQL endpoint: `serve()` for the CLI, `running_server()` for tests and embedding."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from meshgate.catalog.config import ServerConfig
from meshgate.catalog.tls import TlsMaterial
from meshgate.server.app import MeshgateFlightServer
from meshgate.service import QueryService

__all__ = ["MeshgateFlightServer", "running_server", "serve"]


def _config(service: QueryService) -> ServerConfig:
    """The deployment's `server:` settings (lifetimes, limits, login back-off)."""
    try:
        return service.catalog.definition.server
    except AttributeError:
        return ServerConfig()


def listening(host: str, port: int, tls: TlsMaterial | None) -> tuple[str, dict[str, Any]]:
    """The location to bind and pyarrow's TLS options: `grpc+tls://` with a certificate, and
    client certificates verified against `client_ca` when one is given."""
    if tls is None:
        return f"grpc://{host}:{port}", {}
    options: dict[str, Any] = {"tls_certificates": [(tls.cert_chain, tls.private_key)]}
    if tls.client_ca is not None:
        options.update(verify_client=True, root_certificates=tls.client_ca)
    return f"grpc+tls://{host}:{port}", options


def serve(service: QueryService, host: str, port: int, tls: TlsMaterial | None = None) -> None:
    """Serve Flight SQL on grpc[+tls]://host:port (and PostgreSQL's wire protocol on
    `server.postgres_port` when set) until interrupted (blocking)."""
    config = _config(service)
    location, options = listening(host, port, tls)
    server = MeshgateFlightServer(service, location, config, **options)
    postgres = None
    if config.postgres_port is not None:
        # Imported here: the PostgreSQL front end's library loads only when it is switched on.
        from meshgate.server.postgres import PostgresFrontEnd

        postgres = PostgresFrontEnd(service, host, config.postgres_port, tls).start()
    try:
        server.serve()
    finally:
        if postgres is not None:
            postgres.shutdown()
        server.shutdown()


@contextmanager
def running_server(service: QueryService, host: str = "127.0.0.1", port: int = 0,
                   tls: TlsMaterial | None = None) -> Iterator[MeshgateFlightServer]:
    """A server accepting calls on gRPC's own threads until the block exits; `.port` is bound.

    pyarrow starts listening in the constructor, so no serving thread of our own is needed.
    """
    location, options = listening(host, port, tls)
    server = MeshgateFlightServer(service, location, _config(service), **options)
    try:
        yield server
    finally:
        server.shutdown()
