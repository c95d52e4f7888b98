"""Arrow streams between stages: prefetching fragment readers and the cast at the boundary."""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence

import pyarrow as pa

from meshgate.errors import MeshgateError, QueryCancelled, SourceUnavailable
from meshgate.spi import CancelToken
from meshgate.spi.threads import start_task

_END = object()
_POLL_SECONDS = 0.05  # how long a consumer waits for a batch before it looks at the token
log = logging.getLogger(__name__)


class Prefetch:
    """Reads a fragment's batches on its own thread into a small queue.

    This is what makes the fragments of one query run concurrently while DuckDB consumes
    them, with backpressure (the queue is bounded), and keeps the first source error so the
    merge can report it instead of DuckDB's wrapped message. A consumer waiting for a batch
    stops as soon as the query's `cancel` token is set, whatever the source is doing.
    `source` names the fragment's source on its SourceUnavailable errors (told to admins).
    """

    def __init__(
        self,
        name: str,
        open_reader: Callable[[], pa.RecordBatchReader],
        schema: pa.Schema,
        cancel: CancelToken,
        depth: int = 4,
        source: str | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.schema = schema
        self._cancel = cancel
        self.rows = 0  # rows that left the source, for the audit record and benchmarks
        self.bytes = 0  # their Arrow size as the source's stream delivered them
        self.error: BaseException | None = None
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._reader: pa.RecordBatchReader | None = None
        self._thread = start_task(self._run, open_reader, name=f"fragment-{name}")

    def _run(self, open_reader: Callable[[], pa.RecordBatchReader]) -> None:
        try:
            self._reader = open_reader()
            for batch in self._reader:
                self.rows += batch.num_rows
                self.bytes += batch.nbytes
                if not self._put(batch):
                    return
        except BaseException as exc:
            if isinstance(exc, SourceUnavailable) and exc.source is None:
                exc.source = self.source
            self.error = exc
        finally:
            if self._reader is not None:
                self._reader.close()
            self._put(_END)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def batches(self) -> Generator[pa.RecordBatch, None, None]:
        while True:
            try:
                item = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._cancel.cancelled:
                    raise QueryCancelled("the query was cancelled") from None
                continue
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            assert isinstance(item, pa.RecordBatch)
            yield item

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)


class InlineRead:
    """Reads a fragment's batches on the consumer's own thread, with `Prefetch`'s counters
    and error keeping.

    For a plan that is one fragment and nothing else: nothing runs beside it, so a thread
    would only add its start (a large part of a point lookup) and a hand-over per batch.
    Cancelling still stops the source, through the token the connector holds.
    """

    def __init__(
        self,
        name: str,
        open_reader: Callable[[], pa.RecordBatchReader],
        schema: pa.Schema,
        source: str | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.schema = schema
        self.rows = 0
        self.bytes = 0
        self.error: BaseException | None = None
        self._open = open_reader
        self._reader: pa.RecordBatchReader | None = None

    def batches(self) -> Generator[pa.RecordBatch, None, None]:
        try:
            self._reader = self._open()
            for batch in self._reader:
                self.rows += batch.num_rows
                self.bytes += batch.nbytes
                yield batch
        except Exception as exc:
            if isinstance(exc, SourceUnavailable) and exc.source is None:
                exc.source = self.source
            self.error = exc
            raise
        finally:
            self.close()

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()


def cast_batches(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema
) -> Generator[pa.RecordBatch, None, None]:
    """Cast each batch to the planned wire schema (names from the plan, types exact).

    Called once per plan, on its output (`run._stream`): the one cast to the wire schema.
    """
    for batch in batches:
        if batch.num_rows == 0 and batch.num_columns == 0:
            continue
        columns = [
            column if column.type == field.type else column.cast(field.type)
            for column, field in zip(batch.columns, schema, strict=True)
        ]
        yield pa.RecordBatch.from_arrays(columns, schema=schema)


def first_source_error(prefetches: Sequence[Prefetch | InlineRead]) -> MeshgateError | None:
    """The error a fragment raised, as the user should see it.

    When several fragments fail, the first in plan order whose failure is not a cancellation
    wins: a cancelled fragment was stopped because of another's failure (or the caller's
    cancel), so the failure is what explains the query's end. An error meshgate did not
    classify is shown only by an id the operator finds in the log.
    """
    failed = [prefetch for prefetch in prefetches if prefetch.error is not None]
    if not failed:
        return None
    cause = next((p for p in failed if not isinstance(p.error, QueryCancelled)), failed[0])
    if isinstance(cause.error, MeshgateError):
        return cause.error
    error_id = uuid.uuid4().hex[:12]
    log.error("fragment %s failed (error id %s)", cause.name, error_id, exc_info=cause.error)
    unexpected = SourceUnavailable(
        f"a source failed while answering this query (error id {error_id}); "
        "retry later, or ask the administrator to check the server log",
        source=cause.source,
    )
    unexpected.error_id = error_id
    return unexpected
