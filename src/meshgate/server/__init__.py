"""The Flight SQL endpoint: `serve()` for the CLI, `running_server()` for tests and embedding."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from meshgate.catalog.config import ServerConfig
from meshgate.server.app import MeshgateFlightServer
from meshgate.server.memory import return_large_allocations
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
    `server.postgres_port` when set) until interrupted (blocking)."""
    config = _config(service)
    return_large_allocations()
    server = MeshgateFlightServer(service, f"grpc://{host}:{port}", config)
    postgres = None
    if config.postgres_port is not None:
        # Imported here: the PostgreSQL front end's library loads only when it is switched on.
        from meshgate.server.postgres import PostgresFrontEnd

        postgres = PostgresFrontEnd(service, host, config.postgres_port).start()
    try:
        server.serve()
    finally:
        if postgres is not None:
            postgres.shutdown()
        server.shutdown()


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
