"""The table `meshgate check --quality` prints: one row per expectation run."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from meshgate.quality.runner import CheckRun

REPORT = pa.schema(
    [
        pa.field("product", pa.string()),
        pa.field("expectation", pa.string()),
        pa.field("outcome", pa.string()),
        pa.field("observed", pa.string()),
        pa.field("expected", pa.string()),
        pa.field("duration_seconds", pa.float64()),
    ]
)


def quality_table(runs: Sequence[CheckRun]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "product": r.result.product,
                "expectation": r.result.expectation,
                "outcome": r.result.outcome,
                "observed": _observed(r.result.observed),
                "expected": r.result.detail,
                "duration_seconds": round(r.result.duration_seconds, 3),
            }
            for r in runs
        ],
        schema=REPORT,
    )


def _observed(value: float | None) -> str | None:
    """Counts as whole numbers, ages to the second."""
    if value is None:
        return None
    return str(int(value)) if value == int(value) else f"{value:.0f}"
