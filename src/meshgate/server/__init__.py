"""The Flight SQL endpoint: `serve()` for the CLI, `running_server()` for tests and embedding."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from meshgate.server.app import DEFAULT_TTL_SECONDS, MeshgateFlightServer
from meshgate.service import QueryService

__all__ = ["MeshgateFlightServer", "running_server", "serve"]


def _ttl(service: QueryService) -> float:
    try:
        return float(service.catalog.definition.server.token_ttl_seconds)
    except AttributeError:
        return DEFAULT_TTL_SECONDS


def serve(service: QueryService, host: str, port: int) -> None:
    """Serve Flight SQL on grpc://host:port until interrupted (blocking)."""
    server = MeshgateFlightServer(service, f"grpc://{host}:{port}", token_ttl_seconds=_ttl(service))
    try:
        server.serve()
    finally:
        server.shutdown()


@contextmanager
def running_server(service: QueryService, host: str = "127.0.0.1",
                   port: int = 0) -> Iterator[MeshgateFlightServer]:
    """A server accepting calls on gRPC's own threads until the block exits; `.port` is bound.

    pyarrow starts listening in the constructor, so no serving thread of our own is needed.
    """
    server = MeshgateFlightServer(service, f"grpc://{host}:{port}", token_ttl_seconds=_ttl(service))
    try:
        yield server
    finally:
        server.shutdown()
