"""A directory of Parquet or CSV files as a meshgate source.

Table `orders` is `<path>/orders.parquet`, or every `<path>/orders/*.parquet`, or
`<path>/orders.csv`. Queries run on an in-process DuckDB, so the capability table is the
engine's own; at render time each physical table becomes a `read_parquet` / `read_csv` scan,
and that rewritten SQL is what `render` shows and what runs. CSV columns are read with the
types the handle declares, so filters compare dates as dates, not as sniffed text.

Unless the option `merge_scan` is false, the connector also offers each table to the merge
DuckDB as a local scan (the same `read_parquet` / `read_csv`, columns cast to the declared
types where the file's differ): the planner then reads it inside the merge instead of
shipping Arrow batches through Python.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp, parse_one

from meshgate.errors import ConfigError, SourceUnavailable
from meshgate.spi import (
    CANONICAL_DIALECT,
    Capabilities,
    ColumnStatistics,
    ConnectorContext,
    LocalScan,
    PushedQuery,
    QueryContext,
    ScanInput,
    SourceColumn,
    SourceTable,
    TableStatistics,
)
from meshgate.sqlconnector import (
    ENGINE_CAPABILITIES,
    DuckDBBackedConnector,
)
from meshgate.sqlconnector.sandbox import sandboxed_duckdb
from meshgate.types import sql_type_name, wire_type

CAPABILITIES = ENGINE_CAPABILITIES

FORMATS = ("parquet", "csv")


class FilesConnector(DuckDBBackedConnector):
    """Reads `<path>/<table>.<format>` files (options `path`, `format`)."""

    kind = "files"
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (duckdb.Error,)

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        if "path" not in context.options:
            raise ConfigError(f"source {context.name!r} (files) needs the option `path`")
        self.format = str(context.options.get("format", "parquet")).lower()
        if self.format not in FORMATS:
            raise ConfigError(
                f"source {context.name!r} (files): format {self.format!r} is not one of "
                f"{', '.join(FORMATS)}"
            )
        self.directory: Path = context.path(str(context.options["path"]))
        merge_scan = context.options.get("merge_scan", True)
        if not isinstance(merge_scan, bool):
            raise ConfigError(
                f"source {context.name!r} (files): option `merge_scan` must be true or false"
            )
        self.merge_scan = merge_scan
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._file_types: dict[tuple[Any, ...], dict[str, str]] = {}

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def check(self) -> None:
        if not self.directory.is_dir():
            raise SourceUnavailable(
                "a files source's directory does not exist; check the source's `path` option "
                "(relative paths are resolved against the configuration directory)",
                detail=f"source {self.context.name!r}: no directory {self.directory}",
            )

    def table_columns(self, table: SourceTable) -> list[SourceColumn]:
        scan = self._file_scan(table, ())
        cursor = self._cursor()
        try:
            schema = cursor.execute(f"SELECT * FROM {scan.sql(CANONICAL_DIALECT)} LIMIT 0")
            arrow = schema.to_arrow_table().schema
        except duckdb.Error as error:
            raise self._unreadable(table, error) from error
        finally:
            cursor.close()
        return [SourceColumn(f.name, wire_type(f.type)) for f in arrow]

    def execute(
        self, handle: PushedQuery, context: QueryContext | None = None
    ) -> pa.RecordBatchReader:
        for item in handle.inputs:
            self._location(item.table)
        return super().execute(handle, context)

    def local_directories(self) -> tuple[Path, ...]:
        if not self.merge_scan:
            return ()
        return tuple(sorted({self.directory.absolute(), self.directory.resolve()}))

    def local_scan(self, table: SourceTable, columns: Sequence[SourceColumn]) -> LocalScan | None:
        """The file scan, projected to `columns` and cast where the file's types differ
        (the cast `execute` applies to its batches); None when `merge_scan` is off or the
        files cannot be read now (the fragment path then reports why)."""
        if not self.merge_scan or not columns:
            return None
        try:
            found = self._types(table, tuple(columns))
        except SourceUnavailable:
            return None
        scan = self._file_scan(table, columns)
        wanted = {c.name: _spelling(sql_type_name(c.type)) for c in columns}
        if found == wanted and list(found) == [c.name for c in columns]:
            return LocalScan(scan, self.local_directories())
        if any(c.name not in found for c in columns):
            return None
        projections = [
            exp.column(c.name, quoted=True)
            if found[c.name] == wanted[c.name]
            else exp.alias_(
                exp.cast(exp.column(c.name, quoted=True), sql_type_name(c.type),
                         dialect=CANONICAL_DIALECT), c.name, quoted=True)
            for c in columns
        ]  # fmt: skip
        relation = exp.select(*projections).from_(scan).subquery()
        return LocalScan(relation, self.local_directories())

    def _types(self, table: SourceTable, columns: tuple[SourceColumn, ...]) -> dict[str, str]:
        """Column name -> DuckDB type of the table's file scan, as DESCRIBE spells it; cached
        until the file or folder changes (every plan asks, the schema rarely moves)."""
        key = (table, columns, self._location(table).stat().st_mtime_ns)
        with self._lock:
            known = self._file_types.get(key)
        if known is not None:
            return known
        scan = self._file_scan(table, columns)
        cursor = self._cursor()
        try:
            rows = cursor.execute(f"DESCRIBE SELECT * FROM {scan.sql(CANONICAL_DIALECT)}")
            types = {str(row[0]): _spelling(str(row[1])) for row in rows.fetchall()}
        except duckdb.Error as error:
            raise self._unreadable(table, error) from error
        finally:
            cursor.close()
        with self._lock:
            self._file_types[key] = types
        return types

    def _physical_select(self, select: exp.Select, inputs: Sequence[ScanInput]) -> exp.Select:
        by_alias = {item.alias: item for item in inputs}

        def to_file_scan(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Table) and node.name and node.alias_or_name in by_alias:
                item = by_alias[node.alias_or_name]
                scan = self._file_scan(item.table, item.columns)
                scan.set("alias", exp.TableAlias(this=exp.to_identifier(item.alias)))
                return scan
            return node

        rewritten = select.transform(to_file_scan, copy=True)
        assert isinstance(rewritten, exp.Select)
        return rewritten

    def _table_statistics(self, table: SourceTable) -> TableStatistics | None:
        """Parquet footers: exact row and null counts, min/max per column (CSV has none)."""
        if self.format != "parquet":
            return None
        location = self._location(table)
        files = [location] if location.is_file() else sorted(location.glob("*.parquet"))
        try:
            return parquet_statistics([pq.read_metadata(file) for file in files])
        except (OSError, pa.ArrowException) as error:
            raise self._unreadable(table, error) from error

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _file_scan(self, table: SourceTable, columns: Sequence[SourceColumn]) -> exp.Table:
        """`read_parquet('…')` / `read_csv('…', header = TRUE, types = {…})` as a table."""
        location = exp.Literal.string(self._pattern(table)).sql(CANONICAL_DIALECT)
        if self.format == "parquet":
            call = f"read_parquet({location})"
        else:
            types = ", ".join(
                f"{exp.Literal.string(c.name).sql(CANONICAL_DIALECT)}: "
                f"{exp.Literal.string(sql_type_name(c.type)).sql(CANONICAL_DIALECT)}"
                for c in columns
            )
            typing = f", types = {{{types}}}" if columns else ""
            call = f"read_csv({location}, header = TRUE, auto_detect = TRUE{typing})"
        scan = parse_one(f"SELECT * FROM {call}", read=CANONICAL_DIALECT).find(exp.Table)
        assert scan is not None
        return scan

    def _pattern(self, table: SourceTable) -> str:
        single = self.directory / f"{table.name}.{self.format}"
        folder = self.directory / table.name
        if self.format == "parquet" and not single.exists() and folder.is_dir():
            return str(folder / "*.parquet")
        return str(single)

    def _location(self, table: SourceTable) -> Path:
        """The file or folder of `table`, or SourceUnavailable saying where it was looked for."""
        self.check()
        single = self.directory / f"{table.name}.{self.format}"
        if single.is_file():
            return single
        folder = self.directory / table.name
        if self.format == "parquet" and folder.is_dir() and any(folder.glob("*.parquet")):
            return folder
        raise SourceUnavailable(
            "a files source has no file for a table a product is configured to read; check "
            "the product's table name and the source's `path` and `format` options",
            detail=f"source {self.context.name!r}: table {table.name!r} has no file {single}"
            + (f" nor Parquet files in {folder}" if self.format == "parquet" else ""),
        )

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._connection is None:
                # Reads only below its own directory; never Python objects by name.
                folders = sorted({self.directory.absolute(), self.directory.resolve()})
                self._connection = sandboxed_duckdb(readable=folders)
            return self._connection.cursor()

    def _unreadable(self, table: SourceTable, error: BaseException) -> SourceUnavailable:
        self._location(table)
        return SourceUnavailable(
            f"a files source could not read a table's files; check that they are valid "
            f"{self.format}",
            detail=f"source {self.context.name!r}: table {table.name!r}: {error}",
        )


def _spelling(type_name: str) -> str:
    return type_name.replace(" ", "").upper()


def parquet_statistics(footers: Sequence[pq.FileMetaData]) -> TableStatistics:
    """Row count and per-column null fraction / min / max over every row group of `footers`;
    a column's figure is known only if every row group records it."""
    rows = sum(footer.num_rows for footer in footers)
    nulls: dict[str, int | None] = {}
    bounds: dict[str, list[Any] | None] = {}
    for footer in footers:
        for group in (footer.row_group(i) for i in range(footer.num_row_groups)):
            for chunk in (group.column(j) for j in range(group.num_columns)):
                name, stats = chunk.path_in_schema, chunk.statistics
                counted = nulls.get(name, 0)
                known = stats is not None and stats.has_null_count and counted is not None
                nulls[name] = counted + stats.null_count if known else None
                if known and stats.null_count == group.num_rows:
                    continue  # all NULL: no bounds to add
                seen = bounds.setdefault(name, [])
                if stats is None or not stats.has_min_max or seen is None:
                    bounds[name] = None
                else:
                    seen.extend((stats.min, stats.max))
    columns: dict[str, ColumnStatistics] = {}
    for name, count in nulls.items():
        values = bounds.get(name)
        columns[name] = ColumnStatistics(
            null_fraction=None if count is None or not rows else count / rows,
            min=min(values) if values else None,
            max=max(values) if values else None,
        )
    return TableStatistics(rows, columns)


__all__ = ["CAPABILITIES", "FilesConnector", "parquet_statistics"]
