"""Execute a `FederatedPlan` and stream its result as Arrow."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping

import duckdb
import pyarrow as pa

from meshgate.errors import MeshgateError, QueryCancelled, SourceUnavailable
from meshgate.execution.dynamic import BuildSide, filtered_handle
from meshgate.execution.stream import Prefetch, cast_batches, first_source_error
from meshgate.planner.plan import FederatedPlan, Fragment
from meshgate.spi import Connector

BATCH_ROWS = 64 * 1024


def execute_plan(plan: FederatedPlan, connectors: Mapping[str, Connector]) -> pa.RecordBatchReader:
    """Start every fragment now; stream the (merged) result lazily, cast to `plan.schema`."""
    build_names = {f.dynamic_filter.build for f in plan.fragments if f.dynamic_filter}
    builds: dict[str, BuildSide] = {}
    prefetches: list[Prefetch] = []
    for fragment in sorted(plan.fragments, key=lambda f: f.dynamic_filter is not None):
        connector = connectors[fragment.source]
        opener = _opener(connector, fragment, builds)
        prefetch = Prefetch(fragment.name, opener, fragment.handle.schema)
        prefetches.append(prefetch)
        if fragment.name in build_names:
            builds[fragment.name] = BuildSide(prefetch)
    return pa.RecordBatchReader.from_batches(plan.schema, _stream(plan, prefetches, builds))


def _opener(
    connector: Connector, fragment: Fragment, builds: Mapping[str, BuildSide]
) -> Callable[[], pa.RecordBatchReader]:
    dynamic = fragment.dynamic_filter
    if dynamic is None:
        return lambda: connector.execute(fragment.handle)
    build = builds[dynamic.build]
    return lambda: connector.execute(filtered_handle(connector, fragment.handle, dynamic, build))


def _stream(
    plan: FederatedPlan, prefetches: list[Prefetch], builds: Mapping[str, BuildSide]
) -> Iterator[pa.RecordBatch]:
    connection: duckdb.DuckDBPyConnection | None = None
    try:
        if plan.residual_sql is None:
            (only,) = prefetches
            yield from cast_batches(only.batches(), plan.schema)
            return
        connection = duckdb.connect(config={"threads": os.cpu_count() or 2})
        for prefetch in prefetches:
            build = builds.get(prefetch.name)
            connection.register(prefetch.name, (build or prefetch).reader())
        for name, table in plan.local_tables.items():
            connection.register(name, table)
        try:
            result = connection.execute(plan.residual_sql).to_arrow_reader(BATCH_ROWS)
            yield from cast_batches(iter(result), plan.schema)
        except duckdb.Error as exc:
            source_error = first_source_error(prefetches)
            if source_error is not None:
                raise source_error from None
            raise SourceUnavailable(f"the merge step failed: {_first_line(exc)}") from None
    except GeneratorExit:
        if connection is not None:
            connection.interrupt()
        raise
    except MeshgateError:
        raise
    except duckdb.InterruptException:
        raise QueryCancelled("the query was cancelled") from None
    finally:
        for prefetch in prefetches:
            prefetch.close()
        if connection is not None:
            connection.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
