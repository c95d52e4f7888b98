"""Dynamic filtering: a selective fragment's join keys restrict another fragment's scan.

The build side is collected (up to a bound) before the probe side starts; its distinct keys
become `probe_column IN (...)` when there are few of them, else `probe_column BETWEEN min AND
max` (sources prune partitions and pages by range), negotiated with the probe's connector like
any filter. Long IN-lists are not worth it: every planning step copies the expression tree,
which costs more than a 10k-row fragment takes to run. A source that takes key sets
(`Capabilities.key_sets`) is handed up to the filter's `max_keys` integer keys as one value
instead (`Connector.restrict_to_keys`; TPC-H Q12: 29k order keys of 1.5M orders). When the
build side is too large, or the connector refuses, the probe runs unfiltered: the merge
re-applies the join, so the answer never depends on this optimisation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from meshgate.execution.stream import Prefetch
from meshgate.planner.cost import MAX_LISTED_KEYS
from meshgate.planner.plan import DynamicFilter
from meshgate.query.literals import literal
from meshgate.spi import Connector, FilterSupport, PushedQuery
from meshgate.spi.threads import start_task

MAX_BUILD_ROWS = 1_000_000
__all__ = ["MAX_BUILD_ROWS", "MAX_LISTED_KEYS", "BuildSide", "filtered_handle"]


class BuildSide:
    """Collects a fragment's batches until it ends or passes `MAX_BUILD_ROWS`.

    With `listed_column` (every filter it feeds is `listed_only`) it also gives up once that
    column has shown more than `max_keys` distinct keys: no list can be made, a range
    would pass nearly every row, and the probe should not wait for the rest (TPC-H Q9: the
    1.5M orders waited for the whole lineitem join).
    """

    def __init__(self, prefetch: Prefetch, max_rows: int = MAX_BUILD_ROWS,
                 listed_column: str | None = None,
                 max_keys: int = MAX_LISTED_KEYS) -> None:  # fmt: skip
        self.prefetch = prefetch
        self.schema = prefetch.schema
        self._batches: list[pa.RecordBatch] = []
        self._max_rows = max_rows
        self._listed_column = listed_column
        self._max_keys = max_keys
        self._complete = False
        self._source: Iterator[pa.RecordBatch] = prefetch.batches()
        self.ready = threading.Event()
        self._thread = start_task(self._collect, name=f"build-{prefetch.name}")

    def _collect(self) -> None:
        rows = 0
        seen: pa.Array | None = None
        try:
            for batch in self._source:
                self._batches.append(batch)
                rows += batch.num_rows
                if rows > self._max_rows:
                    return
                if self._listed_column is not None:
                    keys = batch.column(self._listed_column)
                    seen = pc.unique(keys if seen is None else pa.concat_arrays([seen, keys]))
                    if len(seen.drop_null()) > self._max_keys:
                        return
            self._complete = True
        except BaseException:
            self._complete = False
        finally:
            self.ready.set()

    def keys(self, column: str) -> pa.Array | None:
        """The distinct non-NULL keys, or None when the build side was too large to collect."""
        self.ready.wait()
        if not self._complete:
            return None
        table = pa.Table.from_batches(self._batches, schema=self.schema)
        values: pa.Array = pc.unique(table.column(column).combine_chunks()).drop_null()
        return values

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
) -> tuple[PushedQuery, int | None]:
    """`handle` restricted to the build side's keys, if that is possible and worthwhile, and
    how many keys went as a key set (None: none did; the SQL then lists what it received)."""
    keys = build.keys(dynamic.build_column)
    if keys is None:
        return handle, None
    column = dynamic.probe_column.copy()
    condition: exp.Expr
    if len(keys) == 0:
        condition = exp.false()
    elif len(keys) <= MAX_LISTED_KEYS:
        condition = exp.In(this=column, expressions=[literal(k) for k in keys.to_pylist()])
    elif len(keys) <= dynamic.max_keys:  # planned above MAX_LISTED_KEYS for key sets only
        restricted = connector.restrict_to_keys(handle, column, keys)
        return (handle, None) if restricted is None else (restricted, len(keys))
    else:
        bounds = pc.min_max(keys)
        condition = exp.Between(
            this=column,
            low=literal(bounds["min"].as_py()),
            high=literal(bounds["max"].as_py()),
        )
    answer = connector.apply_filter(handle, [condition])
    if answer is None or answer.support[0] is FilterSupport.UNSUPPORTED:
        return handle, None
    return answer.handle, None
