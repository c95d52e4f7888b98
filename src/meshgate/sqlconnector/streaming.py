"""A driver's batches as one Arrow reader of the handle's schema, cancelled on close.

The first batch is pulled at once, so connection and SQL errors surface when the fragment
starts (as the connector's own error type) rather than as Arrow errors on the first read;
closing the reader closes the driver's iterator, whose `finally` cancels the source query.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

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


def _to_wire(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` as the wire schema. Finer timestamps are cut to the wire's microseconds (the
    documented unit policy: a TIMESTAMP_NS column loses its last three digits); every other
    cast stays safe, so an overflow or a bad value is an error, never a silent change."""
    columns = [
        pc.cast(column, field.type, safe=False)
        if _cuts_timestamp(column.type, field.type)
        else _decoded(column).cast(field.type)
        for column, field in zip(batch.columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _decoded(column: pa.Array) -> pa.Array:
    """Run-end encoded arrays have no cast to their values' type: expand them first."""
    if pa.types.is_run_end_encoded(column.type):
        return pc.run_end_decode(column)
    return column


def _cuts_timestamp(produced: pa.DataType, wire: pa.DataType) -> bool:
    if not (pa.types.is_timestamp(produced) and pa.types.is_timestamp(wire)):
        return False
    return bool(produced.unit == "ns" and wire.unit == "us" and produced.tz == wire.tz)


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
            yield batch if batch.schema == schema else _to_wire(batch, schema)
    except driver_errors as error:
        raise failed(error) from error
    finally:
        close_batches(rest)
