"""Fragments loaded into tables of the merge's DuckDB before it joins them.

Beside the merge's own file scans, DuckDB orders joins by statistics; a registered stream has
none, and Q5 of TPC-H then joined two small fragments on a nation key into 18M rows (9 s
instead of 0.9 s). Loaded, a fragment has DuckDB's row count and distinct counts. Only where
two or more streams could be joined with each other: loading waits for the whole stream (a
lone one, often the largest, stays streamed).

Every stream is inserted at once, each by its own cursor on its own thread, straight from the
stream into a table of the query's own (a temporary table would be visible to its cursor
only). Loaded one after the other, every other fragment stalled on its prefetch queue
until its turn, so the sources ran one by one (TPC-H Q9: orders' 1.5M rows began only once the
lineitem join was loaded); drained to Arrow first and copied after, the copies ran after the
slowest source had finished (Q10: 40 ms for customer's 150k rows) and the Arrow held was
memory outside DuckDB's limit. Inserted as they come, the rows sit under the limit and spill
as the merge's hash tables do.

The tables are uniquely named in the merge's main schema and dropped by a `TableJanitor`
off the query's path: a DROP, or a schema's CREATE and DROP, cost 1-4 ms of a 50 ms query.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import uuid
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import ExitStack

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshgate.spi import CancelToken
from meshgate.spi.threads import start_task

_log = logging.getLogger(__name__)
_LOADING = "__loading"


class _Stopped(Exception):
    """A stream stopped because another stream of the load failed."""


def loaded_names(streams: Mapping[str, object]) -> dict[str, str]:
    """A table name of the merge's database for each stream name, unique to this query."""
    prefix = f"__load_{uuid.uuid4().hex}_"
    return {name: prefix + name for name in streams}


def load_streams(
    open_cursor: Callable[[], duckdb.DuckDBPyConnection],
    streams: Mapping[str, pa.RecordBatchReader],
    tables: Mapping[str, str],
    cancel: CancelToken,
) -> None:
    """Insert each of `streams` into its table of `tables` (`loaded_names`), all at once.
    The first failure, a stream's (as it was raised) or DuckDB's, stops the other streams at
    their next batch and is raised once every insert has ended. Either way the caller drops
    `tables` when the query ends (`TableJanitor`)."""
    errors: list[BaseException] = []
    stop = threading.Event()

    def guarded(stream: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        while True:
            if stop.is_set():
                raise _Stopped
            try:
                batch = stream.read_next_batch()
            except StopIteration:
                return
            except BaseException as exc:  # the stream's own failure, raised as it came
                errors.append(exc)
                stop.set()
                raise
            yield batch

    def insert(name: str, stream: pa.RecordBatchReader) -> None:
        with ExitStack() as stack:
            cursor = open_cursor()
            stack.callback(cursor.close)
            try:
                stack.enter_context(cancel.stopping(cursor.interrupt))
                cursor.register(_LOADING, pa.RecordBatchReader.from_batches(
                    stream.schema, guarded(stream)))  # fmt: skip
                cursor.execute(f"CREATE TABLE {quoted(tables[name])} AS "
                               f"SELECT * FROM {quoted(_LOADING)}")  # fmt: skip
            except BaseException as exc:  # re-raised on the caller's thread below
                if not stop.is_set():
                    errors.append(exc)
                stop.set()

    items = list(streams.items())
    others = [start_task(insert, *item, name=f"load-{item[0]}") for item in items[1:]]
    insert(*items[0])  # the caller's thread loads one
    for task in others:
        task.join()
    if errors:
        raise errors[0]


class TableJanitor:
    """Drops loaded tables on a thread of its own, so that a query's end does not wait for
    the DROPs (2-4 ms each time); `close` drops what is queued and stops it. A process that
    exits without closing its engine closes its janitors first: a DROP still running when
    the interpreter tears DuckDB down aborts the process."""

    def __init__(self, open_cursor: Callable[[], duckdb.DuckDBPyConnection | None]) -> None:
        self._open_cursor = open_cursor
        self._queue: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        _JANITORS.add(self)

    def drop(self, tables: Collection[str]) -> None:
        self._queue.put(list(tables))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="meshgate-load-janitor",
                                                daemon=True)  # fmt: skip
                self._thread.start()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _run(self) -> None:
        while (tables := self._queue.get()) is not None:
            cursor = self._open_cursor()
            if cursor is None:  # the database is closed: its tables went with it
                continue
            try:
                for table in tables:
                    cursor.execute(f"DROP TABLE IF EXISTS {quoted(table)}")
            except duckdb.Error as exc:
                _log.warning("dropping a query's loaded tables failed: %s", exc)
            finally:
                cursor.close()


_JANITORS: weakref.WeakSet[TableJanitor] = weakref.WeakSet()


@atexit.register
def _close_janitors() -> None:
    for janitor in list(_JANITORS):
        janitor.close()


def renamed_tables(query: exp.Query, tables: Mapping[str, str]) -> exp.Query:
    """`query` reading each of `tables` (stream name: loaded table) from its loaded table,
    under the stream's name as alias (so that a column qualified by it still binds)."""
    ctes = {c.alias_or_name for c in query.find_all(exp.CTE)}
    moved = query.copy()
    for table in list(moved.find_all(exp.Table)):
        if table.db or table.catalog or table.name not in tables or table.name in ctes:
            continue
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name, quoted=True)))
        table.set("this", exp.to_identifier(tables[table.name], quoted=True))
    return moved


def quoted(name: str) -> str:
    """`name` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'
