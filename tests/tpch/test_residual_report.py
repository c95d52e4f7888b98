"""The residual benchmark's verdicts (benchmarks/residual_report.py) from results it could write.

The memory verdict is the benchmark's claim, so what counts is pinned here: a query makes the
point only when every DuckDB-residual round was refused for memory or peaked past the limit,
and every Spark-residual round answered right under it. A refusal for anything else, or a
wrong answer, fails the run.
"""

from __future__ import annotations

from typing import Any

from benchmarks.residual_report import (
    failures,
    limit_kib,
    markdown,
    memory_point,
    table,
    verdicts,
)

MIB = 1024  # KiB
REFUSED = ("the merge step of this query needed more memory than it may use (512MB, "
           "server.limits.merge_memory_limit, ...)")  # fmt: skip


def served(*passes: tuple[int, str]) -> list[dict[str, Any]]:
    return [{"rss_before_kib": 300 * MIB, "peak_rss_kib": peak, "refused": refused}
            for peak, refused in passes]  # fmt: skip


def query(number: int, duckdb: list[dict[str, Any]], spark: list[dict[str, Any]],
          wrong: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    answered = {"meshgate_duckdb": [1.0] * sum(1 for p in duckdb if not p["refused"]),
                "meshgate_spark": [2.0] * sum(1 for p in spark if not p["refused"]),
                "duckdb_pg": [1.5] * len(duckdb), "duckdb_local": [0.5] * len(duckdb)}
    return {"number": number, "rows": 10, "seconds": answered,
            "passes": {"duckdb": duckdb, "spark": spark}, "wrong": wrong or {}}


def results(*queries: dict[str, Any]) -> dict[str, Any]:
    return {"started": "2026-12-03T15:00:00Z", "finished": "2026-12-03T15:20:00Z",
            "machine": {"cpus": 2, "memory_gib": 24, "platform": "Linux", "load_average": [1.0],
                        "note": ""},
            "versions": {"duckdb": "1.5.5"},
            "options": {"sf": 3.0, "rounds": 2, "queries": [q["number"] for q in queries],
                        "engines": ["duckdb", "spark"], "merge_memory_limit": "512MB"},
            "setup": {"seconds": 270.0, "reused": False, "directory": "/d", "pg_schema": "s"},
            "queries": list(queries)}  # fmt: skip


def test_limit_sizes_read_as_proc_reports_them() -> None:
    assert limit_kib("512MB") == 512e6 / 1024
    assert limit_kib("1 GiB") == 1024 * MIB


def test_a_query_over_the_limit_on_duckdb_and_under_on_spark_makes_the_point() -> None:
    low, high = 400 * MIB, 900 * MIB  # the limit, 512MB, is 488 MiB
    made = results(
        query(9, served((high, ""), (0, REFUSED)), served((low, ""), (420 * MIB, ""))),
        # once under the limit with DuckDB: not over in every round
        query(18, served((high, ""), (480 * MIB, "")), served((low, ""), (low, ""))),
        # Spark past the limit in one round
        query(21, served((high, ""), (high, "")), served((low, ""), (490 * MIB, ""))),
    )  # fmt: skip
    assert memory_point(made) == [9]
    assert "[PASS] memory:" in "\n".join(verdicts(made))
    assert "q09" in next(line for line in verdicts(made) if "memory:" in line)
    assert failures(made) == []  # a refusal for memory is a finding, not a failure


def test_no_query_making_the_point_is_a_fail_and_errors_fail_the_run() -> None:
    missed = results(
        query(9, served((400 * MIB, ""),), served((0, "Spark Connect cannot be reached"),)),
        query(18, served((900 * MIB, ""),), served((300 * MIB, ""),), {"meshgate_spark": "row 0"}),
    )  # fmt: skip
    assert memory_point(missed) == []
    lines = verdicts(missed)
    assert "[FAIL] memory:" in "\n".join(lines)
    assert "[FAIL] spark residual answers right against DuckDB local: 0/2" in lines
    assert failures(missed) == ["q09 meshgate_spark: Spark Connect cannot be reached",
                                "q18 meshgate_spark wrong: row 0"]  # fmt: skip


def test_the_table_and_markdown_show_every_query_and_engine() -> None:
    shown = results(query(9, served((900 * MIB, ""), (0, REFUSED)), served((400 * MIB, ""),)))
    text = table(shown)
    for shown_text in ("q09", "refused (memory) 1/2", "900"):
        assert shown_text in text
    page = markdown(shown)
    for shown_text in ("| q09 |", "meshgate_spark s", REFUSED):
        assert shown_text in page
