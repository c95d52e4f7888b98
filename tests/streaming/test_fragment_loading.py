"""Fragments loaded into the merge beside its own file scans: inserted at once, every row
arrives, a failure is the stream's own, and nothing of a query's load outlives it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp, parse_one

from meshgate.errors import QueryCancelled
from meshgate.execution import loading
from meshgate.execution.engine import DuckDBEngine
from meshgate.spi import CancelToken, QueryContext

SCHEMA = pa.schema([("k", pa.int64()), ("v", pa.string())])


def _batch(name: str, first: int, rows: int) -> pa.RecordBatch:
    keys = list(range(first, first + rows))
    return pa.record_batch([pa.array(keys, pa.int64()), pa.array([f"{name}{k}" for k in keys])],
                           schema=SCHEMA)  # fmt: skip


def _stream(name: str, batches: int, rows: int) -> pa.RecordBatchReader:
    produced = (_batch(name, b * rows, rows) for b in range(batches))
    return pa.RecordBatchReader.from_batches(SCHEMA, produced)


def _loaded_tables(database: duckdb.DuckDBPyConnection) -> list[str]:
    rows = database.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '__load_%'").fetchall()
    return [r[0] for r in rows]


def _dropped_soon(database: duckdb.DuckDBPyConnection) -> bool:
    deadline = time.monotonic() + 20
    while _loaded_tables(database) and time.monotonic() < deadline:
        time.sleep(0.01)
    return _loaded_tables(database) == []


def test_every_row_of_every_stream_is_loaded_under_its_name() -> None:
    database = duckdb.connect()
    streams = {"a": _stream("a", 20, 1000), "b": _stream("b", 5, 1000)}
    tables = loading.loaded_names(streams)
    loading.load_streams(database.cursor, streams, tables, CancelToken())
    a, b = (loading.quoted(tables[n]) for n in ("a", "b"))
    counted = database.execute(f"SELECT (SELECT count(*) FROM {a}), "
                               f"(SELECT count(DISTINCT k) FROM {a}), "
                               f"(SELECT count(*) FROM {b})").fetchall()  # fmt: skip
    assert counted == [(20_000, 20_000, 5_000)]
    janitor = loading.TableJanitor(database.cursor)
    janitor.drop(tables.values())
    assert _dropped_soon(database)
    janitor.close()


def test_streams_are_read_at_once_not_one_after_the_other() -> None:
    """Each stream gives its second batch only once the other has given its first: loaded
    one after the other, neither would finish (the sources would run one by one)."""
    started = {"a": threading.Event(), "b": threading.Event()}

    def waiting(name: str, other: str) -> pa.RecordBatchReader:
        def produce() -> Iterator[pa.RecordBatch]:
            yield _batch(name, 0, 10)
            started[name].set()
            if not started[other].wait(timeout=20):
                raise TimeoutError(f"{name} waited for {other}, which was not read")
            yield _batch(name, 10, 10)

        return pa.RecordBatchReader.from_batches(SCHEMA, produce())

    database = duckdb.connect()
    streams = {"a": waiting("a", "b"), "b": waiting("b", "a")}
    tables = loading.loaded_names(streams)
    loading.load_streams(database.cursor, streams, tables, CancelToken())
    for table in tables.values():
        counted = database.execute(f"SELECT count(*) FROM {loading.quoted(table)}").fetchall()
        assert counted == [(20,)]


def test_a_failing_stream_fails_the_load_with_its_own_error_and_stops_the_others() -> None:
    def broken() -> Iterator[pa.RecordBatch]:
        yield _batch("x", 0, 1)
        raise ValueError("the source went away")

    endless = pa.RecordBatchReader.from_batches(
        SCHEMA, (_batch("e", i * 10, 10) for i in range(10**9)))
    database = duckdb.connect()
    streams = {"a": endless, "b": pa.RecordBatchReader.from_batches(SCHEMA, broken())}
    with pytest.raises(ValueError, match="went away"):  # the endless one stopped too
        loading.load_streams(database.cursor, streams, loading.loaded_names(streams),
                             CancelToken())  # fmt: skip


def test_a_merge_over_loaded_fragments_answers_and_drops_its_tables() -> None:
    """Through the engine: two fragments beside a file scan are loaded, joined, answered;
    after the run (and after a cancelled one) no table of the load is left."""
    engine = DuckDBEngine()
    query = parse_one(
        'SELECT a.k, b.v FROM "a" JOIN "b" ON a.k = b.k '
        "JOIN range(0, 100000) AS r(k) ON r.k = a.k WHERE a.k % 1000 = 0 ORDER BY a.k",
        dialect="duckdb")
    assert isinstance(query, exp.Query)
    context = QueryContext.standalone()
    streams = {"a": _stream("a", 5, 1000), "b": _stream("b", 5, 1000)}
    table = pa.Table.from_batches(list(engine.run(query, streams, {}, context)))
    assert table.column("k").to_pylist() == [0, 1000, 2000, 3000, 4000]
    assert table.column("v").to_pylist() == ["b0", "b1000", "b2000", "b3000", "b4000"]
    database = engine._cursor()
    assert _dropped_soon(database)

    cancel = CancelToken()

    def cancelling() -> Iterator[pa.RecordBatch]:
        yield _batch("c", 0, 10)
        cancel.cancel()
        raise QueryCancelled("the query was cancelled")

    cancelled = QueryContext("cancelled", "", cancel=cancel)
    streams = {"a": pa.RecordBatchReader.from_batches(SCHEMA, cancelling()),
               "b": _stream("b", 5, 1000)}  # fmt: skip
    with pytest.raises(QueryCancelled):
        list(engine.run(query, streams, {}, cancelled))
    assert _dropped_soon(database)
    engine.close()
