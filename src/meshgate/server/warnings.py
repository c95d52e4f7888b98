"""Warnings to a Flight SQL client, as `x-meshgate-warning` response headers.

Flight SQL has no warnings channel, so a query's warnings (a deprecated product it reads) go
in the initial gRPC headers of its GetFlightInfo and DoGet answers, one header per warning.
pyarrow.flight clients read them with a ClientMiddleware's `received_headers`; ADBC and JDBC
do not show response headers, so the server log carries each warning too.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyarrow import flight

WARNING_HEADER = "x-meshgate-warning"


def send_warnings(context: flight.ServerCallContext, warnings: Iterable[str]) -> None:
    """Add each warning as a header of the call's answer (gRPC header values are ASCII)."""
    for warning in warnings:
        context.add_header(WARNING_HEADER, _header_value(warning))


def _header_value(text: str) -> str:
    """`text` as printable ASCII: other characters as \\uXXXX escapes, line breaks as spaces."""
    flat = " ".join(text.split())
    return flat.encode("ascii", "backslashreplace").decode("ascii")
