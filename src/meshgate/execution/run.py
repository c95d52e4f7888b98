"""Execute a `FederatedPlan` and stream its result as Arrow."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from meshgate.errors import (
    MeshgateError,
    QueryCancelled,
    QueryTimeout,
    QueryValueError,
    SourceUnavailable,
)
from meshgate.execution.dynamic import BuildSide, filtered_handle
from meshgate.execution.stream import Prefetch, cast_batches, first_source_error
from meshgate.planner.plan import FederatedPlan, Fragment, PolicyStage
from meshgate.spi import Connector, QueryContext
from meshgate.sqlconnector.sandbox import engine_cursor

BATCH_ROWS = 64 * 1024
# The merge's errors about the values it computes: the user's query, not a source, is at fault.
_VALUE_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException,
                 duckdb.InvalidInputException)
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


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
    context: QueryContext,
    report: ExecutionReport | None = None,
) -> pa.RecordBatchReader:
    """Start every fragment now; stream the (merged) result lazily, cast to `plan.schema`.

    Every connector call receives `context`, whose cancel token is the one way a run stops
    early: its deadline sets it (a timer armed here), a front end sets it (a client's
    cancel), and so does closing the returned reader before its end or any failure; every
    fragment's source work and the merge stop on it. A run stopped by the token fails with
    QueryTimeout once the deadline has passed, else with QueryCancelled.
    """
    report = report if report is not None else ExecutionReport()
    timer = _deadline_timer(context)
    batches = _plan_batches(plan, connectors, context, report)
    return pa.RecordBatchReader.from_batches(plan.schema, _stoppable(batches, timer))


def _deadline_timer(context: QueryContext) -> threading.Timer | None:
    remaining = context.remaining()
    if remaining is None:
        return None
    timer = threading.Timer(remaining, context.cancel.cancel)
    timer.daemon = True
    timer.start()
    return timer


def _stoppable(
    batches: Iterator[pa.RecordBatch], timer: threading.Timer | None
) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    finally:
        if timer is not None:
            timer.cancel()


def _stop_error(context: QueryContext) -> MeshgateError:
    if context.expired:
        return QueryTimeout(
            "the query ran past its deadline and was stopped, at its sources too; narrow it "
            "(filters, LIMIT, fewer products) or allow it more time"
        )
    return QueryCancelled("the query was cancelled")


def _plan_batches(
    plan: FederatedPlan,
    connectors: Mapping[str, Connector],
    context: QueryContext,
    report: ExecutionReport,
    outermost: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Start the plan's fragments and policy stages; their (merged) batches, lazily."""
    build_names = {f.dynamic_filter.build for f in plan.fragments if f.dynamic_filter}
    builds: dict[str, BuildSide] = {}
    prefetches: list[Prefetch] = []
    for fragment in sorted(plan.fragments, key=lambda f: f.dynamic_filter is not None):
        connector = connectors[fragment.source]
        run = FragmentRun(fragment.name, fragment.source, fragment.sql)
        report.fragments[fragment.name] = run
        opener = _opener(connector, fragment, builds, run, context)
        prefetch = Prefetch(fragment.name, opener, fragment.handle.schema, context.cancel)
        prefetches.append(prefetch)
        if fragment.name in build_names:
            builds[fragment.name] = BuildSide(prefetch)
    for stage in plan.stages:
        prefetches.append(Prefetch(stage.name, _stage_opener(stage, connectors, context, report),
                                   stage.plan.schema, context.cancel))  # fmt: skip
    return _stream(plan, prefetches, builds, report, context, outermost)


def _stage_opener(
    stage: PolicyStage,
    connectors: Mapping[str, Connector],
    context: QueryContext,
    report: ExecutionReport,
) -> Callable[[], pa.RecordBatchReader]:
    """A policy stage runs as its own plan and merge query: the fence around a barrier."""

    def open_reader() -> pa.RecordBatchReader:
        batches = _plan_batches(stage.plan, connectors, context, report, outermost=False)
        return pa.RecordBatchReader.from_batches(stage.plan.schema, batches)

    return open_reader


