"""Which error the caller reads when fragments fail (`execution.stream.first_source_error`).

A query's fragments run concurrently, each on its own prefetch thread; when the merge fails,
the fragment's own error explains it better than DuckDB's wrapped message. Each case runs real
prefetches over Arrow readers that fail the way sources do: a classified meshgate error, a
cancellation (the consequence of another's failure), or an exception nobody classified.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator

import pyarrow as pa
import pytest

from meshgate.errors import QueryCancelled, QueryValueError, SourceUnavailable
from meshgate.execution.stream import Prefetch, first_source_error
from meshgate.spi import CancelToken

SCHEMA = pa.schema([("id", pa.int64())])
UNEXPECTED = re.compile(
    r"a source failed while answering this query \(error id ([0-9a-f]{12})\); retry later, "
    r"or ask the administrator to check the server log"
)


def _reader(error: BaseException | None) -> Callable[[], pa.RecordBatchReader]:
    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.RecordBatch.from_pylist([{"id": 1}], schema=SCHEMA)
        if error is not None:
            raise error

    return lambda: pa.RecordBatchReader.from_batches(SCHEMA, batches())


def _finished(*errors: BaseException | None) -> list[Prefetch]:
    """Prefetches named f0, f1, ... that have read their fragment to its end or its error."""
    prefetches = [
        Prefetch(f"f{i}", _reader(error), SCHEMA, CancelToken()) for i, error in enumerate(errors)
    ]
    for prefetch in prefetches:
        assert [b.num_rows for b in _drain(prefetch)] == [1]
    return prefetches


def _drain(prefetch: Prefetch) -> list[pa.RecordBatch]:
    read: list[pa.RecordBatch] = []
    with contextlib.suppress(BaseException):  # the error stays on the prefetch, as in a run
        read.extend(prefetch.batches())
    return read


@pytest.fixture
def close() -> Iterator[list[Prefetch]]:
    opened: list[Prefetch] = []
    yield opened
    for prefetch in opened:
        prefetch.close()


def test_no_failed_fragment_means_no_source_error(close: list[Prefetch]) -> None:
    close.extend(_finished(None, None))
    assert first_source_error(close) is None
    assert first_source_error([]) is None


def test_a_classified_error_reaches_the_caller_as_it_is(close: list[Prefetch]) -> None:
    value = QueryValueError("a value in this query cannot be computed (...)")
    close.extend(_finished(None, value))
    assert first_source_error(close) is value


def test_the_first_failed_fragment_in_plan_order_wins(close: list[Prefetch]) -> None:
    first, second = SourceUnavailable("first"), QueryValueError("second")
    close.extend(_finished(None, first, second))
    assert first_source_error(close) is first


def test_a_failure_wins_over_the_cancellation_it_caused(close: list[Prefetch]) -> None:
    """A fragment cancelled because another failed must not hide that failure."""
    cancelled, down = QueryCancelled("the query was cancelled"), SourceUnavailable("down")
    close.extend(_finished(cancelled, None, down))
    assert first_source_error(close) is down


def test_a_cancellation_alone_is_the_answer(close: list[Prefetch]) -> None:
    first, second = QueryCancelled("first"), QueryCancelled("second")
    close.extend(_finished(first, second))
    assert first_source_error(close) is first


def test_an_unclassified_error_is_named_only_by_a_logged_id(
    close: list[Prefetch], caplog: pytest.LogCaptureFixture
) -> None:
    secret = RuntimeError("host db.internal, table cust_master_phys")
    close.extend(_finished(QueryCancelled("stopped"), secret, SourceUnavailable("later")))
    with caplog.at_level(logging.ERROR, logger="meshgate.execution.stream"):
        error = first_source_error(close)
    assert isinstance(error, SourceUnavailable)
    found = UNEXPECTED.fullmatch(error.message)
    assert found is not None, error.message
    assert error.error_id == found.group(1)
    assert error.detail is None  # nothing of the driver's text travels with the error
    [record] = caplog.records
    assert record.getMessage() == f"fragment f1 failed (error id {found.group(1)})"
    assert record.exc_info is not None
    assert record.exc_info[1] is secret


def test_each_unclassified_failure_gets_its_own_id(close: list[Prefetch]) -> None:
    close.extend(_finished(RuntimeError("a")))
    first, second = first_source_error(close), first_source_error(close)
    assert first is not None
    assert second is not None
    assert first.error_id != second.error_id
