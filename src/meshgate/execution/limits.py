"""Result limits: a stream that ends with RESOURCE_EXHAUSTED once it would pass its caller's
row or byte limit (`server.limits.max_result_rows` / `max_result_bytes`, or a session's lower
ones), never a silently short result. Raising closes the inner reader, which stops the
query's sources (`execution.run`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa

from meshgate.errors import ResourceExhausted


@dataclass(frozen=True)
class ResultLimits:
    """Most rows and bytes (Arrow size) one query may return, and longest it may run
    (seconds); None: no limit."""

    max_rows: int | None = None
    max_bytes: int | None = None
    timeout_seconds: float | None = None

    def lowered(self, other: ResultLimits | None) -> ResultLimits:
        """The stricter of the two limits on each measure (a session may only lower them)."""
        if other is None:
            return self
        return ResultLimits(_lower(self.max_rows, other.max_rows),
                            _lower(self.max_bytes, other.max_bytes),
                            _lower(self.timeout_seconds, other.timeout_seconds))  # fmt: skip


_Measure = TypeVar("_Measure", int, float)


def _lower(first: _Measure | None, second: _Measure | None) -> _Measure | None:
    if first is None or second is None:
        return first if second is None else second
    return min(first, second)


def limited(reader: pa.RecordBatchReader, limits: ResultLimits) -> pa.RecordBatchReader:
    """`reader`, failing before the batch that would take it past `limits`."""
    if limits.max_rows is None and limits.max_bytes is None:
        return reader
    return pa.RecordBatchReader.from_batches(reader.schema, _within(reader, limits))


def _within(reader: pa.RecordBatchReader, limits: ResultLimits) -> Iterator[pa.RecordBatch]:
    rows = nbytes = 0
    try:
        for batch in reader:
            rows += batch.num_rows
            nbytes += batch.nbytes
            if limits.max_rows is not None and rows > limits.max_rows:
                raise ResourceExhausted(
                    f"the result has more than {limits.max_rows:,} rows, the most this server "
                    "returns for one query (server.limits.max_result_rows, or your session's "
                    "lower max_result_rows); add a LIMIT or filters, aggregate, or ask an "
                    "administrator to raise the limit", limit="max_result_rows")
            if limits.max_bytes is not None and nbytes > limits.max_bytes:
                raise ResourceExhausted(
                    f"the result is larger than {limits.max_bytes:,} bytes, the most this "
                    "server returns for one query (server.limits.max_result_bytes, or your "
                    "session's lower max_result_bytes); select fewer columns, add a LIMIT or "
                    "filters, or ask an administrator to raise the limit",
                    limit="max_result_bytes")
            yield batch
    finally:
        reader.close()
