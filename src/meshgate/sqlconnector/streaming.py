"""A driver's batches as one Arrow reader of the handle's schema, cancelled on close.

The first batch is pulled at once, so connection and SQL errors surface when the fragment
starts (as the connector's own error type) rather than as Arrow errors on the first read;
closing the reader closes the driver's iterator, whose `finally` cancels the source query.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pyarrow as pa

DriverErrors = tuple[type[BaseException], ...]
Failure = Callable[[BaseException], BaseException]


def result_reader(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, driver_errors: DriverErrors,
    failed: Failure,
) -> pa.RecordBatchReader:  # fmt: skip
    """`batches` cast to `schema`; a driver error becomes `failed(error)`, now or mid-stream."""
    try:
        first = next(batches, None)
    except driver_errors as error:
        close_batches(batches)
        raise failed(error) from error
    except BaseException:
        close_batches(batches)
        raise
    inner = pa.RecordBatchReader.from_batches(
        schema, _cast(first, batches, schema, driver_errors, failed)
    )
    # Re-importing through the C stream makes close() release the generator at once, so
    # the driver's `finally` cancels the source query instead of waiting for GC.
    return pa.RecordBatchReader.from_stream(inner)


def close_batches(batches: Iterator[pa.RecordBatch]) -> None:
    """Stop a driver's batch iterator now (generators run their `finally`)."""
    close = getattr(batches, "close", None)
    if callable(close):
        close()


def _cast(
    first: pa.RecordBatch | None, rest: Iterator[pa.RecordBatch], schema: pa.Schema,
    driver_errors: DriverErrors, failed: Failure,
) -> Iterator[pa.RecordBatch]:  # fmt: skip
    try:
        if first is None:
            return
        for produced in itertools.chain([first], rest):
            batch = produced
            if batch.schema.names != schema.names:
                batch = batch.rename_columns(schema.names)
            yield batch if batch.schema == schema else batch.cast(schema)
    except driver_errors as error:
        raise failed(error) from error
    finally:
        close_batches(rest)
