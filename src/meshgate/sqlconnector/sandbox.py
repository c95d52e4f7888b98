"""In-process DuckDB connections that can only see what meshgate registers on them.

DuckDB's Python client would otherwise resolve an unknown table name to a Python variable of
the calling frame (replacement scans) and let SQL read files; neither may ever be reachable
from user SQL, even though the binder already resolves every name.
"""

from __future__ import annotations

import os
from typing import Any

import duckdb


def sandboxed_duckdb(*, external_access: bool = False, **config: Any) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with replacement scans off and, by default, no file access."""
    settings: dict[str, Any] = {
        "python_enable_replacements": False,
        "threads": os.cpu_count() or 2,
        **config,
    }
    if not external_access:
        settings["enable_external_access"] = False
    return duckdb.connect(":memory:", config=settings)
