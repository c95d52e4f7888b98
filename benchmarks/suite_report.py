"""The suite's report from its results.json: markdown tables, targets with PASS/FAIL, a chart.

Everything here reads the JSON-shaped results only, so `results.md` and the chart can be
rebuilt from a saved `results.json` (`python -m benchmarks.suite_report DIR`).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The issue's targets.
TPCH_GEO_MAX = 1.0
TPCH_QUERY_MAX = 2.0
SCAN_MIN = 0.9
LOOKUP_OVERHEAD_MS = 2.0
SCALING_MIN = 8.0
PLANNING_P95_MS = 20.0
MASKED_MAX = 1.15
SCAN_RSS_MIB = 1024
TRANSFER_MAX = 1.2
LAYOUT_WORKLOAD = {"split": "tpch", "all_pg": "tpch_pg"}


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def _spread(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> str:
    return (f"{statistics.median(values) * scale:.{digits}f} "
            f"({min(values) * scale:.{digits}f}-{max(values) * scale:.{digits}f})")  # fmt: skip


def _ratio(a: Sequence[float], b: Sequence[float]) -> float:
    return statistics.median(a) / statistics.median(b)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def targets(results: dict[str, Any]) -> list[str]:
    """One line per target of the issue, the figure beside it; `not run` when it was not."""
    lines = []
    for layout, workload in LAYOUT_WORKLOAD.items():
        queries = results.get("tpch", {}).get(layout)
        if not queries:
            for name in ("correct", "geo-mean", "worst query", "rows out of PostgreSQL"):
                lines.append(f"[not run] {workload} {name}")
            continue
        right = sum(1 for q in queries if not q["wrong"])
        lines.append(f"[{_verdict(right == len(queries))}] {workload} correct against DuckDB "
                     f"local: {right}/{len(queries)}")  # fmt: skip
        ratios = {q["number"]: _ratio(q["seconds"]["meshgate"], q["seconds"]["duckdb_pg"])
                  for q in queries}  # fmt: skip
        geo = statistics.geometric_mean(ratios.values())
        worst = max(ratios, key=lambda n: ratios[n])
        lines.append(f"[{_verdict(geo <= TPCH_GEO_MAX)}] {workload} geo-mean time meshgate / "
                     f"DuckDB+pg {geo:.3f}x (target <= {TPCH_GEO_MAX:.1f}x)")  # fmt: skip
        lines.append(f"[{_verdict(ratios[worst] <= TPCH_QUERY_MAX)}] {workload} worst query "
                     f"q{worst:02d} {ratios[worst]:.2f}x DuckDB+pg "
                     f"(target: none over {TPCH_QUERY_MAX:.1f}x)")  # fmt: skip
        moved = [(q["number"], q["postgres_rows"] / max(q["minimal_rows"], 1))
                 for q in queries if q["minimal_rows"] is not None]  # fmt: skip
        if moved:
            number, top = max(moved, key=lambda m: m[1])
            lines.append(f"[{_verdict(top <= TRANSFER_MAX)}] {workload} rows out of PostgreSQL "
                         f"/ minimal per-table pushdown: worst q{number:02d} {top:.2f}x "
                         f"(target <= {TRANSFER_MAX:.1f}x per query)")  # fmt: skip
        else:
            lines.append(f"[not run] {workload} rows out of PostgreSQL (no query reads it)")
    scan = results.get("scan")
    if scan:
        rate = _ratio(scan["seconds"]["duckdb_pg"], scan["seconds"]["meshgate"])
        peak = max(scan["peak_rss_kib"]) / 1024
        lines.append(f"[{_verdict(rate >= SCAN_MIN)}] scan of {scan['table']} rows/s meshgate / "
                     f"DuckDB pg extension {rate:.2f}x (target >= {SCAN_MIN:.1f}x)")  # fmt: skip
        lines.append(f"[{_verdict(peak <= SCAN_RSS_MIB)}] scan server peak RSS (VmHWM) "
                     f"{peak:.0f} MiB (target <= {SCAN_RSS_MIB} MiB)")  # fmt: skip
    else:
        lines += ["[not run] scan rows/s", "[not run] scan server peak RSS"]
    lookup = results.get("lookup")
    if lookup:
        by = _lookup_by(lookup)
        single = min(c for _, c in by)
        for mode in ("param", "literal"):
            mesh = statistics.median(by[(f"meshgate_{mode}", single)]["latencies"])
            direct = statistics.median(by[(f"pg_{mode}", single)]["latencies"])
            over = (mesh - direct) * 1000
            lines.append(f"[{_verdict(over <= LOOKUP_OVERHEAD_MS)}] lookup ({mode}) p50 overhead "
                         f"over direct ADBC PostgreSQL, {single} client: {over:.2f} ms "
                         f"(target <= {LOOKUP_OVERHEAD_MS:.0f} ms)")  # fmt: skip
            bare = by.get((f"bare_{mode}", single))
            if bare is not None:  # the same client against a server doing no work at all
                floor = (statistics.median(bare["latencies"]) - direct) * 1000
                lines.append(f"[floor] lookup ({mode}) p50 of a bare pyarrow.flight server "
                             f"over direct ADBC PostgreSQL, {single} client: {floor:.2f} ms; "
                             f"meshgate over it: {over - floor:.2f} ms")  # fmt: skip
            measured = by[(f"meshgate_{mode}", single)]
            if measured["server_cpu"]:
                cpu = measured["server_cpu"] / len(measured["latencies"]) * 1000
                lines.append(f"[cpu] lookup ({mode}) meshgate server process CPU per lookup, "
                             f"{single} client: {cpu:.2f} ms")  # fmt: skip
        most = max(c for _, c in by)
        scaling = by[("meshgate_param", most)]["qps"] / by[("meshgate_param", single)]["qps"]
        lines.append(f"[{_verdict(most >= 16 and scaling >= SCALING_MIN)}] lookup (param) "
                     f"{most} clients / {single} client qps {scaling:.2f}x "
                     f"(target >= {SCALING_MIN:.0f}x at 16)")  # fmt: skip
    else:
        lines += ["[not run] lookup p50 overhead", "[not run] lookup scaling"]
    planning = results.get("planning")
    if planning:
        cold = percentile([s for q in planning for s in q["cold"]], 0.95) * 1000
        lines.append(f"[{_verdict(cold <= PLANNING_P95_MS)}] planning p95 cold {cold:.1f} ms "
                     f"(target <= {PLANNING_P95_MS:.0f} ms)")  # fmt: skip
    else:
        lines.append("[not run] planning p95 cold")
    masked = results.get("masked")
    if masked:
        worst = max(masked["workloads"], key=lambda w: w["ratio"])
        lines.append(
            f"[{_verdict(worst['ratio'] <= MASKED_MAX)}] masked restricted / admin: "
            f"worst {worst['name']} {worst['ratio']:.2f}x (target <= {MASKED_MAX}x)"
        )
    else:
        lines.append("[not run] masked restricted / admin")
    return lines


def _lookup_by(lookup: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Rounds merged: every latency of a (way, clients), qps the median over rounds."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for run in lookup:
        entry = merged.setdefault((run["way"], run["clients"]),
                                  {"latencies": [], "qps_all": [], "server_cpu": 0.0})
        entry["latencies"] += run["latencies"]
        entry["qps_all"].append(len(run["latencies"]) / run["seconds"])
        entry["server_cpu"] += run.get("server_cpu_seconds", 0.0)
    for entry in merged.values():
        entry["qps"] = statistics.median(entry["qps_all"])
    return merged


def markdown(results: dict[str, Any]) -> str:
    options, machine = results["options"], results["machine"]
    out = [f"# meshgate benchmark suite, {results['started']}", "",
           f"- Machine: {machine['cpus']} CPUs, {machine['memory_gib']:.0f} GiB, "
           f"{machine['platform']}; {machine.get('note', '')}",
           f"- Options: SF {options['sf']}, {options['rounds']} rounds, workloads "
           f"{','.join(options['workloads'])}{', quick' if options['quick'] else ''}",
           "- Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()), "",
           "## Targets", "", *(f"- {line}" for line in targets(results)), ""]  # fmt: skip
    for layout, queries in results.get("tpch", {}).items():
        out += [f"## TPC-H, {layout} layout (seconds: median (min-max); ratio of medians)", "",
                "| query | meshgate s | DuckDB+pg s | DuckDB local s | / DuckDB+pg | / local "
                "| correct | rows out of PG | minimal pushdown | / minimal |",
                "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for q in queries:
            s = q["seconds"]
            minimal = q["minimal_rows"]
            moved = "" if minimal is None else f"{q['postgres_rows'] / max(minimal, 1):.2f}"
            out.append(
                f"| q{q['number']:02d} | {_spread(s['meshgate'])} | {_spread(s['duckdb_pg'])} "
                f"| {_spread(s['duckdb_local'])} | {_ratio(s['meshgate'], s['duckdb_pg']):.2f} "
                f"| {_ratio(s['meshgate'], s['duckdb_local']):.2f} "
                f"| {'yes' if not q['wrong'] else 'NO: ' + q['wrong'][:80]} "
                f"| {q['postgres_rows']:,} | {'' if minimal is None else f'{minimal:,}'} "
                f"| {moved} |"
            )
        geo_pg = statistics.geometric_mean(
            [_ratio(q["seconds"]["meshgate"], q["seconds"]["duckdb_pg"]) for q in queries]
        )
        geo_local = statistics.geometric_mean(
            [_ratio(q["seconds"]["meshgate"], q["seconds"]["duckdb_local"]) for q in queries]
        )
        out += ["", f"Geometric mean: {geo_pg:.2f}x DuckDB+pg, {geo_local:.2f}x DuckDB local.", ""]
    scan = results.get("scan")
    if scan:
        mesh = scan["seconds"]["meshgate"]
        out += [f"## Full scan of {scan['table']} ({scan['rows']:,} rows; "
                f"{scan['layout']} layout)", "",
                "| way | seconds median (min-max) | rows/s (median) | meshgate rows/s / this |",
                "|---|---|---|---|"]  # fmt: skip
        for way, seconds in scan["seconds"].items():
            rate = scan["rows"] / statistics.median(seconds)
            out.append(f"| {way} | {_spread(seconds)} | {rate:,.0f} | "
                       f"{_ratio(seconds, mesh):.2f} |")  # fmt: skip
        peaks = scan["peak_rss_kib"]
        out += ["", f"meshgate server RSS before {scan['rss_before_kib'] / 1024:.0f} MiB, peak "
                f"(VmHWM) during the scans median {statistics.median(peaks) / 1024:.0f} MiB, "
                f"max {max(peaks) / 1024:.0f} MiB. Binary COPY sent "
                f"{scan['copy_bytes'] / 2**20:.0f} MiB."]  # fmt: skip
        cpu, load = scan.get("server_cpu_seconds"), scan.get("load_average")
        if cpu and load:
            out[-1] += (f" meshgate server CPU per scan {_spread(cpu)} s; load average "
                        f"{min(load):.1f}-{max(load):.1f} during the rounds.")
        out.append("")
    lookup = results.get("lookup")
    if lookup:
        out += [
            "## Point lookups (orders by key; ms; qps median over rounds)",
            "",
            "| way | clients | p50 | p95 | p99 | qps | lookups | p50 - direct ADBC's "
            "| qps / direct ADBC's |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        by = _lookup_by(lookup)
        for (way, clients), entry in sorted(by.items(), key=lambda item: (item[0][1], item[0][0])):
            lat = entry["latencies"]
            versus = ("", "")
            if not way.startswith("pg_"):  # meshgate's and the bare server's ways
                direct = by[("pg_" + way.partition("_")[2], clients)]
                over = (percentile(lat, 0.5) - percentile(direct["latencies"], 0.5)) * 1000
                versus = (f"{over:.2f}", f"{entry['qps'] / direct['qps']:.3f}")
            p50, p95, p99 = (percentile(lat, f) * 1000 for f in (0.5, 0.95, 0.99))
            out.append(
                f"| {way} | {clients} | {p50:.2f} | {p95:.2f} | {p99:.2f} "
                f"| {entry['qps']:.1f} | {len(lat)} | {versus[0]} | {versus[1]} |"
            )
        out.append("")
    planning = results.get("planning")
    if planning:
        out += [
            "## Planning (in-process QueryService.prepare; ms, median (min-max))",
            "",
            "| query | cold | warm |",
            "|---|---|---|",
        ]
        for q in planning:
            out.append(f"| q{q['number']:02d} | {_spread(q['cold'], 1000, 1)} "
                       f"| {_spread(q['warm'], 1000, 1)} |")  # fmt: skip
        cold = [s for q in planning for s in q["cold"]]
        warm = [s for q in planning for s in q["warm"]]
        out += ["", f"All queries: cold p50 {percentile(cold, 0.5) * 1000:.1f} ms, p95 "
                f"{percentile(cold, 0.95) * 1000:.1f} ms; warm p50 "
                f"{percentile(warm, 0.5) * 1000:.1f} ms, p95 "
                f"{percentile(warm, 0.95) * 1000:.1f} ms.", ""]  # fmt: skip
    masked = results.get("masked")
    if masked:
        out += [
            "## Masked (governance workload; restricted vs admin, seconds)",
            "",
            "| workload | admin | restricted | ratio of medians |",
            "|---|---|---|---|",
        ]
        for w in masked["workloads"]:
            out.append(
                f"| {w['name']} | {_spread(w['admin']['seconds'])} "
                f"| {_spread(w['restricted']['seconds'])} | {w['ratio']:.2f} |"
            )
        out.append("")
    return "\n".join(out)


def chart(results: dict[str, Any], path: Path) -> None:
    """Per-query ratio bars for each TPC-H layout, and the scan and lookup panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(15, 9))
    for axis, layout in zip(axes[0], LAYOUT_WORKLOAD, strict=True):
        queries = results.get("tpch", {}).get(layout)
        axis.set_title(f"TPC-H {layout}: meshgate time / peer (below 1: faster)")
        if not queries:
            axis.text(0.5, 0.5, "not run", ha="center", transform=axis.transAxes)
            continue
        numbers = [q["number"] for q in queries]
        width = 0.4
        for offset, peer in ((-width / 2, "duckdb_pg"), (width / 2, "duckdb_local")):
            axis.bar([n + offset for n in numbers],
                     [_ratio(q["seconds"]["meshgate"], q["seconds"][peer]) for q in queries],
                     width, label=f"/ {peer}")  # fmt: skip
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.axhline(TPCH_QUERY_MAX, color="red", linewidth=0.8, linestyle="--")
        axis.set_yscale("log")
        axis.set_xticks(numbers)
        axis.legend()
    scan, lookup = results.get("scan"), results.get("lookup")
    for axis, shown in ((axes[1][0], scan), (axes[1][1], lookup)):
        if not shown:
            axis.text(0.5, 0.5, "not run", ha="center", transform=axis.transAxes)
    axis = axes[1][0]
    if scan:
        ways = list(scan["seconds"])
        rates = [scan["rows"] / statistics.median(scan["seconds"][w]) / 1e6 for w in ways]
        axis.bar(ways, rates, color=["C3" if w == "meshgate" else "C0" for w in ways])
        axis.set_ylabel("million rows/s (COPY: same rows, undecoded)")
        axis.set_title(f"full scan of {scan['table']}")
    axis = axes[1][1]
    if lookup:
        by = _lookup_by(lookup)
        counts = sorted({c for _, c in by})
        ways = sorted({w for w, _ in by})
        width = 0.8 / len(ways)
        for index, way in enumerate(ways):
            axis.bar([i + (index - (len(ways) - 1) / 2) * width for i in range(len(counts))],
                     [by[(way, c)]["qps"] for c in counts], width, label=way)  # fmt: skip
        axis.set_xticks(range(len(counts)), [f"{c} clients" for c in counts])
        axis.set_ylabel("lookups per second")
        axis.set_title("point lookups")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


