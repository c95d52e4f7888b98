"""A short load run with PostgreSQL cut and restored midway: right answers, right codes, recovery.

The full run (16 clients, 60 s) is `python -m benchmarks.load`; this is its CI guard: four
client processes for 15 s against a real `meshgate serve`, every answer checked against the
reference, PostgreSQL cut at 4 s and restored at 8 s through the run's own TCP proxy (the
shared PostgreSQL is never stopped).
"""

from __future__ import annotations

import pytest

from benchmarks.load import OUTAGE_CODES, describe, problems, run_load

pytestmark = pytest.mark.postgres

CLIENTS = 4
SECONDS = 15.0
CUT_AT = 4.0
RESTORE_AT = 8.0
RECOVERY_SECONDS = 3.0


@pytest.fixture(autouse=True)
def healthy_proxy() -> None:
    """The run brings its own proxy and database: not the package's 1M-row one."""


def test_load_with_postgres_cut_and_restored(pg_server_dsn: str) -> None:
    report = run_load(pg_server_dsn, CLIENTS, SECONDS, CUT_AT, RESTORE_AT, RECOVERY_SECONDS,
                      seed=16)  # fmt: skip
    told = "\n".join(describe(report))
    assert report.wrong == [], told
    assert report.unexpected == [], told
    assert problems(report, max_rss_growth_mib=64) == [], told
    # The cut bit, only PostgreSQL queries failed, each with an outage code ...
    failed = report.outage_failures
    assert failed, told
    assert {o.kind for o in failed} <= report.reads_postgres
    assert {o.result for o in failed} <= OUTAGE_CODES
    # ... the others answered right throughout: before, during and after it (a query needing
    # no PostgreSQL once waited out its deadline just after the restore, when a stream
    # collected inside the ticket registry's lock had stopped the whole server) ...
    assert report.outage is not None
    during = [o for o in report.outcomes if o.kind not in report.reads_postgres
              and report.outage.cut <= o.started <= report.outage.restored]  # fmt: skip
    assert during, told
    others = [o for o in report.outcomes if o.kind not in report.reads_postgres]
    assert [o for o in others if o.result != "ok"] == [], told
    # ... and PostgreSQL queries answer again after it.
    recovered = report.recovered_after()
    assert recovered is not None, told
    assert recovered < RECOVERY_SECONDS, told
    late = [o for o in report.outcomes if o.kind in report.reads_postgres
            and o.started > report.outage.restored + RECOVERY_SECONDS]  # fmt: skip
    assert late, told
    assert all(o.result == "ok" for o in late), told
