"""`meshgate check --against`: each kind of contract change, classified, with and without its bump.

Every case edits a copy of the demo config, then runs the real command against the untouched
copy (a directory, and once a git revision), as a domain's CI would.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshgate.cli import main

Edit = Callable[[dict[str, dict[str, Any]]], None]


def product(files: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    domain, table = name.split(".")
    for document in files.values():
        for item in document.get("products", ()):
            if (item["domain"], item["name"]) == (domain, table):
                found: dict[str, Any] = item
                return found
    raise KeyError(name)


def column(files: dict[str, dict[str, Any]], name: str, col: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in product(files, name)["columns"]
                                   if c["name"] == col]  # fmt: skip
    assert len(found) == 1
    return found[0]


def drop_column(name: str, col: str) -> Edit:
    def edit(files: dict[str, dict[str, Any]]) -> None:
        item = product(files, name)
        item["columns"] = [c for c in item["columns"] if c["name"] != col]
    return edit


def set_column(of: str, col: str, /, **values: Any) -> Edit:
    return lambda files: column(files, of, col).update(values)


def add_column(name: str) -> Edit:
    def edit(files: dict[str, dict[str, Any]]) -> None:
        product(files, name)["columns"].append({"name": "region_code", "type": "VARCHAR"})
    return edit


def set_product(name: str, **values: Any) -> Edit:
    return lambda files: product(files, name).update(values)


def policies(files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = files["access.yaml"]["policies"]
    return found


def new_filter(files: dict[str, dict[str, Any]]) -> None:
    policies(files).append({"product": "sales.orders", "role": "partner",
                            "row_filter": "amount < 1000"})  # fmt: skip


def new_mask(files: dict[str, dict[str, Any]]) -> None:
    policies(files)[0]["masks"]["region"] = "redact"


def changed_filter(files: dict[str, dict[str, Any]]) -> None:
    policies(files)[0]["row_filter"] = "region = 'EU'"


def removed_mask(files: dict[str, dict[str, Any]]) -> None:
    del policies(files)[0]["masks"]["salary"]


def deprecate_orders(files: dict[str, dict[str, Any]]) -> None:
    """sales.orders deprecated in favour of a new sales.orders_v2 (a new product: no bump)."""
    successor = {**product(files, "sales.orders"), "name": "orders_v2"}
    files["sales.yaml"]["products"].append(successor)
    product(files, "sales.orders")["deprecated"] = {
        "successor": "sales.orders_v2", "sunset": dt.date(2027, 1, 31),
        "reason": "orders_v2 carries the currency of each order"}


def newly_classified(files: dict[str, dict[str, Any]]) -> None:
    # the mesh-wide pii rule now redacts it for every role not exempt
    column(files, "sales.orders", "amount")["classification"] = "pii"


# (case, edit, product, change reported, impact, the least version that passes)
CASES: list[tuple[str, Edit, str, str, str, str]] = [
    ("column removed", drop_column("sales.orders", "ts"), "sales.orders",
     "column ts removed", "breaking", "2.0.0"),
    ("column renamed", set_column("sales.orders", "ts", name="placed_at"), "sales.orders",
     "column ts removed", "breaking", "2.0.0"),
    ("type narrowed", set_column("sales.orders", "order_id", type="INTEGER"), "sales.orders",
     "column order_id: type BIGINT -> INTEGER", "breaking", "2.0.0"),
    ("decimal scale cut", set_column("sales.orders", "amount", type="DECIMAL(12,1)"),
     "sales.orders", "column amount: type DECIMAL(12,2) -> DECIMAL(12,1)", "breaking", "2.0.0"),
    ("type changed kind", set_column("sales.orders", "amount", type="VARCHAR"), "sales.orders",
     "column amount: type DECIMAL(12,2) -> VARCHAR", "breaking", "2.0.0"),
    ("may now be NULL", set_column("sales.orders", "order_id", nullable=True), "sales.orders",
     "column order_id: may now be NULL", "breaking", "2.0.0"),
    ("primary key changed", set_product("sales.orders", primary_key=["order_id", "ts"]),
     "sales.orders", "primary key (order_id) -> (order_id, ts)", "breaking", "2.0.0"),
    ("new row filter for a role", new_filter, "sales.orders",
     "role partner: row filter none -> 'amount < 1000'", "breaking", "2.0.0"),
    ("changed row filter", changed_filter, "hr.employees",
     "role analyst: row filter \"region = user_attribute('region')\" -> \"region = 'EU'\"",
     "breaking", "2.0.0"),
    ("new mask for a role", new_mask, "hr.employees",
     "role analyst: column region mask none -> 'redact'", "breaking", "2.0.0"),
    ("mesh policy reaches a column", newly_classified, "sales.orders",
     "role partner: column amount mask none -> 'redact (mesh policy pii-redacted)'",
     "breaking", "2.0.0"),
    ("column added", add_column("sales.orders"), "sales.orders",
     "column region_code added", "compatible", "1.1.0"),
    ("type widened", set_column("sales.order_items", "quantity", type="BIGINT"),
     "sales.order_items", "column quantity: type INTEGER -> BIGINT", "compatible", "1.1.0"),
    ("decimal widened", set_column("sales.orders", "amount", type="DECIMAL(18,4)"),
     "sales.orders", "column amount: type DECIMAL(12,2) -> DECIMAL(18,4)", "compatible",
     "1.1.0"),
    ("integer into a decimal that holds it",
     set_column("sales.order_items", "quantity", type="DECIMAL(12,0)"), "sales.order_items",
     "column quantity: type INTEGER -> DECIMAL(12,0)", "compatible", "1.1.0"),
    ("now NOT NULL", set_column("sales.orders", "ts", nullable=False), "sales.orders",
     "column ts: NOT NULL", "compatible", "1.1.0"),
    ("mask removed", removed_mask, "hr.employees",
     "role analyst: column salary mask 'null' -> none", "compatible", "1.1.0"),
    ("description", set_product("sales.orders", description="Orders."), "sales.orders",
     "description, tags or owner", "metadata", "1.0.1"),
    ("column description", set_column("sales.orders", "ts", description="Placed."),
     "sales.orders", "column ts: description or classification", "metadata", "1.0.1"),
    ("product deprecated", deprecate_orders, "sales.orders",
     "deprecated (sunset 2027-01-31, successor sales.orders_v2)", "compatible", "1.1.0"),
]  # fmt: skip
BELOW = {"2.0.0": "1.1.0", "1.1.0": "1.0.1", "1.0.1": "1.0.0"}


def read(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(directory.glob("*.yaml"))}


def write(directory: Path, files: dict[str, dict[str, Any]]) -> None:
    for name, document in files.items():
        (directory / name).write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def configs(demo_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    for target in (old, new):
        shutil.copytree(demo_dir, target, ignore=shutil.ignore_patterns("data"))
        (target / "data").symlink_to(demo_dir / "data")
        files = read(target)  # a NOT NULL key column in both, for the NULL-able case
        column(files, "sales.orders", "order_id")["nullable"] = False
        write(target, files)
    return old, new


def check(new: Path, against: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--config", str(new), "--against", against])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(("case", "edit", "name", "what", "impact", "least"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_change_is_classified_and_needs_its_bump(
    configs: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
    case: str, edit: Edit, name: str, what: str, impact: str, least: str,
) -> None:  # fmt: skip
    old, new = configs
    files = read(new)
    edit(files)
    write(new, files)

    code, out = check(new, str(old), capsys)
    assert f"{name}: {impact}: {what}\n" in out
    assert code == 1, out
    assert f"{name}: problem: version 1.0.0 -> 1.0.0, but a {impact} change needs a" in out
    assert f"(at least {least})" in out

    for version, passes in ((BELOW[least], False), (least, True)):
        product(files, name)["version"] = version
        write(new, files)
        code, out = check(new, str(old), capsys)
        assert (code == 0) is passes, (version, out)
    assert out.endswith("versions ok\n")


def test_an_unchanged_config_needs_no_bump(
    configs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = configs
    assert check(new, str(old), capsys) == (0, f"0 contract changes against {old}; versions ok\n")


def remove_budgets(files: dict[str, dict[str, Any]]) -> None:
    files["finance.yaml"]["products"] = [p for p in files["finance.yaml"]["products"]
                                         if p["name"] != "budgets"]  # fmt: skip


def test_a_product_removed_unannounced_fails_and_a_new_one_needs_no_bump(
    configs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = configs
    files = read(new)
    remove_budgets(files)
    write(new, files)
    code, out = check(new, str(old), capsys)
    assert code == 1
    assert "finance.budgets: breaking: product removed without a prior deprecation\n" in out
    assert ("finance.budgets: problem: removed without a prior deprecation: consumers lose it "
            "unwarned; mark it `deprecated:`") in out
    code, out = check(old, str(new), capsys)  # the other way round: a product added
    assert (code, out) == (0, f"0 contract changes against {new}; versions ok\n")


@pytest.mark.parametrize(("sunset", "impact", "what", "passes"), [
    (dt.date(2020, 6, 30), "compatible", "product removed after its sunset (2020-06-30)", True),
    (dt.date(2999, 6, 30), "breaking", "product removed before its sunset (2999-06-30)", False),
])  # fmt: skip
def test_a_deprecated_product_may_go_once_its_sunset_has_passed(
    configs: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
    sunset: dt.date, impact: str, what: str, passes: bool,
) -> None:  # fmt: skip
    old, new = configs
    files = read(old)
    product(files, "finance.budgets")["deprecated"] = {"sunset": sunset}
    write(old, files)
    files = read(new)
    remove_budgets(files)
    write(new, files)

    code, out = check(new, str(old), capsys)
    assert f"finance.budgets: {impact}: {what}\n" in out
    assert (code == 0) is passes, out
    assert ("finance.budgets: problem: removed before its sunset date: consumers were told it "
            "stays until then" in out) is not passes


@pytest.mark.parametrize(("now", "what"), [
    ({"sunset": dt.date(2027, 6, 30)}, "deprecation: successor, sunset or reason"),
    (None, "no longer deprecated"),
])  # fmt: skip
def test_a_deprecation_moved_or_withdrawn_is_metadata(
    configs: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
    now: dict[str, Any] | None, what: str,
) -> None:  # fmt: skip
    old, new = configs
    files = read(old)
    product(files, "finance.budgets")["deprecated"] = {"sunset": dt.date(2027, 1, 31)}
    write(old, files)
    files = read(new)
    if now is not None:
        product(files, "finance.budgets")["deprecated"] = now
    write(new, files)

    code, out = check(new, str(old), capsys)
    assert (code, f"finance.budgets: metadata: {what}\n" in out) == (1, True), out
    product(files, "finance.budgets")["version"] = "1.0.1"
    write(new, files)
    assert check(new, str(old), capsys)[0] == 0


def test_against_a_git_revision(
    configs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, repo = configs
    def git(*argv: str) -> None:
        subprocess.run(["git", "-C", str(repo), *argv], check=True, capture_output=True)
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=ci", "-c", "user.email=ci@example.com", "commit", "-qm", "v1")
    files = read(repo)
    drop_column("sales.orders", "ts")(files)
    write(repo, files)
    code, out = check(repo, "HEAD", capsys)
    assert code == 1
    assert "sales.orders: breaking: column ts removed\n" in out
    assert main(["check", "--config", str(repo), "--against", "no-such-revision"]) == 2
    assert "'no-such-revision' is neither a config directory nor a git revision" in \
        capsys.readouterr().err


def test_a_version_that_is_not_semantic_is_a_config_error(
    configs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, new = configs
    files = read(new)
    product(files, "sales.orders")["version"] = "1.0"
    write(new, files)
    code = main(["check", "--config", str(new)])
    err = capsys.readouterr().err
    assert code == 2
    assert "products[0].version: '1.0' is not a semantic version: write MAJOR.MINOR.PATCH" in err
