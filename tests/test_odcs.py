"""`meshgate contract export`: every product's contract as an ODCS v3 document that the
standard's own JSON Schema (from the `open-data-contract-standard` package) accepts.

Each document is printed by the real command and read back as a consumer's tool would; the
demo mesh, the TPC-H mesh of the benchmarks and a deprecated product are exported.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from open_data_contract_standard.model import OpenDataContractStandard

from benchmarks.tpch import TABLES, write_config
from meshgate.catalog.loader import MeshDefinition
from meshgate.cli import main
from meshgate.service import load_definition
from tests.test_deprecation import deprecated_mesh

SCHEMA = json.loads(
    (resources.files("open_data_contract_standard") / "schema.json").read_text("utf-8")
)
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(
    SCHEMA, format_checker=jsonschema.FormatChecker()
)


def export(config: Path, product: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The product's contract as the command prints it, validated against the standard."""
    assert main(["contract", "export", product, "--config", str(config)]) == 0
    document: dict[str, Any] = yaml.safe_load(capsys.readouterr().out)
    errors = sorted(VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    OpenDataContractStandard.model_validate(document)  # the package's own model reads it too
    return document


@pytest.fixture(scope="module")
def tpch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmarks' TPC-H config; exporting reads only the config, so no database runs."""
    directory = tmp_path_factory.mktemp("tpch")
    write_config(directory, "postgresql://meshgate@127.0.0.1:5432/tpch", "tpch", 0.01)
    return directory


def expected_properties(definition: MeshDefinition, product: str) -> list[dict[str, Any]]:
    """What a consumer should find per column: name, type, NOT NULL, key, classification."""
    config = definition.products[tuple(product.split("."))]  # type: ignore[index]
    key = config.primary_key
    return [{
        "name": c.name, "required": not c.nullable, "primaryKey": c.name in key or None,
        "primaryKeyPosition": key.index(c.name) + 1 if c.name in key else None,
        "classification": c.classification, "description": c.description or None,
    } for c in config.columns]  # fmt: skip


def found_properties(document: dict[str, Any]) -> list[dict[str, Any]]:
    fields = ("name", "required", "primaryKey", "primaryKeyPosition", "classification",
              "description")  # fmt: skip
    return [{f: p.get(f) for f in fields} for p in document["schema"][0]["properties"]]


def test_every_demo_product_exports_a_valid_contract(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = load_definition(demo_dir)
    assert len(definition.products) >= 8
    for domain, name in sorted(definition.products):
        product = f"{domain}.{name}"
        document = export(demo_dir, product, capsys)
        config = definition.products[domain, name]
        assert (document["apiVersion"], document["kind"]) == ("v3.2.0", "DataContract")
        assert (document["id"], document["name"], document["domain"], document["version"],
                document["status"]) == (f"demo.{product}", product, domain, config.version,
                                        "active")  # fmt: skip
        assert document["schema"][0]["name"] == name
        assert document["description"]["purpose"] == config.description
        owner = config.owner or definition.domains[domain].owner
        assert {"username": owner, "role": "owner"} in document["team"]["members"]
        assert found_properties(document) == expected_properties(definition, product)


def test_types_keys_and_classification_of_one_product(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = export(demo_dir, "sales.customers", capsys)
    types = {p["name"]: (p.get("logicalType"), p["physicalType"], p.get("logicalTypeOptions"))
             for p in customers["schema"][0]["properties"]}  # fmt: skip
    assert types == {
        "customer_id": ("integer", "BIGINT", {"format": "i64"}),
        "name": ("string", "VARCHAR", None), "email": ("string", "VARCHAR", None),
        "country": ("string", "VARCHAR", None), "signup_date": ("date", "DATE", None),
        "is_vip": ("boolean", "BOOLEAN", None),
    }  # fmt: skip
    email = customers["schema"][0]["properties"][2]
    assert (email["name"], email["classification"]) == ("email", "pii")
    items = export(demo_dir, "sales.order_items", capsys)["schema"][0]["properties"]
    assert [(p["name"], p["primaryKeyPosition"]) for p in items if p.get("primaryKey")] == [
        ("order_id", 1), ("line_no", 2)]
    assert not any(p.get("unique") for p in items)  # a compound key says nothing per column
    revenue = export(demo_dir, "finance.revenue_by_region", capsys)
    assert revenue["schema"][0]["physicalType"] == "view"  # a product defined by SQL
    assert [r["role"] for r in revenue["roles"]] == ["admin"]  # who may read it


def test_every_tpch_product_exports_a_valid_contract(
    tpch_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = load_definition(tpch_dir)
    for table in TABLES:
        document = export(tpch_dir, f"tpch.{table.name}", capsys)
        properties = document["schema"][0]["properties"]
        assert [(p["name"], p["physicalType"]) for p in properties] == [
            (c.name, c.sql_type) for c in table.columns]
        assert [p["name"] for p in properties if p.get("primaryKey")] == list(table.primary_key)
        assert document["team"]["members"] == [
            {"username": "benchmarks@example.com", "role": "owner"}]
        assert found_properties(document) == expected_properties(definition,
                                                                 f"tpch.{table.name}")


def test_a_deprecated_product_says_so_and_names_its_successor(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = deprecated_mesh(demo_dir, tmp_path / "mesh", successor="finance.orders_ledger",
                           sunset=dt.date(2027, 1, 31), reason="moved to the ledger")
    document = export(mesh, "sales.orders", capsys)
    assert document["status"] == "deprecated"
    assert document["schema"][0]["deprecated"] is True
    assert document["customProperties"] == [
        {"property": "successor", "value": "finance.orders_ledger"},
        {"property": "sunset", "value": "2027-01-31"},
        {"property": "deprecationReason", "value": "moved to the ledger"},
    ]
    assert export(mesh, "finance.orders_ledger", capsys)["status"] == "active"


def test_the_contract_names_no_physical_table_or_source(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = yaml.safe_dump(export(demo_dir, "sales.customers", capsys))
    for physical in ("customer_master", "cust_no", "contact_email", "sales_db"):
        assert physical not in text


def test_an_unknown_product_is_an_error_with_a_suggestion(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["contract", "export", "sales.order", "--config", str(demo_dir)]) == 2
    assert capsys.readouterr().err == (
        "error: no product 'sales.order' is declared; name one as <domain>.<product>; did you "
        "mean 'sales.orders'?\n")


QUALITY = [
    {"not_null": "order_id"}, {"unique": "order_id"}, {"unique": ["employee_id", "ts"]},
    {"accepted_values": {"column": "employee_id", "values": [1, 2, 3]}},
    {"range": {"column": "amount", "min": 0, "max": 100000}},
    {"row_count": {"min": 1, "max": 1000000}},
    {"sql": {"name": "no_negative", "query": "SELECT count(*) FROM sales.orders WHERE amount < 0"}},
    {"freshness": {"column": "ts", "max_age": "1h"}},
]  # fmt: skip


def test_quality_expectations_become_odcs_rules_and_freshness_an_sla(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = tmp_path / "mesh"
    shutil.copytree(demo_dir, mesh, ignore=shutil.ignore_patterns("data"))
    (mesh / "data").symlink_to(demo_dir / "data")
    sales = yaml.safe_load((mesh / "sales.yaml").read_text())
    sales["products"][0]["quality"] = QUALITY
    (mesh / "sales.yaml").write_text(yaml.safe_dump(sales, sort_keys=False))

    document = export(mesh, "sales.orders", capsys)
    orders = document["schema"][0]
    by_column = {p["name"]: p.get("quality", []) for p in orders["properties"]}
    assert by_column["order_id"] == [
        {"name": "not_null(order_id)", "type": "library", "metric": "nullValues", "mustBe": 0,
         "dimension": "completeness"},
        {"name": "unique(order_id)", "type": "library", "metric": "duplicateValues",
         "mustBe": 0, "dimension": "uniqueness"},
    ]  # fmt: skip
    assert by_column["employee_id"][0]["arguments"] == {"validValues": [1, 2, 3]}
    assert by_column["amount"][0]["query"] == (
        "SELECT count(*) FROM sales.orders WHERE amount < 0 OR amount > 100000")
    assert [(q["name"], q.get("metric"), q.get("mustBeBetween"), q.get("query"))
            for q in orders["quality"]] == [
        ("unique(employee_id, ts)", "duplicateValues", None, None),
        ("row_count", "rowCount", [1, 1000000], None),
        ("sql(no_negative)", None, None, "SELECT count(*) FROM sales.orders WHERE amount < 0"),
    ]  # fmt: skip
    assert document["slaProperties"] == [
        {"property": "freshness", "value": 1, "unit": "h", "element": "orders.ts",
         "description": "the newest ts is at most 1h old"}]
