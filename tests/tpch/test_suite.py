"""`python -m benchmarks.run suite --quick` end to end at SF 0.01: files, answers, every target.

The suite is run as a user runs it (its own process, a fresh database of MESHGATE_TEST_PG_DSN's
server); it must exit 0 (it exits 1 on any wrong TPC-H answer), write results.json,
results.md and the PNG chart, hold 22 correct answers in each layout and print every target of
the issue with PASS or FAIL (whether a target passes on a shared CI machine is not asserted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import fresh_pg_database

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
TARGETS = (
    "tpch correct", "tpch geo-mean", "tpch worst query", "tpch rows out of PostgreSQL",
    "tpch_pg correct", "tpch_pg geo-mean", "tpch_pg worst query",
    "tpch_pg rows out of PostgreSQL", "scan of orders rows/s", "scan server peak RSS",
    "lookup (param) p50 overhead", "lookup (literal) p50 overhead", "lookup (param) 16 clients",
    "planning p95 cold", "masked restricted / admin",
)  # fmt: skip


@pytest.mark.timeout(600)
def test_quick_suite_writes_every_result_and_target(pg_server_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with fresh_pg_database(pg_server_dsn) as dsn:
        finished = subprocess.run(
            [sys.executable, "-m", "benchmarks.run", "suite", "--pg-dsn", dsn, "--quick",
             "--sf", "0.01", "--rounds", "1", "--lookup-seconds", "0.5",
             "--data-dir", str(tmp_path / "data"), "--out", str(out)],
            check=False, cwd=ROOT, capture_output=True, text=True, timeout=590,
            env=os.environ.copy(),
        )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    for name in ("results.json", "results.md", "chart.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text())
    for layout in ("split", "all_pg"):
        queries = results["tpch"][layout]
        assert [q["number"] for q in queries] == list(range(1, 23))
        assert [q["number"] for q in queries if q["wrong"]] == []
        for q in queries:
            assert all(len(q["seconds"][engine]) == 1 for engine in q["seconds"]), q
    lines = [line for line in finished.stdout.splitlines() if line.startswith("[")]
    assert not [line for line in lines if line.startswith("[not run]")]
    for target in TARGETS:
        (found,) = [line for line in lines if target in line]
        assert found.startswith(("[PASS] ", "[FAIL] ")), found
    # The lookups' floor: the same client against benchmarks/bare_lookup.py, which answered
    # every lookup with its key's row (lookup_client.py checks each answer).
    floors = [line for line in lines if line.startswith("[floor] lookup")]
    assert [line.split()[2] for line in floors] == ["(param)", "(literal)"], floors
    markdown = (out / "results.md").read_text()
    assert all(target in markdown for target in TARGETS)
