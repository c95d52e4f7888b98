"""The Flight SQL endpoint: `serve()` for the CLI, `running_server()` for tests and embedding."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from meshgate.catalog.config import ServerConfig
from meshgate.catalog.tls import TlsMaterial
from meshgate.server.app import MeshgateFlightServer
from meshgate.server.lifecycle import Serving
from meshgate.server.location import listening
from meshgate.server.memory import collect_garbage_less_often, return_large_allocations
from meshgate.service import QueryService

__all__ = ["MeshgateFlightServer", "running_server", "serve"]


def _config(service: QueryService) -> ServerConfig:
    """The deployment's `server:` settings (lifetimes, limits, login back-off)."""
    try:
        return service.catalog.definition.server
    except AttributeError:
        return ServerConfig()


def serve(service: QueryService, host: str, port: int, tls: TlsMaterial | None = None) -> None:
    """Serve Flight SQL on grpc[+tls]://host:port (and PostgreSQL's wire protocol on
    `server.postgres_port`, the operators' HTTP endpoints and the catalog page on
    `server.http_port`, when set) until SIGTERM or SIGINT, reloading the configuration on
    SIGHUP (blocking; main thread)."""
    return_large_allocations()
    collect_garbage_less_often()
    Serving(service, host, port, tls).run()


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
