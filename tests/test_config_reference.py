"""The config format as editors and readers get it: a JSON Schema and a reference page.

Both are generated from the config models; the committed copies in docs/ must match, and the
schema must accept every shipped config and refuse the broken ones it can describe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from meshgate.catalog.reference import config_reference, config_schema, schema_text
from meshgate.demo.generate import demo_config_dir
from tests import test_cli, test_config

ROOT = demo_config_dir().parents[1]
DOCS = ROOT / "docs"
SHIPPED = sorted((ROOT / "config").rglob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = config_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_committed_reference_page_is_the_generated_one() -> None:
    assert (DOCS / "config.md").read_text(encoding="utf-8") == config_reference(), (
        "docs/config.md is stale: run `meshgate config reference > docs/config.md`"
    )


def test_committed_schema_is_the_generated_one() -> None:
    assert (DOCS / "config.schema.json").read_text(encoding="utf-8") == schema_text(), (
        "docs/config.schema.json is stale: run `meshgate config schema > docs/config.schema.json`"
    )


def test_reference_lists_every_key_of_every_section() -> None:
    page = config_reference()
    for section in ("mesh", "server", "sources", "domains", "products", "users", "roles",
                    "policies", "mesh_policies"):  # fmt: skip
        assert f"\n## `{section}:`" in page
    assert "| `token_ttl_seconds` | integer > 0 | `3600` |" in page
    assert "| `password_hash` | text | required | A hash made by `meshgate hash-password`" in page
    assert "| `schema` | text | `null` |" in page


def test_shipped_configs_exist() -> None:
    assert {p.parent.name for p in SHIPPED} == {"demo", "crm-postgres"}


@pytest.mark.parametrize("path", SHIPPED, ids=[f"{p.parent.name}/{p.name}" for p in SHIPPED])
def test_schema_accepts_every_shipped_config(path: Path, validator: Draft202012Validator) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [e.message for e in validator.iter_errors(document)] == []


def _schema_errors(validator: Draft202012Validator, document: Any) -> list[str]:
    """Each error where an editor would show it (inside `X | null` alternatives)."""
    found = []
    for error in validator.iter_errors(document):
        shown = best_match([error])
        assert shown is not None
        found.append(".".join(str(p) for p in shown.absolute_path) + ": " + str(shown.validator))
    return sorted(found)


# test_cli.BROKEN case -> what the schema says; None where a schema cannot tell (a reference
# to another file's names, an environment variable).
CLI_CASES: dict[str, list[str] | None] = {
    "unknown key": ["sources.0: additionalProperties"],
    "wrong type": ["mesh.name: type"],
    "missing source": None,
    "undefined env var": None,
    "zero token lifetime": ["server.token_ttl_seconds: exclusiveMinimum"],
    "negative token lifetime": ["server.token_ttl_seconds: exclusiveMinimum"],
}


@pytest.mark.parametrize("case", sorted(test_cli.BROKEN))
def test_schema_rejects_the_cli_tests_broken_configs(
    case: str, tmp_path: Path, validator: Draft202012Validator
) -> None:
    file_name, where, value, _ = test_cli.BROKEN[case]
    directory = test_config.copy_demo_config(tmp_path / "mesh")
    test_cli.edit_yaml(directory / file_name, where, value)
    document = yaml.safe_load((directory / file_name).read_text(encoding="utf-8"))
    assert _schema_errors(validator, document) == (CLI_CASES[case] or [])


# test_config.BROKEN cases the schema also refuses, with what it says.
CONFIG_CASES: dict[str, list[str]] = {
    "unknown key": ["sources.0: additionalProperties"],
    "wrong type": ["products.0.columns.0.nullable: type"],
    "bad grant": ["roles.1.grants.0: pattern"],
    "password instead of its hash": ["users.0: additionalProperties"],
    "tags as a string": ["products.0.tags: type"],
    "version as a number": ["products.0.version: type"],
    "misspelt key": ["products.0: additionalProperties"],
    "misspelt section": [": additionalProperties"],
    "zero token lifetime": ["server.token_ttl_seconds: exclusiveMinimum"],
    "negative token lifetime": ["server.token_ttl_seconds: exclusiveMinimum"],
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_schema_rejects_what_it_can_describe(
    case: str, tmp_path: Path, validator: Draft202012Validator
) -> None:
    file_name, change, _ = test_config.BROKEN[case]
    directory = test_config.copy_demo_config(tmp_path / "mesh")
    test_config.edit_yaml(directory / file_name, change)
    document = yaml.safe_load((directory / file_name).read_text(encoding="utf-8"))
    assert _schema_errors(validator, document) == CONFIG_CASES[case]


def test_schema_is_json_with_a_dialect() -> None:
    schema = json.loads(schema_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"mesh", "server", "sources", "domains", "products",
                                         "users", "roles", "policies", "mesh_policies"}
