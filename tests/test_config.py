"""A broken config names the file, the place in it and the problem; the demo config loads."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshgate.catalog.catalog import Catalog, TableDefinition
from meshgate.catalog.loader import load_mesh
from meshgate.demo.generate import demo_config_dir
from meshgate.errors import ConfigError
from meshgate.principal import Principal, verify_password

Edit = Callable[[dict[str, Any]], None]


def copy_demo_config(target: Path) -> Path:
    """The demo's YAML without data: loading a config never touches the sources."""
    target.mkdir(parents=True, exist_ok=True)
    for path in demo_config_dir().glob("*.yaml"):
        shutil.copyfile(path, target / path.name)
    return target


def edit_yaml(path: Path, change: Edit) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def load_error(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_mesh(directory, known_source_kinds=frozenset({"duckdb", "sqlite", "files"}))
    return caught.value.message


def _set(path: tuple[Any, ...], value: Any) -> Edit:
    def change(document: dict[str, Any]) -> None:
        node: Any = document
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


BROKEN: dict[str, tuple[str, Edit, tuple[str, ...]]] = {
    "unknown key": (
        "mesh.yaml", _set(("sources", 0, "colour"), "blue"),
        ("sources.0.colour", "unknown key"),
    ),
    "wrong type": (
        "sales.yaml", _set(("products", 0, "columns", 0, "nullable"), "sometimes"),
        ("products.0.columns.0.nullable", "valid boolean"),
    ),
    "missing source": (
        "sales.yaml", _set(("products", 0, "table", "source"), "warehouse"),
        ("product sales.orders.table.source", "source 'warehouse' is not declared"),
    ),
    "undefined env var": (
        "mesh.yaml", _set(("sources", 0, "options", "path"), "${MESHGATE_TEST_UNSET_PATH}"),
        ("sources[0].options.path", "${MESHGATE_TEST_UNSET_PATH} is not set"),
    ),
    "bad grant": (
        "access.yaml", _set(("roles", 1, "grants"), ["sales"]),
        ("roles.1.grants", "grant 'sales' must be '*', 'domain.*' or 'domain.product'"),
    ),
    "grant on unknown domain": (
        "access.yaml", _set(("roles", 1, "grants"), ["marketing.*"]),
        ("roles.analyst.grants", "unknown domain 'marketing'"),
    ),
    "plain password": (
        "access.yaml", _set(("users", 0, "password_hash"), "admin"),
        ("users.0.password_hash", "must be a scrypt hash, never a plain password"),
    ),
    "unknown source kind": (
        "mesh.yaml", _set(("sources", 0, "kind"), "oracle"),
        ("sources.sales_db.kind", "unknown source kind 'oracle'"),
    ),
    "product without definition": (
        "hr.yaml", _set(("products", 1, "table"), None),
        ("products.1", "exactly one definition"),
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config_names_file_and_problem(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MESHGATE_TEST_UNSET_PATH", raising=False)
    file_name, change, expected = BROKEN[case]
    directory = copy_demo_config(tmp_path / "mesh")
    edit_yaml(directory / file_name, change)
    message = load_error(directory)
    assert file_name in message
    for fragment in expected:
        assert fragment in message


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    directory = copy_demo_config(tmp_path / "mesh")
    edit_yaml(directory / "mesh.yaml", _set(("sources", 0, "colour"), "blue"))
    edit_yaml(directory / "access.yaml", _set(("users", 0, "password_hash"), "admin"))
    message = load_error(directory)
    assert "mesh.yaml" in message
    assert "access.yaml" in message


def test_env_var_is_substituted_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHGATE_TEST_SALES_PATH", "elsewhere/sales.duckdb")
    directory = copy_demo_config(tmp_path / "mesh")
    edit_yaml(directory / "mesh.yaml",
              _set(("sources", 0, "options", "path"), "${MESHGATE_TEST_SALES_PATH}"))
    definition = load_mesh(directory)
    assert definition.sources["sales_db"].options["path"] == "elsewhere/sales.duckdb"


def test_demo_config_loads() -> None:
    definition = load_mesh(demo_config_dir())
    catalog = Catalog(definition)
    assert catalog.name == "demo"
    assert set(catalog.domains) == {"sales", "hr", "finance"}
    assert {s.kind for s in definition.sources.values()} == {"duckdb", "sqlite", "files"}
    employees = catalog.products["hr", "employees"]
    assert [c.name for c in employees.columns][:7] == [
        "id", "name", "email", "ssn", "salary", "region", "manager_id"
    ]
    assert {c.name for c in employees.columns if c.classification == "pii"} == {
        "name", "email", "ssn"
    }
    orders = catalog.products["sales", "orders"]
    assert [(c.name, c.sql_type.sql("duckdb")) for c in orders.columns if c.name in {
        "amount", "ts"}] == [("amount", "DECIMAL(12, 2)"), ("ts", "TIMESTAMPTZ")]


def test_demo_products_are_documented_and_use_every_definition_form() -> None:
    catalog = Catalog(load_mesh(demo_config_dir()))
    for product in catalog.products.values():
        assert product.description, product.qualified_name
        for column in product.columns:
            assert column.description, f"{product.qualified_name}.{column.name}"
    tables = {p.qualified_name: p.definition for p in catalog.products.values()
              if isinstance(p.definition, TableDefinition)}
    sources_of_sales = {d.source for name, d in tables.items() if name.startswith("sales.")}
    assert len(sources_of_sales) == 1
    renamed = tables["sales.customers"]
    assert "cust_no" in renamed.source_columns
    assert len(tables) < len(catalog.products)


def test_demo_users_and_grants() -> None:
    catalog = Catalog(load_mesh(demo_config_dir()))
    for name in ("admin", "analyst"):
        stored = catalog.definition.users[name].password_hash
        assert verify_password(name, stored)
        assert not verify_password("wrong", stored)
    admin = catalog.view(catalog.directory.principal("admin"))
    analyst = catalog.view(catalog.directory.principal("analyst"))
    assert {d.name for d in admin.domains()} == {"sales", "hr", "finance"}
    assert {d.name for d in analyst.domains()} == {"sales", "hr"}
    nobody = catalog.view(Principal("nobody", frozenset()))
    assert nobody.products() == []


EXAMPLE = demo_config_dir().parent / "examples" / "crm-postgres"
EXAMPLE_VARIABLES = ("CRM_PG_USER", "CRM_PG_PASSWORD", "CRM_PG_HOST", "CRM_PG_DATABASE")


def test_postgres_example_takes_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in EXAMPLE_VARIABLES:
        monkeypatch.setenv(name, name.lower())
    definition = load_mesh(EXAMPLE)
    assert definition.sources["crm"].options["dsn"] == (
        "postgresql://crm_pg_user:crm_pg_password@crm_pg_host/crm_pg_database"
    )
    catalog = Catalog(definition)
    marketing = catalog.view(catalog.directory.principal("mo"))
    assert [p.qualified_name for p in marketing.products()] == [
        "customers.accounts", "customers.accounts_per_country"
    ]


def test_postgres_example_names_each_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EXAMPLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    message = load_error(EXAMPLE)
    for name in EXAMPLE_VARIABLES:
        assert f"crm-postgres/mesh.yaml: sources[0].options.dsn: environment variable " \
               f"${{{name}}} is not set" in message


def test_readme_config_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (demo_config_dir().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration"):]
    example = section[section.index("```yaml\n") + len("```yaml\n"):]
    example = example[:example.index("```")]
    (tmp_path / "mesh.yaml").write_text(example, encoding="utf-8")
    for name in ("CRM_PG_USER", "CRM_PG_PASSWORD", "CRM_PG_HOST"):
        monkeypatch.setenv(name, "x")
    catalog = Catalog(load_mesh(tmp_path, known_source_kinds=frozenset({"postgres", "files"})))
    assert sorted(catalog.products) == [
        ("customers", "accounts"), ("customers", "accounts_per_country")
    ]
