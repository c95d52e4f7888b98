"""The residual engine a call asks for: the session option or call header `residual_engine`
(`auto`, `duckdb`, `spark`), over `server.residual.default` (`execution.residual_choice`).

The header (read with the call's other `x-meshgate-*` headers, server/headers.py) wins over
the session's option for its call; an unknown value is refused when the statement is planned,
with the values it may take.
"""

from __future__ import annotations

HEADER = "x-meshgate-residual-engine"
OPTION = "residual_engine"
CHOICES = ("auto", "duckdb", "spark")
