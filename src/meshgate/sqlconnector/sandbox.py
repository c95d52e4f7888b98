"""In-process DuckDB connections that can only see what meshgate registers on them.

DuckDB's Python client would otherwise resolve an unknown table name to a Python variable of
the calling frame (replacement scans) and let SQL read files; neither may ever be reachable
from user SQL, even though the binder already resolves every name.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import duckdb

_engine: list[duckdb.DuckDBPyConnection] = []  # the one shared database, opened on first use
# Optimizer rules that read one relation twice. A fragment stream registered on the engine can be
# read only once: the second read sees an empty stream, a silently wrong answer (for instance
# DuckDB 1.5 answers `sum(x) OVER (PARTITION BY k)` with a self-join of the scan: no rows).
_SINGLE_SCAN_UNSAFE_OPTIMIZERS = ("window_self_join",)
_engine_lock = threading.Lock()


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


def engine_cursor() -> duckdb.DuckDBPyConnection:
    """A fresh connection to the process's one sandboxed in-memory engine database.

    Opening a DuckDB database costs ~20 ms; a cursor on an open one costs microseconds, and
    each cursor has its own registered relations, so queries never see each other's.
    """
    with _engine_lock:
        if not _engine:
            _engine.append(
                sandboxed_duckdb(disabled_optimizers=",".join(_SINGLE_SCAN_UNSAFE_OPTIMIZERS))
            )
        return _engine[0].cursor()
