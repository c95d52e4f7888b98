"""A policy that does not compile, type-check or name real things stops check and serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshgate.errors import ConfigError
from meshgate.service import QueryService
from tests.policy import mesh


def _with_policies(tmp_path: Path, policies: str) -> Path:
    config = mesh.build(tmp_path)
    access = (config / "access.yaml").read_text(encoding="utf-8")
    head = access[: access.index("policies:")]
    (config / "access.yaml").write_text(head + policies, encoding="utf-8")
    return config


CASES = [
    ("policies:\n  - {product: hr.nope, role: analyst, row_filter: 'true'}",
     "access.yaml:16:6: policies[0].product: product 'hr.nope' is not declared under "
     "`products:`; did you mean 'hr.people'?"),
    ("policies:\n  - {product: hr.staff, role: ghost, row_filter: 'true'}",
     "access.yaml:16:25: policies[0].role: role 'ghost' is not declared under `roles:` "
     "(declared: admin, analyst, auditor, pii_reader, viewer)"),
    ("policies:\n  - {product: hr.staff, role: analyst, masks: {salry: 'null'}}",
     "masks.salry: hr.staff has no column 'salry'"),
    ("policies:\n  - {product: hr.staff, role: analyst, masks: {ssn: scramble}}",
     "unknown mask 'scramble'"),
    ("policies:\n  - {product: hr.staff, role: analyst, masks: {salary: last4}}",
     "last4 applies to text columns"),
    ("policies:\n  - {product: hr.staff, role: analyst, row_filter: 'salary + 1'}",
     "a row filter must be a boolean condition"),
    ("policies:\n  - {product: hr.staff, role: analyst, row_filter: 'regoin = 1'}",
     "unknown column 'regoin' of hr.staff; did you mean 'region'?"),
    ("policies:\n  - {product: hr.staff, role: analyst, row_filter: \"read_csv('x') IS NULL\"}",
     "function read_csv is not allowed"),
    ("policies:\n  - {product: hr.staff, role: analyst, row_filter: 'id IN (SELECT 1)'}",
     "not subqueries"),
    ("policies:\n  - {product: hr.staff, role: analyst, row_filter: 'true; DROP TABLE x'}",
     "row_filter"),
    ("policies:\n  - {product: hr.staff, role: analyst, colour: red}",
     "colour: unknown key"),
    ("mesh_policies:\n  - {name: r, classification: pii, mask: {expression: \"'x'\"}}",
     "mesh-wide rules take a built-in mask"),
    ("policies:\n"
     "  - {product: hr.staff, role: analyst, masks: {ssn: redact}}\n"
     "  - {product: hr.staff, role: viewer, masks: {ssn: last4}}",
     "roles 'analyst' and 'viewer' mask column 'ssn' differently"),
]  # fmt: skip


@pytest.mark.parametrize(("policies", "message"), CASES, ids=[c[1][:40] for c in CASES])
def test_bad_policy_is_refused_naming_file_and_key(
    tmp_path: Path, policies: str, message: str
) -> None:
    config = _with_policies(tmp_path, policies)
    with pytest.raises(ConfigError) as caught:
        QueryService.from_config(config).close()
    assert message in caught.value.message
    assert "access.yaml" in caught.value.message


# Problems DuckDB would find when it type-checks a policy, said without DuckDB's jargon, each
# at the line:column of its key.
WORDED = [
    ("row_filter: 'regoin = 1'",
     "row_filter: unknown column 'regoin' of hr.staff; did you mean 'region'?", "18:5"),
    ("row_filter: 'grade > 3'",
     "row_filter: unknown column 'grade' of hr.staff (columns: id, name, email, ssn, salary, "
     "region, dept_id, hired)", "18:5"),
    ("masks: {ssn: {expression: 'right(sn, 4)'}}",
     "masks.ssn: unknown column 'sn' of hr.staff; did you mean 'ssn'?", "18:13"),
    ("row_filter: \"staff.region = 'EU'\"",
     "row_filter: write the column without a qualifier: 'region', not 'staff.region'", "18:5"),
    ("row_filter: 'lenght(name) > 3'",
     "row_filter: unknown function 'lenght'; did you mean 'length'?", "18:5"),
    ("row_filter: 'frobnicate(name)'",
     "row_filter: unknown function 'frobnicate': DuckDB has no function of that name", "18:5"),
    ("row_filter: 'name + 1 > 3'",
     "row_filter: does not type-check against hr.staff: operator + does not take (VARCHAR, "
     "INTEGER); cast the values to the types it takes, e.g. CAST(x AS VARCHAR)", "18:5"),
    ("row_filter: \"regexp_matches(region, 1)\"",
     "row_filter: does not type-check against hr.staff: function regexp_matches does not take "
     "(VARCHAR, INTEGER); cast the values to the types it takes, e.g. CAST(x AS VARCHAR)", "18:5"),
    ("row_filter: 'CAST(region AS MONEY) = 1'",
     "row_filter: does not type-check against hr.staff: type with name MONEY does not exist; "
     "compare with the product's column types (`meshgate catalog --columns`)", "18:5"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "problem", "place"),
    WORDED,
    ids=[case[1][:48] for case in WORDED],
)
def test_policy_problems_speak_the_config_authors_words(
    tmp_path: Path, policy: str, problem: str, place: str
) -> None:
    config = _with_policies(tmp_path, f"policies:\n  - product: hr.staff\n    role: analyst\n"
                                      f"    {policy}\n")  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        QueryService.from_config(config).close()
    assert caught.value.message.splitlines() == [
        f"invalid configuration in {config} (1 problem):",
        f"  access.yaml:{place}: policies[0].{problem}",
    ]


def test_hash_mask_needs_a_key(tmp_path: Path) -> None:
    policy = "policies:\n  - {product: hr.staff, role: analyst, masks: {email: hash}}"
    config = _with_policies(tmp_path, policy)
    mesh_file = config / "mesh.yaml"
    mesh_file.write_text(mesh_file.read_text().replace(f", hash_key: {mesh.HASH_KEY}", ""))
    with pytest.raises(ConfigError, match=r"the hash mask needs mesh.hash_key"):
        QueryService.from_config(config).close()


@pytest.mark.parametrize("command", ["check", "serve"])
def test_check_and_serve_stop_on_a_bad_policy(tmp_path: Path, command: str) -> None:
    policy = "policies:\n  - {product: hr.staff, role: analyst, row_filter: 'salary'}"
    config = _with_policies(tmp_path, policy)
    done = subprocess.run(
        [sys.executable, "-m", "meshgate.cli", command, "--config", str(config),
         *(["--port", "0"] if command == "serve" else [])],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "a row filter must be a boolean condition" in done.stderr
    assert "Traceback" not in done.stderr
