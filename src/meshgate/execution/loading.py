"""Fragments loaded into tables of the merge's DuckDB before it joins them.

Beside the merge's own file scans, DuckDB orders joins by statistics; a registered stream has
none, and Q5 of TPC-H then joined two small fragments on a nation key into 18M rows (9 s
instead of 0.9 s). Loaded, a fragment has DuckDB's row count and distinct counts. Only where
two or more streams could be joined with each other: loading waits for the whole stream (a
lone one, often the largest, stays streamed).

Every stream is inserted at once, each by its own cursor on its own thread, straight from the
stream into a table of a schema of the query's own (a temporary table would be visible to its
cursor only). Loaded one after the other, every other fragment stalled on its prefetch queue
until its turn, so the sources ran one by one (TPC-H Q9: orders' 1.5M rows began only once the
lineitem join was loaded); drained to Arrow first and copied after, the copies ran after the
slowest source had finished (Q10: 40 ms for customer's 150k rows) and the Arrow held was
memory outside DuckDB's limit. Inserted as they come, the rows sit under the limit and spill
as the merge's hash tables do.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshgate.spi import CANONICAL_DIALECT, CancelToken

_LOADING = "__loading"


class _Stopped(Exception):
    """A stream stopped because another stream of the load failed."""


def load_streams(
    open_cursor: Callable[[], duckdb.DuckDBPyConnection],
    streams: Mapping[str, pa.RecordBatchReader],
    cancel: CancelToken,
) -> str:
    """Insert each of `streams` into a table of its name in a new schema, all at once; the
    schema's name. The first failure, a stream's (as it was raised) or DuckDB's, stops the
    other streams at their next batch and is raised once every insert has ended, the schema
    dropped; on success the caller drops it (`drop_schema`) when the query ends."""
    schema = f"__load_{uuid.uuid4().hex}"
    setup = open_cursor()
    try:
        setup.execute(f"CREATE SCHEMA {_quoted(schema)}")
    finally:
        setup.close()
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
                cursor.execute(f"CREATE TABLE {_quoted(schema)}.{_quoted(name)} AS "
                               f"SELECT * FROM {_quoted(_LOADING)}")  # fmt: skip
            except BaseException as exc:  # re-raised on the caller's thread below
                if not stop.is_set():
                    errors.append(exc)
                stop.set()

    inserts = [threading.Thread(target=insert, args=item, name=f"load-{item[0]}", daemon=True)
               for item in streams.items()]  # fmt: skip
    for thread in inserts:
        thread.start()
    for thread in inserts:
        thread.join()
    if errors:
        drop_schema(open_cursor, schema)
        raise errors[0]
    return schema


def drop_schema(open_cursor: Callable[[], duckdb.DuckDBPyConnection], schema: str) -> None:
    """Drop a load's schema and its tables."""
    cursor = open_cursor()
    try:
        cursor.execute(f"DROP SCHEMA IF EXISTS {_quoted(schema)} CASCADE")
    finally:
        cursor.close()


def in_schema(query: exp.Query, names: Mapping[str, object], schema: str) -> exp.Query:
    """`query` with its references to the loaded `names` read from `schema`, under their own
    names (so that a column qualified by one still binds)."""
    ctes = {c.alias_or_name for c in query.find_all(exp.CTE)}
    moved = query.copy()
    for table in list(moved.find_all(exp.Table)):
        if table.db or table.catalog or table.name not in names or table.name in ctes:
            continue
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name, quoted=True)))
        table.set("db", exp.to_identifier(schema, quoted=True))
    return moved


def _quoted(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(CANONICAL_DIALECT)
