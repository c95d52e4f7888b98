"""TPC-H Q3 moves no more rows out of PostgreSQL than the best hand-written pushdown (x1.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.run import measure_q3_transfer, measure_transfers
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


def test_per_query_table_counts_the_minimal_per_table_pushdown(
    service: QueryService, tpch_mesh: tuple[Path, str]
) -> None:
    """Q3's minimal per-table pushdown is the filtered customer plus the filtered orders."""
    directory, dsn = tpch_mesh
    per_query = {q.query: q for q in measure_transfers(service, directory, dsn)}
    # the 17 queries reading a PostgreSQL table; Q1, Q6, Q14, Q17, Q19 read Parquet only
    assert sorted(per_query) == [n for n in range(1, 23) if n not in (1, 6, 14, 17, 19)]
    q3 = per_query[3]
    assert q3.minimal_rows == measure_q3_transfer(service, dsn).duckdb_scanner_rows
    assert 0 < q3.meshgate_rows <= q3.minimal_rows
