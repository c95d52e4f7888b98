"""Execute a `FederatedPlan` and stream its result as Arrow."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from meshgate.errors import MeshgateError, QueryCancelled, QueryValueError, SourceUnavailable
from meshgate.execution.dynamic import BuildSide, filtered_handle
from meshgate.execution.stream import Prefetch, cast_batches, first_source_error
from meshgate.planner.plan import FederatedPlan, Fragment, PolicyStage
from meshgate.spi import Connector
from meshgate.sqlconnector.sandbox import engine_cursor

BATCH_ROWS = 64 * 1024
# The merge's errors about the values it computes: the user's query, not a source, is at fault.
_VALUE_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException,
                 duckdb.InvalidInputException)
# From the first quote to the last of its kind: DuckDB does not escape quotes inside the value it
# quotes ('O'Brien'), so a pairwise match would leave part of the value outside the quotes.
_QUOTED = re.compile(r"'.*'|\".*\"")


@dataclass
class FragmentRun:
    """What one fragment actually did: the SQL its source received and the rows it sent."""

    name: str
    source: str
    sql: str
    rows: int = 0


@dataclass
class ExecutionReport:
    """Filled in while a plan runs; read once its reader is exhausted or closed."""

    fragments: dict[str, FragmentRun] = field(default_factory=dict)


def execute_plan(
    plan: FederatedPlan,
    connectors: Mapping[str, Connector],
    report: ExecutionReport | None = None,
) -> pa.RecordBatchReader:
    """Start every fragment now; stream the (merged) result lazily, cast to `plan.schema`."""
    report = report if report is not None else ExecutionReport()
    build_names = {f.dynamic_filter.build for f in plan.fragments if f.dynamic_filter}
    builds: dict[str, BuildSide] = {}
    prefetches: list[Prefetch] = []
    for fragment in sorted(plan.fragments, key=lambda f: f.dynamic_filter is not None):
        connector = connectors[fragment.source]
        run = FragmentRun(fragment.name, fragment.source, fragment.sql)
        report.fragments[fragment.name] = run
        opener = _opener(connector, fragment, builds, run)
        prefetch = Prefetch(fragment.name, opener, fragment.handle.schema)
        prefetches.append(prefetch)
        if fragment.name in build_names:
            builds[fragment.name] = BuildSide(prefetch)
    for stage in plan.stages:
        prefetches.append(Prefetch(stage.name, _stage_opener(stage, connectors, report),
                                   stage.plan.schema))  # fmt: skip
    return pa.RecordBatchReader.from_batches(plan.schema, _stream(plan, prefetches, builds, report))


def _stage_opener(
    stage: PolicyStage, connectors: Mapping[str, Connector], report: ExecutionReport
) -> Callable[[], pa.RecordBatchReader]:
    """A policy stage runs as its own plan and merge query: the fence around a barrier."""

    def open_reader() -> pa.RecordBatchReader:
        return execute_plan(stage.plan, connectors, report)

    return open_reader


def _opener(
    connector: Connector, fragment: Fragment, builds: Mapping[str, BuildSide], run: FragmentRun
) -> Callable[[], pa.RecordBatchReader]:
    def open_reader() -> pa.RecordBatchReader:
        handle = fragment.handle
        if fragment.dynamic_filter is not None:
            build = builds[fragment.dynamic_filter.build]
            handle = filtered_handle(connector, handle, fragment.dynamic_filter, build)
            run.sql = connector.render(handle)
        return connector.execute(handle)

    return open_reader


def _stream(
    plan: FederatedPlan,
    prefetches: list[Prefetch],
    builds: Mapping[str, BuildSide],
    report: ExecutionReport,
) -> Iterator[pa.RecordBatch]:
    connection: duckdb.DuckDBPyConnection | None = None
    try:
        if plan.residual_sql is None:
            (only,) = prefetches
            try:
                yield from cast_batches(only.batches(), plan.schema)
            except (MeshgateError, GeneratorExit):
                raise
            except Exception:
                source_error = first_source_error(prefetches)
                if source_error is None:
                    raise
                raise source_error from None
            return
        connection = engine_cursor()
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
            if isinstance(exc, _VALUE_ERRORS):
                raise QueryValueError(
                    f"a value in this query cannot be computed: {_without_values(exc)}; check "
                    "the casts, literals and arithmetic in the query"
                ) from None
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
            if prefetch.name in report.fragments:
                report.fragments[prefetch.name].rows = prefetch.rows
        if connection is not None:
            connection.close()


def _without_values(exc: BaseException) -> str:
    """The error's first line with every quoted value replaced: it may quote a row's value."""
    return _QUOTED.sub("<value>", _first_line(exc))


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
