"""A DuckDB database file as a meshgate source.

DuckDB is the engine's own dialect, so everything the canonical capability table lists is
pushed as is; only columns declared with a collation (e.g. `COLLATE nocase`) are rendered
`COLLATE c` so they compare by bytes, as the engine does. One read-only connection per
connector; each query runs on its own cursor so concurrent fragments do not share state and
each can be interrupted alone.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import duckdb

from meshgate.errors import ConfigError, SourceUnavailable
from meshgate.spi import (
    CANONICAL_DIALECT,
    Capabilities,
    ConnectorContext,
    SourceColumn,
    SourceTable,
    TableStatistics,
)
from meshgate.sqlconnector import (
    ENGINE_CAPABILITIES,
    DuckDBBackedConnector,
    collated_text_columns,
)
from meshgate.sqlconnector.sandbox import LOCKED_DOWN
from meshgate.types import wire_type

CAPABILITIES = ENGINE_CAPABILITIES


# The file is the only thing this connection may read: no other files, no Python objects, no
# extension installed or loaded, no setting changed. Locked in the connect call itself, so
# that two sources on one file share DuckDB's cached instance (same configuration).
SANDBOX = {**LOCKED_DOWN, "lock_configuration": True}


class DuckDBConnector(DuckDBBackedConnector):
    """Reads tables of a `.duckdb` file (option `path`), opened read-only."""

    kind = "duckdb"
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (duckdb.Error,)
    binary_collation: ClassVar[str | None] = "c"

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        if "path" not in context.options:
            raise ConfigError(f"source {context.name!r} (duckdb) needs the option `path`")
        self.path: Path = context.path(str(context.options["path"]))
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def check(self) -> None:
        self._cursor().close()

    def table_columns(self, table: SourceTable) -> list[SourceColumn]:
        cursor = self._cursor()
        try:
            relation = cursor.execute(
                "SELECT column_name, is_nullable FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [table.schema or "main", table.name],
            ).fetchall()
            if not relation:
                raise SourceUnavailable(
                    "a DuckDB source has no table a product is configured to read; check the "
                    "product's table name in the configuration",
                    detail=f"source {self.context.name!r}: no table {table.qualified()!r} "
                    f"in {self.path}",
                )
            arrow = (
                cursor.execute(f"SELECT * FROM {_quoted(table)} LIMIT 0").to_arrow_table().schema
            )
        except duckdb.Error as error:
            raise self._unavailable(error) from error
        finally:
            cursor.close()
        nullable = {name: flag == "YES" for name, flag in relation}
        return [SourceColumn(f.name, wire_type(f.type), nullable.get(f.name, True)) for f in arrow]

    def _collated_columns(self, table: SourceTable) -> frozenset[str]:
        """Columns declared e.g. `VARCHAR COLLATE nocase`: rendered `COLLATE c` (byte order)."""
        cursor = self._cursor()
        try:
            row = cursor.execute(
                "SELECT sql FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                [table.schema or "main", table.name],
            ).fetchone()
        except duckdb.Error as error:
            raise self._unavailable(error) from error
        finally:
            cursor.close()
        ddl = row[0] if row and isinstance(row[0], str) else ""
        return collated_text_columns(ddl, CANONICAL_DIALECT, ("c", "posix", "binary"))

    def _table_statistics(self, table: SourceTable) -> TableStatistics | None:
        """The row count DuckDB keeps per table and its per-column storage statistics."""
        cursor = self._cursor()
        try:
            row = cursor.execute(
                "SELECT estimated_size FROM duckdb_tables() WHERE schema_name = ? "
                "AND table_name = ?",
                [table.schema or "main", table.name],
            ).fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        columns = [(c.name, c.type) for c in self._cached_columns(table)]
        return TableStatistics(int(row[0]), self._column_statistics(_quoted(table), columns))

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._connection is None:
                if not self.path.is_file():
                    raise SourceUnavailable(
                        "a DuckDB source's database file does not exist; check the source's "
                        "`path` option (relative paths are resolved against the configuration "
                        "directory)",
                        detail=f"source {self.context.name!r}: no file {self.path}",
                    )
                try:
                    self._connection = duckdb.connect(
                        str(self.path), read_only=True, config=SANDBOX
                    )
                except duckdb.Error as error:
                    raise self._unavailable(error) from error
            return self._connection.cursor()

    def _unavailable(self, error: BaseException) -> SourceUnavailable:
        return SourceUnavailable(
            "a DuckDB source's database file could not be read; check that it is a DuckDB "
            "database this DuckDB version can open and is not locked by a writer",
            detail=f"source {self.context.name!r}: {self.path}: {error}",
        )


def _quoted(table: SourceTable) -> str:
    parts = [table.schema or "main", table.name]
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


__all__ = ["CAPABILITIES", "DuckDBConnector"]
