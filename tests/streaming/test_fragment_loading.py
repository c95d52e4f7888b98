"""Fragments loaded into the merge beside its own file scans: drained at once, but the Arrow
memory they hold so is capped, and every row still arrives."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest

from meshgate.execution import engine


def _stream(name: str, batches: int, rows: int) -> pa.RecordBatchReader:
    schema = pa.schema([("k", pa.int64()), ("v", pa.string())])

    def produce() -> Iterator[pa.RecordBatch]:
        for b in range(batches):
            keys = pa.array(range(b * rows, (b + 1) * rows), pa.int64())
            yield pa.record_batch([keys, pa.array([f"{name}{k}" for k in keys.to_pylist()])],
                                  schema=schema)  # fmt: skip

    return pa.RecordBatchReader.from_batches(schema, produce())


def _loaded(budget: int, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    monkeypatch.setattr(engine, "LOAD_BUFFER_BYTES", budget)
    cursor = duckdb.connect()
    streams = {"a": _stream("a", 20, 1000), "b": _stream("b", 5, 1000)}
    engine._load_streams(cursor, streams)
    rows: list[tuple[int, int, int]] = cursor.execute(
        "SELECT (SELECT count(*) FROM a), (SELECT count(DISTINCT k) FROM a), "
        "(SELECT count(*) FROM b)"
    ).fetchall()
    return rows


@pytest.mark.parametrize("budget", [1, 50_000, 10**9], ids=["one-byte", "a-few-batches", "all"])
def test_every_row_is_loaded_whatever_the_buffer_budget(
    budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _loaded(budget, monkeypatch) == [(20_000, 20_000, 5_000)]


def test_drained_streams_stop_at_the_budget_and_keep_the_rest_unread() -> None:
    streams = {"a": _stream("a", 50, 1000), "b": _stream("b", 50, 1000)}
    drained = engine._drain_all(streams, 100_000)
    held = sum(b.nbytes for head, _ in drained.values() for b in head)
    per_batch = max(b.nbytes for head, _ in drained.values() for b in head)
    assert held < 100_000 + 2 * per_batch  # each reader adds at most the batch in its hand
    for name, (head, rest) in drained.items():
        assert rest is streams[name]  # more to come: read on by the insert
        assert sum(b.num_rows for b in head) + rest.read_all().num_rows == 50_000


def test_a_failing_stream_fails_the_load() -> None:
    schema = pa.schema([("k", pa.int64())])

    def broken() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch([pa.array([1], pa.int64())], schema=schema)
        raise ValueError("the source went away")

    streams = {"a": _stream("a", 3, 10), "b": pa.RecordBatchReader.from_batches(schema, broken())}
    with pytest.raises(ValueError, match="went away"):
        engine._load_streams(duckdb.connect(), streams)
