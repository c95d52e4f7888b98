"""TPC-H Q3 moves no more rows out of PostgreSQL than the best hand-written pushdown (x1.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.run import measure_q3_transfer
from meshgate.service import QueryService

pytestmark = pytest.mark.postgres


def test_q3_moves_at_most_1_2x_the_best_hand_written_pushdown(
    service: QueryService, tpch_mesh: tuple[Path, str]
) -> None:
    result = measure_q3_transfer(service, tpch_mesh[1])
    print(
        f"Q3 rows out of PostgreSQL: meshgate {result.meshgate_rows}, hand-written "
        f"{result.hand_written_rows}, DuckDB scanner {result.duckdb_scanner_rows}"
    )
    assert result.hand_written_rows > 0
    assert result.meshgate_rows <= 1.2 * result.hand_written_rows
    # and far less than what a scanner without join pushdown pulls
    assert result.meshgate_rows < result.duckdb_scanner_rows
