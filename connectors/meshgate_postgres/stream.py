"""Stream one statement's rows as Arrow batches, cancelling it when the consumer lets go.

The driver runs a query as `COPY (...) TO STDOUT (FORMAT binary)` and decodes it batch by
batch, so memory stays at one batch whatever the result size. The statement starts eagerly
(errors surface in `execute`, where they can be mapped), and the reader is a generator behind
an Arrow C stream: closing the reader, dropping it, or DuckDB releasing the stream finalises
the generator, which cancels the statement on the server if rows remain, then returns the
connection to the pool.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import adbc_driver_manager
import pyarrow as pa

from meshgate.errors import QueryCancelled
from meshgate.spi import CancelToken

from .failures import classify, source_error
from .pool import ConnectionPool, connection_survives
from .typemap import BoundaryCast

CANCEL_DRAIN_SECONDS = 2.0


def stream_batches(
    pool: ConnectionPool,
    sql: str,
    parameters: Sequence[Any],
    cast: BoundaryCast,
    batch_rows: int,
    cancel: CancelToken,
) -> Iterator[pa.RecordBatch]:
    """Run `sql` with `$n` parameters bound when first read; yield batches as `cast` makes them.

    Setting `cancel`, or closing the generator before the end, cancels the statement on the
    server (the driver sends a libpq cancel request); then the connection goes back to the
    pool.
    """
    conn, cursor, source = _start(pool, sql, parameters, cancel)

    def release(healthy: bool) -> None:
        pool.release(conn, healthy=healthy)

    def reusable_after(exc: BaseException) -> bool:
        # No transaction to roll back proves the session sound: a failed stream drops it.
        if classify(exc) == "unavailable":
            pool.discard_idle()
        return False

    yield from in_slices(read_batches(pool, cursor, source, cast, cancel, release,
                                      reusable_after), batch_rows)  # fmt: skip


def read_batches(
    pool: ConnectionPool,
    cursor: Any,
    source: pa.RecordBatchReader,
    cast: BoundaryCast,
    cancel: CancelToken,
    release: Callable[[bool], None],
    reusable_after: Callable[[BaseException], bool],
) -> Generator[pa.RecordBatch, None, None]:
    """The connector's one read loop: yield a started statement's batches through `cast`.

    Every read runs under `cancel`. A failure while streaming maps to the source's error
    with no retry (rows were already handed on: the query fails, never a short result), and
    `reusable_after(exc)` says whether the connection survives it. Closed before the end
    (or failing in `cast`), the statement is cancelled on the server and drained. In every
    case the reader and cursor close and `release(healthy)` gives the connection back.
    """
    healthy = True
    finished = False
    try:
        while True:
            try:
                with cancel.stopping(cursor.adbc_cancel):
                    batch = source.read_next_batch()
            except StopIteration:
                finished = True
                return
            except (adbc_driver_manager.Error, OSError) as exc:
                # The driver's stream reports server-side errors as OSError.
                finished = True
                healthy = reusable_after(exc)
                raise source_error(pool, exc, "streaming rows") from None
            yield cast.apply(batch)
    finally:
        if not finished:
            healthy = cancel_statement(cursor, source)
        source.close()
        cursor.close()
        release(healthy)


def in_slices(
    batches: Generator[pa.RecordBatch, None, None], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """`batches` in zero-copy slices of at most `batch_rows` (the driver fills ~16 MB
    batches); closing this closes `batches` at once, which cancels their statement."""
    with contextlib.closing(batches):
        for batch in batches:
            for start in range(0, batch.num_rows, batch_rows):
                yield batch.slice(start, batch_rows)


def _start(
    pool: ConnectionPool, sql: str, parameters: Sequence[Any], cancel: CancelToken
) -> tuple[Any, Any, pa.RecordBatchReader]:
    """Borrow a connection and start the statement: (connection, cursor, driver reader).

    A pooled connection may have died while idle (server restart, idle timeout, failover);
    a connection-level failure before any row is read drops the idle connections too and is
    retried once on a new connection. A run cancelled while it waited for a connection
    starts nothing.
    """
    for attempt in (1, 2):
        conn = pool.acquire()
        cursor = None
        try:
            if cancel.cancelled:
                raise QueryCancelled("the query was cancelled")
            cursor = conn.cursor()
            with cancel.stopping(cursor.adbc_cancel):
                cursor.execute(sql, tuple(parameters) if parameters else None)
                return conn, cursor, cursor.fetch_record_batch()
        except adbc_driver_manager.Error as exc:
            if cursor is not None:
                cursor.close()
            survives = connection_survives(exc)
            pool.release(conn, healthy=survives)
            if not survives and classify(exc) == "unavailable":
                pool.discard_idle()
                if attempt == 1:
                    continue
            raise source_error(pool, exc, "running a query") from None
        except BaseException:
            if cursor is not None:
                cursor.close()
            pool.release(conn, healthy=cursor is None)
            raise
    raise AssertionError("unreachable")


def cancel_statement(cursor: Any, source: pa.RecordBatchReader) -> bool:
    """Cancel the running statement; True if the connection is clean for the next query.

    A backend blocked writing COPY data to a client that stopped reading only notices the
    cancel once it can write again, so the rest of the stream is drained (a socket buffer
    and a batch, then the cancel error arrives). If that takes too long the connection is
    dropped instead, which ends the backend's query just as surely.
    """
    try:
        cursor.adbc_cancel()
    except adbc_driver_manager.Error:
        return False
    deadline = time.monotonic() + CANCEL_DRAIN_SECONDS
    while time.monotonic() < deadline:
        try:
            source.read_next_batch()
        except StopIteration:
            return True
        except (adbc_driver_manager.Error, OSError):
            return True
    return False

