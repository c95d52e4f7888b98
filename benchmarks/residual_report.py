"""The residual benchmark's report from its results.json: a table, the verdicts, markdown.

Reads the JSON-shaped results only, so `python -m benchmarks.residual_report DIR` rebuilds
`results.md` from a saved `DIR/results.json`.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MEMORY_WORDS = ("more memory than it may use", "RESOURCE_EXHAUSTED", "out of memory")
_UNITS = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip


def limit_kib(text: str) -> float:
    """A merge_memory_limit ("1GB", "500MiB") in KiB, as /proc reports RSS."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", text, flags=re.IGNORECASE)
    if found is None:
        raise SystemExit(f"{text!r} is not a memory size such as 1GB")
    return float(found[1]) * _UNITS[found[2].lower()] / 1024


def is_memory_refusal(message: str) -> bool:
    return any(word.lower() in message.lower() for word in MEMORY_WORDS)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def _peak(passes: Sequence[dict[str, Any]]) -> str:
    """The highest peak over the rounds, and the RSS before that query started."""
    if not passes:
        return "-"
    top = max(passes, key=lambda p: p["peak_rss_kib"])
    return f"{top['peak_rss_kib'] / 1024:.0f} ({top['rss_before_kib'] / 1024:.0f})"


def residuals(results: dict[str, Any]) -> list[str]:
    return list(results["options"]["engines"])


def _refusals(query: dict[str, Any], residual: str) -> list[str]:
    return [p["refused"] for p in query["passes"][residual] if p["refused"]]


def _status(query: dict[str, Any], residual: str) -> str:
    if f"meshgate_{residual}" in query["wrong"]:
        return "WRONG"
    refusals = _refusals(query, residual)
    if refusals:
        kind = "memory" if all(is_memory_refusal(r) for r in refusals) else "error"
        return f"refused ({kind}) {len(refusals)}/{len(query['passes'][residual])}"
    return "ok"


def rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per query: median seconds per engine, ratios, peak RSS per residual, status."""
    names = [f"meshgate_{r}" for r in residuals(results)]
    table = []
    for q in results["queries"]:
        medians = {e: _median(s) for e, s in q["seconds"].items()}
        row = [f"q{q['number']:02d}", *(_seconds(medians[e]) for e in q["seconds"])]
        if "meshgate_spark" in medians and "meshgate_duckdb" in medians:
            row.append(_ratio(medians["meshgate_spark"], medians["meshgate_duckdb"]))
        for engine in names:
            row.append(_ratio(medians[engine], medians["duckdb_pg"]))
        row += [_peak(q["passes"][r]) for r in residuals(results)]
        row += [_status(q, r) for r in residuals(results)]
        table.append(row)
    return table


def header(results: dict[str, Any]) -> list[str]:
    names = residuals(results)
    engines = list(results["queries"][0]["seconds"]) if results["queries"] else []
    columns = ["query", *(f"{e} s" for e in engines)]
    if "spark" in names and "duckdb" in names:
        columns.append("spark / duckdb residual")
    columns += [f"{r} / duckdb_pg" for r in names]
    columns += [f"{r} peak RSS MiB (before)" for r in names]
    columns += [f"{r} answer" for r in names]
    return columns


def table(results: dict[str, Any]) -> str:
    """The rows as aligned text, for the terminal."""
    lines = [header(results), *rows(results)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True))
                     for line in lines)  # fmt: skip


def over_limit(query: dict[str, Any], residual: str, limit: float) -> bool:
    """Every pass of `residual` was refused for memory or its server's peak went past `limit`."""
    passes = query["passes"][residual]
    return bool(passes) and all(
        is_memory_refusal(p["refused"]) if p["refused"] else p["peak_rss_kib"] > limit
        for p in passes)  # fmt: skip


def under_limit(query: dict[str, Any], residual: str, limit: float) -> bool:
    """Every pass of `residual` answered (right) and its server's peak stayed under `limit`."""
    passes = query["passes"][residual]
    return (bool(passes) and f"meshgate_{residual}" not in query["wrong"]
            and all(not p["refused"] and p["peak_rss_kib"] < limit for p in passes))  # fmt: skip


