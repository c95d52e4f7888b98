"""The `x-meshgate-*` headers of a call, read once when it starts: one middleware for every
per-call option a client sends that way (`x-meshgate-result-endpoints`, server/endpoints.py;
`x-meshgate-residual-engine`, server/residual.py). ADBC sends them with
`adbc.flight.sql.rpc.call_header.<name>`.
"""

from __future__ import annotations

from pyarrow import flight

PREFIX = "x-meshgate-"


class CallHeaders(flight.ServerMiddleware):  # type: ignore[misc]
    """A call's `x-meshgate-*` headers, each by its first value."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        return self.values.get(name)


class CallHeadersFactory(flight.ServerMiddlewareFactory):  # type: ignore[misc]
    """Keeps the call's `x-meshgate-*` headers (gRPC gives header names in lower case)."""

    def start_call(self, info: flight.CallInfo,
                   headers: dict[str, list[str]]) -> CallHeaders:  # fmt: skip
        return CallHeaders({name: values[0] for name, values in headers.items()
                            if name.startswith(PREFIX) and values})
