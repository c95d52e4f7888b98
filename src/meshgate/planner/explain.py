"""A plan as rows for EXPLAIN: what each source receives, the tables the merge reads itself,
each policy stage, then the merge.

Admins see the physical plan. Everyone else sees its shape only: which kinds of source do
work and which policies apply, never physical names, source SQL, policy text or row
estimates, which could tell them what a policy hides (ARCHITECTURE.md §4.6).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from meshgate.planner.plan import FederatedPlan
from meshgate.spi import Connector

EXPLAIN_SCHEMA = pa.schema(
    [
        pa.field("step", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("sql", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("estimated_rows", pa.int64()),
    ]
)
HIDDEN = "(shown to admins only)"

Row = dict[str, str | int | None]


def explain_table(
    plan: FederatedPlan,
    connectors: Mapping[str, Connector],
    source_kinds: Mapping[str, str],
    *,
    admin: bool,
) -> pa.Table:
    """One row per fragment and policy stage, then the merge DuckDB runs."""
    rows: list[Row] = []
    _explain(plan, connectors, source_kinds, admin, rows, prefix="", engine=plan.engine)
    return pa.Table.from_pylist(rows, schema=EXPLAIN_SCHEMA)


def _explain(
    plan: FederatedPlan,
    connectors: Mapping[str, Connector],
    source_kinds: Mapping[str, str],
    admin: bool,
    rows: list[Row],
    prefix: str,
    engine: str,
) -> None:
    for fragment in plan.fragments:
        policies = f"policies {', '.join(fragment.policies)}" if fragment.policies else ""
        if admin:
            detail = "; ".join(p for p in (*fragment.pushed, policies) if p) or "scan"
            estimate = connectors[fragment.source].estimate_rows(fragment.handle)
            rows.append(
                {"step": f"{prefix}fragment {fragment.name}", "source": fragment.source,
                 "sql": fragment.sql, "detail": detail, "estimated_rows": estimate}
            )  # fmt: skip
        else:
            rows.append({"step": f"{prefix}fragment {fragment.name}",
                         "source": source_kinds.get(fragment.source, "source"),
                         "sql": HIDDEN, "detail": policies or "source query"})  # fmt: skip
    for scan in plan.merge_scans:
        rows.append({"step": f"{prefix}{scan.name}",
                     "source": scan.source if admin else source_kinds.get(scan.source, "source"),
                     "sql": scan.sql if admin else HIDDEN,
                     "detail": "read by the merge itself"})  # fmt: skip
    for stage in plan.stages:
        rows.append({"step": f"{prefix}policy stage {stage.name}", "source": engine,
                     "sql": "", "detail": f"{stage.product}: policies "
                     f"{', '.join(stage.policies)}, run apart from the query"})  # fmt: skip
        _explain(stage.plan, connectors, source_kinds, admin, rows, prefix=f"{prefix}  ",
                 engine=engine)
    if plan.residual_sql is not None:
        detail = "; ".join(plan.local_work) or "merge of the fragments"
        shown = detail if admin else "merge of the fragments"
        if plan.engine_reason:  # a choice was made: shown to all, its figures to admins only
            reason = plan.engine_reason if admin else plan.engine_reason.split(":")[0]
            shown += f"; residual on {engine} ({reason})"
        rows.append({"step": f"{prefix}merge", "source": engine,
                     "sql": plan.residual_sql if admin else HIDDEN, "detail": shown})
    elif not plan.fragments:
        rows.append({"step": f"{prefix}local", "source": "duckdb", "sql": "",
                     "detail": "no source"})  # fmt: skip
