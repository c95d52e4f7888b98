"""The residual engine a call asks for: the session option or call header `residual_engine`
(`auto`, `duckdb`, `spark`), over `server.residual.default` (`execution.residual_choice`).

The header wins over the session's option for its call; an unknown value is refused when the
statement is planned, with the values it may take.
"""

from __future__ import annotations

from pyarrow import flight

HEADER = "x-meshgate-residual-engine"
OPTION = "residual_engine"
CHOICES = ("auto", "duckdb", "spark")


class ResidualRequest(flight.ServerMiddleware):  # type: ignore[misc]
    """The engine a call's `x-meshgate-residual-engine` header asks for (None: not asked)."""

    def __init__(self, engine: str | None) -> None:
        self.engine = engine


class ResidualRequestFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Reads the header on every call (ADBC sends it with
    `adbc.flight.sql.rpc.call_header.x-meshgate-residual-engine`)."""

    def start_call(self, info: flight.CallInfo,
                   headers: dict[str, list[str]]) -> ResidualRequest:  # fmt: skip
        values = headers.get(HEADER, [])
        return ResidualRequest(values[0] if values else None)
