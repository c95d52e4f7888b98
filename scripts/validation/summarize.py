"""Counts of a validation-suite run (its JUnit XML): passed, failed, skipped, and the share of
the tests that apply to a read-only server that passed.

A skipped test does not apply (the suite skips what the quirks declare unsupported: ingest,
transactions, writes). `test_lint_query` checks the suite's own case files and never reaches
the server, so it is counted apart.
"""

from __future__ import annotations

import collections
import sys
import xml.etree.ElementTree as ET


def outcome(case: ET.Element) -> str:
    if case.find("skipped") is not None:
        return "skipped"
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    return "passed"


def main(path: str) -> int:
    counts: collections.Counter[tuple[bool, str]] = collections.Counter()
    failed: list[str] = []
    skipped: collections.Counter[str] = collections.Counter()
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        lint = name.startswith("test_lint_query")
        result = outcome(case)
        counts[(lint, result)] += 1
        if result == "failed":
            failed.append(f"{case.get('classname')}::{name}")
        elif result == "skipped":
            reason = case.find("skipped").get("message", "")  # type: ignore[union-attr]
            skipped[f"{name.split('[')[0]}: {reason}"] += 1
    passed, failed_n, skipped_n = (counts[(False, r)] for r in ("passed", "failed", "skipped"))
    print(f"server tests: {passed} passed, {failed_n} failed, {skipped_n} skipped (not applicable)")
    print(f"case-file lint (no server): {counts[(True, 'passed')]} passed, "
          f"{counts[(True, 'failed')]} failed")
    applicable = passed + failed_n
    share = 100.0 * passed / applicable if applicable else 0.0
    print(f"applicable to a read-only server: {passed}/{applicable} passed ({share:.1f}%)")
    for name in failed:
        print(f"  FAILED {name}")
    for reason, n in sorted(skipped.items()):
        print(f"  skipped x{n} {reason}")
    print(f"{passed} passed, {failed_n} failed, {skipped_n} skipped")
    return 0 if share >= 95.0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py JUNIT_XML")
    sys.exit(main(sys.argv[1]))