BEGIN = "<!-- suite results: begin (python -m benchmarks.suite_report DIR --readme) -->"
END = "<!-- suite results: end -->"
README = Path(__file__).parent / "README.md"


def refresh_readme(results: dict[str, Any], chart_file: Path, readme: Path = README) -> None:
    """Put results.md (headings one level down) between the README's markers, and the chart."""
    text = readme.read_text(encoding="utf-8")
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"{readme} has no {BEGIN} ... {END} section")
    lines = markdown(results).splitlines()
    body = [f"#### {line[3:]}" if line.startswith("## ") else line for line in lines[1:]]
    shown = readme.parent / "suite-chart.png"
    shown.write_bytes(chart_file.read_bytes())
    section = f"Run of {results['started']}.\n\n![suite chart]({shown.name})\n" + "\n".join(body)
    readme.write_text(f"{head}{BEGIN}\n{section.strip()}\n{END}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Rebuild results.md and chart.png from DIR/results.json; `--readme`: refresh the README."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    directory = Path(arguments[0])
    results = json.loads((directory / "results.json").read_text())
    (directory / "results.md").write_text(markdown(results))
    chart(results, directory / "chart.png")
    if "--readme" in arguments[1:]:
        refresh_readme(results, directory / "chart.png")
    print("\n".join(targets(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
