"""Which residual engine runs a query: the in-process DuckDB or Spark (`server.residual`).

The choice is made while planning, because it changes the plan: with Spark, the planner
inlines no merge scan (`SparkEngine.can_read` is False), so a files source's tables arrive
as fragments, post-policy, like every other source's (ARCHITECTURE.md §4). `auto` plans for
Spark first and sums the sources' own estimates of the rows its fragments send
(`Connector.estimate_rows`: PostgreSQL's EXPLAIN, Parquet row counts); at
`spark.min_input_rows` or more the residual runs on Spark, else the query is planned again
for DuckDB (with its merge scans). EXPLAIN's merge row says which and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from meshgate.catalog.config import ResidualConfig
from meshgate.errors import ParameterError, UnsupportedQuery
from meshgate.execution.engine import ResidualEngine
from meshgate.execution.spark import SparkEngine, spark_unsupported_type
from meshgate.planner.plan import FederatedPlan
from meshgate.spi import Connector

MODES = ("auto", "duckdb", "spark")


def residual_mode(config: ResidualConfig, asked: str | None) -> str:
    """The mode a query plans with: the caller's `residual_engine`, else the configured one."""
    if asked is None:
        return config.mode
    mode = asked.strip().lower()
    if mode not in MODES:
        raise ParameterError(
            f"residual_engine must be one of auto, duckdb, spark (not {asked!r})"
        )
    if mode == "spark" and config.spark is None:
        raise UnsupportedQuery(
            "this server has no distributed residual engine (server.residual.spark is not "
            "set); use residual_engine=duckdb or auto, or ask an administrator to configure it"
        )
    return mode


def choose_residual(
    plan_on: Callable[[ResidualEngine], FederatedPlan],
    mode: str,
    duckdb: ResidualEngine,
    spark: SparkEngine | None,
    config: ResidualConfig,
    connectors: Mapping[str, Connector],
) -> FederatedPlan:
    """The query's plan for the engine `mode` selects, naming it and the reason."""
    if spark is None:  # no Spark configured: DuckDB, and EXPLAIN stays as it always was
        return plan_on(duckdb)
    if mode == "duckdb":
        return replace(plan_on(duckdb), engine="duckdb", engine_reason="asked: duckdb")
    plan = plan_on(spark)
    unsupported = _unsupported_input(plan)
    if mode == "spark":
        if unsupported is not None and plan.residual is not None:
            raise UnsupportedQuery(
                f"the distributed residual engine cannot take a column of type {unsupported} "
                "this query's merge reads; run it with residual_engine=duckdb or auto"
            )
        return replace(plan, engine="spark", engine_reason="asked: spark")
    assert config.spark is not None
    threshold = config.spark.min_input_rows
    rows = input_rows(plan, connectors)
    if plan.residual is None:
        reason = "auto: no residual, the sources answer alone"
    elif unsupported is not None:
        reason = f"auto: its merge reads a column of type {unsupported}, which Spark cannot take"
    elif rows is None:
        reason = "auto: the sources give no estimate of the rows entering the residual"
    elif rows >= threshold:
        return replace(plan, engine="spark", engine_reason=(
            f"auto: an estimated {rows} rows enter the residual, at least "
            f"server.residual.spark.min_input_rows ({threshold})"))
    else:
        reason = (f"auto: an estimated {rows} rows enter the residual, below "
                  f"server.residual.spark.min_input_rows ({threshold})")  # fmt: skip
    return replace(plan_on(duckdb), engine="duckdb", engine_reason=reason)


def input_rows(plan: FederatedPlan, connectors: Mapping[str, Connector]) -> int | None:
    """The sources' estimate of the rows every fragment of `plan` (its policy stages'
    included) sends to the residual; None when no source can estimate any of them."""
    known = False
    total = 0
    for fragment in plan.fragments:
        rows = connectors[fragment.source].estimate_rows(fragment.handle)
        if rows is not None:
            known = True
            total += rows
    for stage in plan.stages:
        rows = input_rows(stage.plan, connectors)
        if rows is not None:
            known = True
            total += rows
    return total if known else None


def _unsupported_input(plan: FederatedPlan) -> str | None:
    """A column type of some residual input that Spark cannot read from Parquet."""
    schemas = [f.handle.schema for f in plan.fragments]
    schemas += [t.schema for t in plan.local_tables.values()]
    for schema in schemas:
        found = spark_unsupported_type(schema)
        if found is not None:
            return found
    for stage in plan.stages:
        found = _unsupported_input(stage.plan)
        if found is not None:
            return found
    return None
