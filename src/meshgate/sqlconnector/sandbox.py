"""In-process DuckDB connections that can only see what meshgate registers on them.

DuckDB's Python client would otherwise resolve an unknown table name to a Python variable of
the calling frame (replacement scans), let SQL read files, and install and load extensions
from the network the moment a query names one of their types or functions (`CAST(x AS
INET)`); none of that may ever be reachable from user SQL, even though the binder already
resolves every name. Each connection's configuration is locked once it is set up, so no
statement can undo any of it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

# What every embedded DuckDB starts with; the database's own file (if any) stays readable.
LOCKED_DOWN: dict[str, Any] = {
    "python_enable_replacements": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "enable_external_access": False,
}


def sandboxed_duckdb(*, readable: Sequence[Path] = (), **config: Any) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with replacement scans and extension loading off that reads no
    file outside the `readable` directories, its configuration locked."""
    settings: dict[str, Any] = {**LOCKED_DOWN, "threads": os.cpu_count() or 2, **config}
    if readable:
        settings["enable_external_access"] = True  # until allowed_directories is set
    connection = duckdb.connect(":memory:", config=settings)
    if readable:
        # DuckDB takes allowed_directories only once the database runs, then still reads
        # (and writes: COPY, which the gate never lets through) below those directories.
        folders = ", ".join("'" + str(p).rstrip("/").replace("'", "''") + "/'" for p in readable)
        connection.execute(f"SET allowed_directories = [{folders}]")
        connection.execute("SET enable_external_access = false")
    lock_configuration(connection)
    return connection


def lock_configuration(connection: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """No SET, RESET or PRAGMA may change this connection's settings from now on."""
    connection.execute("SET lock_configuration = true")
    return connection
