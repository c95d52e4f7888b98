"""CI's guard of the hostile-input fuzz: the driver of `python -m tests.fuzz.run_fuzz` with a
small budget against a real `meshgate serve`. The 10,000-input run is the script."""

from __future__ import annotations

from pathlib import Path

from tests.fuzz.run_fuzz import run, summary, verdict

CI_INPUTS = 1_500


def test_hostile_input_gets_proper_codes_and_the_server_stays_up(tmp_path: Path) -> None:
    report = run(CI_INPUTS, seed=16, deep=False, directory=tmp_path)
    problems = verdict(report, CI_INPUTS)
    assert not problems, summary(report, problems)
    assert set(report.kinds) >= {"sql_generated", "sql_mutated", "command_payload",
                                 "action_payload", "ticket", "handle_foreign",
                                 "handle_expired", "rpc_and_auth", "oversized"}
