"""DuckDB's own parser, the authority on meshgate's dialect: it parses and renders SQL text,
and never binds or runs it.

One private in-memory connection per process, with external access and extension loading
switched off; `json_serialize_sql` and `json_deserialize_sql` are pure functions of their text.
"""

from __future__ import annotations

import json
import threading
from functools import cache, lru_cache
from typing import Any

import duckdb

_LOCK = threading.Lock()
_connection: duckdb.DuckDBPyConnection | None = None


@lru_cache(maxsize=1024)
def _ask(sql: str, argument: str) -> str | None:
    """One text answer of a pure function of `argument`, remembered (the gate and the
    output names ask it for the same texts at each plan of a statement)."""
    rows = _rows(sql, [argument])
    return str(rows[0][0]) if rows and rows[0][0] is not None else None


def _rows(sql: str, arguments: list[str]) -> list[tuple[Any, ...]]:
    global _connection  # noqa: PLW0603 - one lazily opened parser connection per process
    with _LOCK:
        if _connection is None:
            _connection = duckdb.connect(
                ":memory:",
                config={
                    "enable_external_access": False,
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    "lock_configuration": True,
                },
            )
        return _connection.execute(sql, arguments).fetchall()


@cache
def function_names() -> frozenset[str]:
    """Every function and macro name DuckDB knows, lower case: meshgate's dialect's functions."""
    rows = _rows("SELECT DISTINCT lower(function_name) FROM duckdb_functions()", [])
    return frozenset(str(name) for (name,) in rows)


def parse_tree(text: str) -> dict[str, Any]:
    """DuckDB's parse tree of `text` as `json_serialize_sql` gives it (an `error` key if not)."""
    found = _ask("SELECT json_serialize_sql(?::VARCHAR)", text)
    result = json.loads(found) if found else {}
    return result if isinstance(result, dict) else {}


def rendered(tree: dict[str, Any]) -> str | None:
    """The SQL text DuckDB writes for a parse tree from `parse_tree` (None if it cannot)."""
    try:
        return _ask("SELECT json_deserialize_sql(?::JSON)", json.dumps(tree))
    except duckdb.Error:
        return None