def _opener(
    connector: Connector,
    fragment: Fragment,
    builds: Mapping[str, BuildSide],
    run: FragmentRun,
    context: QueryContext,
) -> Callable[[], pa.RecordBatchReader]:
    def open_reader() -> pa.RecordBatchReader:
        handle = fragment.handle
        if fragment.dynamic_filter is not None:
            build = builds[fragment.dynamic_filter.build]
            handle = filtered_handle(connector, handle, fragment.dynamic_filter, build)
            run.sql = connector.render(handle)
        return connector.execute(handle, context)

    return open_reader


def _stream(
    plan: FederatedPlan,
    prefetches: list[Prefetch],
    builds: Mapping[str, BuildSide],
    report: ExecutionReport,
    context: QueryContext,
    outermost: bool,
) -> Iterator[pa.RecordBatch]:
    """The plan's result cast to `plan.schema`: the one cast to the planned wire schema.

    Connectors already deliver their handle's schema (the connector contract: source types
    to the handle's engine types); what is cast here is the merge's (or the single
    fragment's) output to the exact types and names the plan announced to the client.
    """
    result: Generator[pa.RecordBatch, None, None]
    if plan.residual_sql is None:
        (only,) = prefetches
        result = only.batches()
    else:
        result = _merge(plan, prefetches, builds, context)
    cast = cast_batches(result, plan.schema)
    try:
        try:
            # Not `yield from`: on close the token must be set (below) before the merge and
            # the fragments are closed, so that they stop instead of finishing their work.
            for batch in cast:  # noqa: UP028
                yield batch
        except Exception as exc:
            source_error = first_source_error(prefetches)
            if source_error is None or source_error is exc:
                raise
            raise source_error from None
    except GeneratorExit:  # the consumer let go early: stop every source now
        context.cancel.cancel()
        raise
    except Exception:
        if not outermost:  # a policy stage's failure reaches the outer run, which stops all
            raise
        stopped = context.cancel.cancelled
        context.cancel.cancel()  # a failure stops the other fragments' work too
        if stopped:
            raise _stop_error(context) from None
        raise
    finally:
        cast.close()
        result.close()
        for prefetch in prefetches:
            prefetch.close()
            if prefetch.name in report.fragments:
                report.fragments[prefetch.name].rows = prefetch.rows


def _merge(
    plan: FederatedPlan,
    prefetches: list[Prefetch],
    builds: Mapping[str, BuildSide],
    context: QueryContext,
) -> Generator[pa.RecordBatch, None, None]:
    """The residual SQL over the fragment streams and local tables, in DuckDB."""
    assert plan.residual_sql is not None
    connection = engine_cursor()
    try:
        for prefetch in prefetches:
            build = builds.get(prefetch.name)
            connection.register(prefetch.name, (build or prefetch).reader())
        for name, table in plan.local_tables.items():
            connection.register(name, table)
        with context.cancel.stopping(connection.interrupt):
            yield from connection.execute(plan.residual_sql).to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as exc:
        source_error = first_source_error(prefetches)
        if source_error is not None:
            raise source_error from None
        if isinstance(exc, duckdb.InterruptException):
            raise QueryCancelled("the query was cancelled") from None
        if isinstance(exc, _VALUE_ERRORS):
            raise QueryValueError(
                f"a value in this query cannot be computed: {_without_values(exc)}; check "
                "the casts, literals and arithmetic in the query"
            ) from None
        raise SourceUnavailable(f"the merge step failed: {_first_line(exc)}") from None
    finally:
        connection.close()


def _without_values(exc: BaseException) -> str:
    """The error's first line with every quoted value replaced: it may quote a row's value."""
    return _QUOTED.sub("<value>", _first_line(exc))


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
