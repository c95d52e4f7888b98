"""Dynamic filtering: a selective fragment's join keys restrict another fragment's scan.

The build side is collected (up to a bound) before the probe side starts; its distinct keys
become `probe_column IN (...)`, negotiated with the probe's connector like any filter. When
the build side is too large, or the connector refuses, the probe runs unfiltered: the merge
re-applies the join, so the answer never depends on this optimisation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from meshgate.execution.stream import Prefetch
from meshgate.planner.plan import DynamicFilter
from meshgate.spi import Connector, FilterSupport, PushedQuery
from meshgate.sql.parameters import literal

MAX_BUILD_ROWS = 1_000_000
MAX_KEYS = 50_000


class BuildSide:
    """Collects a fragment's batches until it ends or passes `MAX_BUILD_ROWS`."""

    def __init__(self, prefetch: Prefetch, max_rows: int = MAX_BUILD_ROWS) -> None:
        self.prefetch = prefetch
        self.schema = prefetch.schema
        self._batches: list[pa.RecordBatch] = []
        self._max_rows = max_rows
        self._complete = False
        self._source: Iterator[pa.RecordBatch] = prefetch.batches()
        self.ready = threading.Event()
        self._thread = threading.Thread(
            target=self._collect, daemon=True, name=f"build-{prefetch.name}"
        )
        self._thread.start()

    def _collect(self) -> None:
        rows = 0
        try:
            for batch in self._source:
                self._batches.append(batch)
                rows += batch.num_rows
                if rows > self._max_rows:
                    return
            self._complete = True
        except BaseException:
            self._complete = False
        finally:
            self.ready.set()

    def keys(self, column: str) -> list[object] | None:
        """The distinct non-NULL keys, or None when there are too many to send."""
        self.ready.wait()
        if not self._complete:
            return None
        table = pa.Table.from_batches(self._batches, schema=self.schema)
        values = pc.unique(table.column(column).combine_chunks()).drop_null()
        if len(values) > MAX_KEYS:
            return None
        keys: list[object] = values.to_pylist()
        return keys

    def batches(self) -> Iterator[pa.RecordBatch]:
        self.ready.wait()
        yield from self._batches
        if not self._complete:
            yield from self._source
            if self.prefetch.error is not None:
                raise self.prefetch.error

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())


def filtered_handle(
    connector: Connector, handle: PushedQuery, dynamic: DynamicFilter, build: BuildSide
) -> PushedQuery:
    """`handle` restricted to the build side's keys, if that is possible and worthwhile."""
    keys = build.keys(dynamic.build_column)
    if keys is None:
        return handle
    if not keys:
        condition: exp.Expr = exp.false()
    else:
        condition = exp.In(this=dynamic.probe_column.copy(), expressions=[literal(k) for k in keys])
    answer = connector.apply_filter(handle, [condition])
    if answer is None or answer.support[0] is FilterSupport.UNSUPPORTED:
        return handle
    return answer.handle
