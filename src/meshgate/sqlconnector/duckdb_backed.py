"""The strategy of sources read through an in-process DuckDB (a database file, Parquet/CSV).

Everything the engine evaluates is pushed as is (`ENGINE_CAPABILITIES`); each fragment runs
on its own cursor so it can be interrupted alone, and open results are counted so tests can
see a closed reader release its cursor. Value errors are classified as the merge's are.
"""

from __future__ import annotations

import abc
import datetime as dt
import re
import threading
from collections.abc import Generator, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from meshgate.errors import QueryCancelled
from meshgate.spi import CancelToken, ColumnStatistics, ConnectorContext
from meshgate.sqlconnector.connector import SqlConnector
from meshgate.sqlconnector.failures import ValueFailure, duckdb_value_failure

_STAT = re.compile(r"(Min|Max|Has Null|Approx Unique): ([^,\]]*)")


class DuckDBBackedConnector(SqlConnector):
    """Subclasses provide `_cursor()`: a fresh cursor on their own connection."""

    in_process = True

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        self._streams_lock = threading.Lock()
        self._open_streams = 0

    @abc.abstractmethod
    def _cursor(self) -> duckdb.DuckDBPyConnection: ...

    @property
    def open_streams(self) -> int:
        """Results being read right now, each holding a cursor until its reader closes."""
        return self._open_streams

    def _stream(
        self, sql: str, parameters: Sequence[Any], schema: pa.Schema, cancel: CancelToken
    ) -> Generator[pa.RecordBatch, None, None]:
        cursor = self._cursor()
        self._count_stream(+1)
        try:
            with cancel.stopping(cursor.interrupt):
                yield from cursor.execute(sql, list(parameters)).to_arrow_reader(self.batch_rows)
        except duckdb.InterruptException:
            if not cancel.cancelled:
                raise
            raise QueryCancelled(
                f"the query was cancelled while a {self.kind} source ran it",
                detail=f"source {self.context.name!r}",
            ) from None
        finally:
            cursor.interrupt()
            cursor.close()
            self._count_stream(-1)

    def _value_failure(self, error: BaseException) -> ValueFailure | None:
        return duckdb_value_failure(error)

    def _count_stream(self, change: int) -> None:
        with self._streams_lock:
            self._open_streams += change

    def _column_statistics(self, relation: str, columns: Sequence[tuple[str, pa.DataType]]
                           ) -> dict[str, ColumnStatistics]:  # fmt: skip
        """DuckDB's own statistics of `relation`'s columns (`stats()`, read from storage
        metadata on the first vector: no scan)."""
        if not columns:
            return {}
        calls = ", ".join(f'stats("{name.replace(chr(34), chr(34) * 2)}")' for name, _ in columns)
        cursor = self._cursor()
        try:
            row = cursor.execute(f"SELECT {calls} FROM {relation} LIMIT 1").fetchone()
        finally:
            cursor.close()
        if row is None:
            return {}
        return {
            name: _parsed(str(text), arrow)
            for (name, arrow), text in zip(columns, row, strict=True)
        }


def _parsed(text: str, arrow: pa.DataType) -> ColumnStatistics:
    """`[Min: 0, Max: 6][Has Null: true, …][Approx Unique: 7]` as ColumnStatistics; min/max
    only for numbers and dates (DuckDB keeps text bounds as truncated prefixes)."""
    found = dict(_STAT.findall(text))
    distinct = found.get("Approx Unique", "")
    return ColumnStatistics(
        distinct_count=int(distinct) if distinct.isdigit() else None,
        null_fraction=0.0 if found.get("Has Null") == "false" else None,
        min=_bound(found.get("Min"), arrow),
        max=_bound(found.get("Max"), arrow),
    )


def _bound(text: str | None, arrow: pa.DataType) -> Any:
    if not text:
        return None
    try:
        if pa.types.is_integer(arrow):
            return int(text)
        if pa.types.is_floating(arrow):
            return float(text)
        if pa.types.is_date(arrow):
            return dt.date.fromisoformat(text)
    except ValueError:
        return None
    return None
