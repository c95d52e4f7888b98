"""The Flight SQL endpoint: `serve()` for the CLI, `running_server()` for tests and embedding."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from meshgate.catalog.config import ServerConfig
from meshgate.server.app import MeshgateFlightServer
from meshgate.server.lifecycle import Serving
from meshgate.service import QueryService

__all__ = ["MeshgateFlightServer", "running_server", "serve"]


def _config(service: QueryService) -> ServerConfig:
    """The deployment's `server:` settings (lifetimes, limits, login back-off)."""
    try:
        return service.catalog.definition.server
    except AttributeError:
        return ServerConfig()


def serve(service: QueryService, host: str, port: int) -> None:
    """Serve Flight SQL on grpc://host:port (and PostgreSQL's wire protocol on
    `server.postgres_port`, the operators' HTTP endpoints on `server.http_port`, when set)
    until SIGTERM or SIGINT, reloading the configuration on SIGHUP (blocking; main thread)."""
    Serving(service, host, port).run()


@contextmanager
def running_server(service: QueryService, host: str = "127.0.0.1",
                   port: int = 0) -> Iterator[MeshgateFlightServer]:
    """A server accepting calls on gRPC's own threads until the block exits; `.port` is bound.

    pyarrow starts listening in the constructor, so no serving thread of our own is needed.
    """
    server = MeshgateFlightServer(service, f"grpc://{host}:{port}", _config(service))
    try:
        yield server
    finally:
        server.shutdown()
