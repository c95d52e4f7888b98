"""The dependency direction is the architecture (ARCHITECTURE.md §6), checked on the source.

Connectors import only the connector-facing surface of meshgate (the SPI, the SQL-connector
base, types, errors); the SPI imports nothing of meshgate, the connector base only the SPI,
types and errors; nothing but the CLI imports the server; the engine never imports a
connector package; the stages of a query's path import only earlier stages, with the query
model at the bottom.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE_SURFACE = ("meshgate.spi", "meshgate.types", "meshgate.errors")
CONNECTOR_SURFACE = (*BASE_SURFACE, "meshgate.sqlconnector")


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


CONNECTOR_FILES = sorted((ROOT / "connectors").rglob("*.py"))
ENGINE_FILES = sorted((ROOT / "src" / "meshgate").rglob("*.py"))


@pytest.mark.parametrize("path", CONNECTOR_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_connectors_import_only_the_spi(path: Path) -> None:
    engine = {m for m in imports(path) if m == "meshgate" or m.startswith("meshgate.")}
    outside = {m for m in engine if not within(m, CONNECTOR_SURFACE)}
    assert not outside, (
        f"{path.name} imports {sorted(outside)}; connectors may use only the SPI, the "
        "SQL-connector base, types and errors"
    )


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_cli_imports_the_server_and_no_one_imports_a_connector(path: Path) -> None:
    found = imports(path)
    relative = path.relative_to(ROOT / "src" / "meshgate")
    if relative.parts[0] != "server" and relative.name != "cli.py":
        assert not {m for m in found if m.startswith("meshgate.server")}, relative
    assert not {m for m in found if m.startswith("meshgate_")}, relative


def test_the_spi_imports_nothing_of_meshgate() -> None:
    for path in sorted((ROOT / "src" / "meshgate" / "spi").rglob("*.py")):
        engine = {m for m in imports(path) if within(m, ("meshgate",))}
        assert all(within(m, ("meshgate.spi",)) for m in engine), (path.name, engine)


def test_the_connector_base_imports_only_the_spi_types_and_errors() -> None:
    files = sorted((ROOT / "src" / "meshgate" / "sqlconnector").rglob("*.py"))
    assert files
    for path in files:
        engine = {m for m in imports(path) if within(m, ("meshgate",))}
        outside = {m for m in engine if not within(m, (*BASE_SURFACE, "meshgate.sqlconnector"))}
        assert not outside, f"sqlconnector/{path.name} imports {sorted(outside)}"


# The path of one query (ARCHITECTURE.md §2), earliest first. A stage may import the stages
# before it and the shared layers (errors, types, principal, spi, catalog), never a later one.
STAGES = (
    "meshgate.query",
    "meshgate.sql",
    "meshgate.policy",
    "meshgate.rewrite",
    "meshgate.planner",
    "meshgate.execution",
    "meshgate.service",
)
SHARED_LAYERS = ("meshgate.errors", "meshgate.types", "meshgate.principal",
                 "meshgate.spi", "meshgate.sqlconnector", "meshgate.catalog")  # fmt: skip


def _stage_of(module: str) -> int | None:
    for index, stage in enumerate(STAGES):
        if module == stage or module.startswith(stage + "."):
            return index
    return None


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_stages_import_only_earlier_stages(path: Path) -> None:
    relative = path.relative_to(ROOT / "src")
    module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
    own = _stage_of(module)
    if own is None:
        return
    later = {m for m in imports(path) if (_stage_of(m) or -1) > own}
    assert not later, f"{module} imports later stages {sorted(later)}"


def test_shared_layers_import_no_stage() -> None:
    for layer in SHARED_LAYERS:
        folder = ROOT / "src" / Path(*layer.split("."))
        files = sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
        for path in files:
            stages = {m for m in imports(path) if _stage_of(m) is not None}
            assert not stages, f"{path.relative_to(ROOT)} imports pipeline stages {sorted(stages)}"


def test_there_is_something_to_check() -> None:
    assert len(CONNECTOR_FILES) >= 4
    assert len(ENGINE_FILES) >= 20
