"""Execute a `FederatedPlan` and stream its result as Arrow.

Fragments start at once, each read on its own thread (`stream.Prefetch`; a plan that is one
fragment alone is read on the consumer's thread, `stream.InlineRead`); the residual runs
on the service's `ResidualEngine` over their streams; the result is cast to the plan's wire
schema here, the one place that cast happens. The run's QueryContext is the one way it stops
early: its cancel token reaches the fragments, their drivers and the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from meshgate.errors import MeshgateError, QueryCancelled, QueryTimeout, StatementOutdated
from meshgate.execution.dynamic import MAX_LISTED_KEYS, BuildSide, filtered_handle
from meshgate.execution.engine import ResidualEngine
from meshgate.execution.stream import InlineRead, Prefetch, cast_batches, first_source_error
from meshgate.planner.plan import FederatedPlan, Fragment, PolicyStage
from meshgate.spi import CANONICAL_DIALECT, Connector, QueryContext


@dataclass
class FragmentRun:
    """What one fragment actually did: the SQL its source received and the rows it sent."""

    name: str
    source: str
    sql: str
    rows: int = 0
    bytes: int = 0


@dataclass
class ExecutionReport:
    """Filled in while a plan runs; read once its reader is exhausted or closed."""

    fragments: dict[str, FragmentRun] = field(default_factory=dict)


def execute_plan(
    plan: FederatedPlan,
    connectors: Mapping[str, Connector],
    engine: ResidualEngine,
    context: QueryContext,
    report: ExecutionReport | None = None,
) -> pa.RecordBatchReader:
    """Start every fragment now (a plan that is one fragment alone: at the first read, on
    the reader's thread); stream the (merged) result lazily, cast to `plan.schema`.

    Every connector call receives `context`, whose cancel token is the one way a run stops
    early: its deadline sets it (a timer armed here), a front end sets it (a client's
    cancel), and so does closing the returned reader before its end or any failure; every
    fragment's source work and the merge stop on it. A run stopped by the token fails with
    QueryTimeout once the deadline has passed, else with QueryCancelled.
    """
    report = report if report is not None else ExecutionReport()
    timer = _deadline_timer(context)
    batches = _plan_batches(plan, _Run(connectors, engine, context, report))
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


@dataclass(frozen=True)
class _Run:
    """What every plan of one run (the query's and its policy stages') shares."""

    connectors: Mapping[str, Connector]
    engine: ResidualEngine
    context: QueryContext
    report: ExecutionReport


def _plan_batches(plan: FederatedPlan, run: _Run, outermost: bool = True
                  ) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """Start the plan's fragments and policy stages; their (merged) batches, lazily."""
    build_names = {f.dynamic_filter.build for f in plan.fragments if f.dynamic_filter}
    builds: dict[str, BuildSide] = {}
    prefetches: list[Prefetch | InlineRead] = []
    cancel = run.context.cancel
    whole_at_one_source = plan.residual is None and not plan.stages and len(plan.fragments) == 1
    part = run.context.slice
    if part is not None and not (whole_at_one_source and plan.fragments[0].source == part.source):
        # Every part would return the whole result: refuse rather than repeat rows.
        raise StatementOutdated(
            "this part of a result split into several endpoints no longer matches the "
            "query's plan (the configuration changed); run the query again"
        )
    if whole_at_one_source:
        (fragment,) = plan.fragments  # the whole query at one source: read it right here
        done = FragmentRun(fragment.name, fragment.source, fragment.sql)
        run.report.fragments[fragment.name] = done
        opener = _opener(run.connectors[fragment.source], fragment, builds, done, run.context)
        prefetches.append(InlineRead(fragment.name, opener, fragment.handle.schema,
                                     source=fragment.source))  # fmt: skip
        return _stream(plan, prefetches, builds, run, outermost)
    for fragment in sorted(plan.fragments, key=lambda f: f.dynamic_filter is not None):
        connector = run.connectors[fragment.source]
        done = FragmentRun(fragment.name, fragment.source, fragment.sql)
        run.report.fragments[fragment.name] = done
        opener = _opener(connector, fragment, builds, done, run.context)
        prefetch = Prefetch(fragment.name, opener, fragment.handle.schema, cancel,
                            source=fragment.source)
        prefetches.append(prefetch)
        if fragment.name in build_names:
            listed, most = _listed_column(plan, fragment)
            builds[fragment.name] = BuildSide(prefetch, listed_column=listed, max_keys=most)
    for stage in plan.stages:
        opener = _stage_opener(stage, run)
        prefetches.append(Prefetch(stage.name, opener, stage.plan.schema, cancel))
    return _stream(plan, prefetches, builds, run, outermost)


def _listed_column(plan: FederatedPlan, build: Fragment) -> tuple[str | None, int]:
    """The build column, when every dynamic filter `build` feeds is worth only a key list,
    and the most keys any of them lists."""
    fed = [f.dynamic_filter for f in plan.fragments
           if f.dynamic_filter is not None and f.dynamic_filter.build == build.name]  # fmt: skip
    columns = {d.build_column for d in fed}
    most = max((d.max_keys for d in fed), default=MAX_LISTED_KEYS)
    if not fed or not all(d.listed_only for d in fed) or len(columns) != 1:
        return None, most
    return columns.pop(), most


def _stage_opener(stage: PolicyStage, run: _Run) -> Callable[[], pa.RecordBatchReader]:
    """A policy stage runs as its own plan and merge query: the fence around a barrier."""

    def open_reader() -> pa.RecordBatchReader:
        batches = _plan_batches(stage.plan, run, outermost=False)
        return pa.RecordBatchReader.from_batches(stage.plan.schema, batches)

    return open_reader


def _opener(
    connector: Connector,
    fragment: Fragment,
    builds: Mapping[str, BuildSide],
    done: FragmentRun,
    context: QueryContext,
) -> Callable[[], pa.RecordBatchReader]:
    def open_reader() -> pa.RecordBatchReader:
        handle = fragment.handle
        if fragment.dynamic_filter is not None:
            build = builds[fragment.dynamic_filter.build]
            dynamic = fragment.dynamic_filter
            handle, key_set = filtered_handle(connector, handle, dynamic, build)
            # A key set is one literal of up to 50,000 keys: the audit and the query history
            # keep its size, not its keys.
            done.sql = connector.render(handle) if key_set is None else (
                f"{fragment.sql} -- and {dynamic.probe_column.sql(CANONICAL_DIALECT)} is one "
                f"of {key_set} keys of {dynamic.build}.{dynamic.build_column}")  # fmt: skip
        return connector.execute(handle, context)

    return open_reader


def _stream(
    plan: FederatedPlan,
    prefetches: list[Prefetch | InlineRead],
    builds: Mapping[str, BuildSide],
    run: _Run,
    outermost: bool,
) -> Iterator[pa.RecordBatch]:
    """The plan's result cast to `plan.schema`: the one cast to the planned wire schema.

    Connectors already deliver their handle's schema (the connector contract: source types
    to the handle's engine types); what is cast here is the engine's (or the single
    fragment's) output to the exact types and names the plan announced to the client.
    """
    context = run.context
    result: Generator[pa.RecordBatch, None, None]
    if plan.residual is None:
        (only,) = prefetches
        result = only.batches()
    else:
        streams = {p.name: (builds.get(p.name) or p).reader() for p in prefetches}
        result = run.engine.run(plan.residual, streams, plan.local_tables, context)
    cast = cast_batches(result, plan.schema)
    try:
        try:
            # Not `yield from`: on close the token must be set (below) before the engine and
            # the fragments are closed, so that they stop instead of finishing their work.
            for batch in cast:  # noqa: UP028
                yield batch
        except Exception as exc:
            source_error = first_source_error(prefetches)  # a source failing explains the rest
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
            if prefetch.name in run.report.fragments:
                run.report.fragments[prefetch.name].rows = prefetch.rows
                run.report.fragments[prefetch.name].bytes = prefetch.bytes
