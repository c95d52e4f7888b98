"""Staging for Spark streams: meshgate's memory stays its own plus a few batches, however
large the residual's input or result (a real cluster; the process's own peak RSS)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sqlglot import exp, parse_one

from benchmarks.spark_cluster import SparkCluster
from meshgate.execution.engine import DuckDBEngine
from meshgate.execution.spark import SparkEngine
from meshgate.execution.stream import Prefetch
from meshgate.spi import QueryContext

pytestmark = pytest.mark.postgres  # runs with the package's cluster

COLUMNS = 8
BATCH_ROWS = 64 * 1024
BATCHES = 100  # 100 batches of 64Ki rows x 8 BIGINT columns: 400 MiB of Arrow data
INPUT_BYTES = BATCHES * BATCH_ROWS * COLUMNS * 8
BOUND_BYTES = 120 * 2**20  # what the process may grow by: under a third of the input
SCHEMA = pa.schema([(f"c{i}", pa.int64()) for i in range(COLUMNS)])


def _batches() -> Iterator[pa.RecordBatch]:
    """Made one at a time: the input never exists whole in this process."""
    for number in range(BATCHES):
        start = number * BATCH_ROWS
        values = pa.array(range(start, start + BATCH_ROWS), pa.int64())
        yield pa.RecordBatch.from_arrays([pc.add(values, i) for i in range(COLUMNS)],
                                         schema=SCHEMA)  # fmt: skip


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"/proc/self/status has no {key}")


def _run(engine: SparkEngine, sql: str, batches: Iterator[pa.RecordBatch]) -> tuple[int, int]:
    """(rows, sum of c0) of `sql` over `batches`, fed through a fragment's Prefetch as a
    query's are; the result is read batch by batch and let go."""
    context = QueryContext.standalone("memory")
    prefetch = Prefetch("input", lambda: pa.RecordBatchReader.from_batches(SCHEMA, batches),
                        SCHEMA, context.cancel)  # fmt: skip
    rows = total = 0
    try:
        query = parse_one(sql, dialect="duckdb")
        assert isinstance(query, exp.Query)
        for batch in engine.run(query, {"input": prefetch.reader()}, {}, context):
            rows += batch.num_rows
            total += pc.sum(batch.column(0)).as_py() or 0
    finally:
        prefetch.close()
    return rows, total


def test_a_large_input_and_result_cross_spark_in_bounded_memory(
    spark_cluster: SparkCluster,
) -> None:
    """400 MiB in, 200 MiB back (every other row): the peak RSS grows by less than 120 MiB.
    A warm-up query first, so the Spark Connect client's imports and channel are not
    counted."""
    engine = SparkEngine(spark_cluster.remote, spark_cluster.staging_directory, DuckDBEngine())
    assert _run(engine, "SELECT c0 FROM input", islice(_batches(), 1))[0] == BATCH_ROWS
    pa.default_memory_pool().release_unused()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_bytes("VmRSS")
    rows, total = _run(engine, "SELECT * FROM input WHERE c0 % 2 = 0", _batches())
    grown = _status_bytes("VmHWM") - before
    every = BATCHES * BATCH_ROWS
    assert (rows, total) == (every // 2, sum(range(0, every, 2)))
    assert grown < BOUND_BYTES, (
        f"staging {INPUT_BYTES >> 20} MiB and reading back half of it grew the process by "
        f"{grown >> 20} MiB")