def memory_point(results: dict[str, Any]) -> list[int]:
    """Queries the DuckDB residual could not keep within the limit and Spark could."""
    limit = limit_kib(results["options"]["merge_memory_limit"])
    if not {"duckdb", "spark"} <= set(residuals(results)):
        return []
    return [q["number"] for q in results["queries"]
            if over_limit(q, "duckdb", limit) and under_limit(q, "spark", limit)]  # fmt: skip


def verdicts(results: dict[str, Any]) -> list[str]:
    """PASS/FAIL lines: each residual's answers, and the memory point."""
    lines = []
    queries = results["queries"]
    for residual in residuals(results):
        engine = f"meshgate_{residual}"
        right = [q["number"] for q in queries
                 if engine not in q["wrong"] and not _refusals(q, residual)]  # fmt: skip
        memory = [q["number"] for q in queries if _refusals(q, residual)
                  and all(is_memory_refusal(r) for r in _refusals(q, residual))]  # fmt: skip
        note = f"; refused for memory: {_numbers(memory)}" if memory else ""
        lines.append(f"[{'PASS' if len(right) == len(queries) else 'FAIL'}] {residual} residual "
                     f"answers right against DuckDB local: {len(right)}/{len(queries)}{note}")
    limit = results["options"]["merge_memory_limit"]
    if {"duckdb", "spark"} <= set(residuals(results)):
        point = memory_point(results)
        lines.append(f"[{'PASS' if point else 'FAIL'}] memory: queries over "
                     f"merge_memory_limit {limit} with the DuckDB residual (refused, or the "
                     f"server's peak RSS past it) and under it with Spark: "
                     f"{_numbers(point) or 'none'}")  # fmt: skip
    else:
        lines.append("[not run] memory: needs both residual engines")
    return lines


def failures(results: dict[str, Any]) -> list[str]:
    """Wrong answers and errors other than a refusal for memory: what makes the run fail."""
    found = []
    for q in results["queries"]:
        for engine, why in q["wrong"].items():
            found.append(f"q{q['number']:02d} {engine} wrong: {why}")
        for residual in q["passes"]:
            found += [f"q{q['number']:02d} meshgate_{residual}: {r}"
                      for r in _refusals(q, residual) if not is_memory_refusal(r)]  # fmt: skip
    return found


def _numbers(numbers: Sequence[int]) -> str:
    return ", ".join(f"q{n:02d}" for n in numbers)


def markdown(results: dict[str, Any]) -> str:
    options, machine, setup = results["options"], results["machine"], results["setup"]
    head = header(results)
    out = [f"# meshgate residual engines, {results['started']} - {results.get('finished', '')}",
           "",
           f"- Machine: {machine['cpus']} CPUs, {machine['memory_gib']:.0f} GiB, "
           f"{machine['platform']}; load average at start {machine['load_average']}; "
           f"{machine.get('note', '')}",
           f"- Options: SF {options['sf']:g}, {options['rounds']} rounds after a warm-up, "
           f"queries {','.join(str(n) for n in options['queries'])}, residual engines "
           f"{','.join(options['engines'])}, merge_memory_limit {options['merge_memory_limit']}"
           f", Spark {options.get('spark_remote', '-')}",
           f"- Setup: split layout {'reused' if setup['reused'] else 'set up'} in "
           f"{setup['seconds']:.0f} s ({setup['pg_schema']}, {setup['directory']})",
           "- Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), "",
           "## Verdicts", "", *(f"- {line}" for line in verdicts(results)), "",
           "## Queries (seconds: median of the measured rounds; peak RSS: the server's VmHWM "
           "during the query, the highest of the rounds, with its RSS just before the query)",
           "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
           *("| " + " | ".join(row) + " |" for row in rows(results)), ""]  # fmt: skip
    errors = failures(results) + [f"q{q['number']:02d} meshgate_{residual}: {r}"
                                  for q in results["queries"] for residual in q["passes"]
                                  for r in _refusals(q, residual)
                                  if is_memory_refusal(r)]  # fmt: skip
    if errors:
        out += ["## Refusals and errors", "", *(f"- {e}" for e in errors), ""]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild DIR/results.md from DIR/results.json and print the table and verdicts."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    directory = Path(arguments[0])
    results = json.loads((directory / "results.json").read_text())
    (directory / "results.md").write_text(markdown(results))
    print(table(results))
    print("\n".join(verdicts(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
