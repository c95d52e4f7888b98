"""A data product's contract as an Open Data Contract Standard (ODCS v3) document.

ODCS is the format data catalogs and contract tools (datacontract-cli, Collibra, Atlan...)
read, so a product declared in meshgate's config can be published where its consumers look.
The document holds what a consumer depends on (the product as one schema object, its columns
as properties with their types, keys, nullability and classification; its owner, version,
tags, deprecation and quality expectations, a freshness SLO as an SLA property) and the
meshgate name to query it by. It holds no physical names, no
source and no policy text: those are the deployment's, not part of the contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import yaml

from meshgate.catalog.catalog import Catalog, DataProduct, ProductColumn, QueryDefinition
from meshgate.catalog.config import DURATION, ExpectationConfig
from meshgate.types import sql_type_name

API_VERSION = "v3.2.0"

_INTEGER_FORMATS = {pa.int8(): "i8", pa.int16(): "i16", pa.int32(): "i32", pa.int64(): "i64",
                    pa.uint8(): "u8", pa.uint16(): "u16", pa.uint32(): "u32",
                    pa.uint64(): "u64"}  # fmt: skip


def contract_document(catalog: Catalog, product: DataProduct) -> dict[str, Any]:
    """The ODCS document of `product`, as plain data (what the YAML holds)."""
    domain = catalog.domains[product.domain]
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": f"{catalog.name}.{product.qualified_name}",
        "name": product.qualified_name,
        "version": product.version,
        "status": "deprecated" if product.deprecated is not None else "active",
        "domain": product.domain,
        "dataProduct": product.qualified_name,
        "tenant": catalog.name,
    }
    if product.description:
        document["description"] = {"purpose": product.description}
    if product.tags:
        document["tags"] = list(product.tags)
    document["team"] = _team(product.owner, domain.owner, domain.name)
    expectations = catalog.definition.products[product.domain, product.name].quality
    document["schema"] = [_schema_object(product, expectations)]
    roles = _reading_roles(catalog, product)
    if roles:
        document["roles"] = roles
    document["servers"] = [{
        "server": "meshgate", "type": "custom", "catalog": catalog.name,
        "schema": product.domain,
        "description": f"Arrow Flight SQL: SELECT ... FROM {product.qualified_name}",
    }]  # fmt: skip
    freshness = [_freshness(e, product) for e in expectations if e.freshness is not None]
    if freshness:
        document["slaProperties"] = freshness
    if product.deprecated is not None:
        document["customProperties"] = _deprecation(product)
    return document


def contract_yaml(catalog: Catalog, product: DataProduct) -> str:
    """The ODCS document of `product` as YAML, keys in the standard's order."""
    return yaml.safe_dump(contract_document(catalog, product), sort_keys=False,
                          allow_unicode=True, width=100)  # fmt: skip


def _team(owner: str, domain_owner: str, domain: str) -> dict[str, Any]:
    members = [{"username": owner, "role": "owner"}]
    if domain_owner != owner:
        members.append({"username": domain_owner, "role": "domain owner"})
    return {"name": domain, "members": members}


def _schema_object(
    product: DataProduct, expectations: Iterable[ExpectationConfig]
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "name": product.name,
        "logicalType": "object",
        "physicalType": "view" if isinstance(product.definition, QueryDefinition) else "table",
    }
    if product.description:
        element["description"] = product.description
    if product.deprecated is not None:
        element["deprecated"] = True
    checks = [(e, _quality(e, product)) for e in expectations if e.freshness is None]
    per_column = {c.name: [q for e, q in checks if _column_of(e) == c.name]
                  for c in product.columns}  # fmt: skip
    element["properties"] = [_property(c, product.primary_key, per_column[c.name])
                             for c in product.columns]  # fmt: skip
    whole = [q for e, q in checks if _column_of(e) is None]
    if whole:
        element["quality"] = whole
    return element


def _property(
    column: ProductColumn, primary_key: tuple[str, ...], quality: list[dict[str, Any]]
) -> dict[str, Any]:
    prop: dict[str, Any] = {"name": column.name}
    logical = _logical_type(column.arrow_type)
    if logical is not None:
        prop["logicalType"] = logical
        options = _logical_type_options(column.arrow_type)
        if options:
            prop["logicalTypeOptions"] = options
    prop["physicalType"] = sql_type_name(column.arrow_type)
    prop["required"] = not column.nullable
    if column.name in primary_key:
        prop["primaryKey"] = True
        prop["primaryKeyPosition"] = primary_key.index(column.name) + 1
        if len(primary_key) == 1:
            prop["unique"] = True
    if column.classification is not None:
        prop["classification"] = column.classification
    if column.description:
        prop["description"] = column.description
    if quality:
        prop["quality"] = quality
    return prop


def _column_of(expectation: ExpectationConfig) -> str | None:
    """The one column an expectation is about (it goes on that property), else None (it goes
    on the product: row count, custom SQL, a unique combination of columns)."""
    columns = expectation.columns()
    return columns[0] if len(columns) == 1 and expectation.sql is None else None


def _quality(expectation: ExpectationConfig, product: DataProduct) -> dict[str, Any]:
    """An expectation as an ODCS quality rule: a library metric where ODCS has one, else the
    SQL meshgate's check amounts to (over the product, as consumers name it)."""
    rule: dict[str, Any] = {"name": expectation.name}
    if expectation.not_null is not None:
        rule.update(type="library", metric="nullValues", mustBe=0, dimension="completeness")
    elif expectation.unique is not None:
        rule.update(type="library", metric="duplicateValues", mustBe=0, dimension="uniqueness")
        if not isinstance(expectation.unique, str):
            rule["arguments"] = {"properties": list(expectation.unique)}
    elif expectation.accepted_values is not None:
        rule.update(type="library", metric="invalidValues", mustBe=0, dimension="conformity",
                    arguments={"validValues": list(expectation.accepted_values.values)})
    elif expectation.range is not None:
        bounds = expectation.range
        column = bounds.column
        outside = [f"{column} {sign} {_literal(value)}"
                   for sign, value in (("<", bounds.min), (">", bounds.max)) if value is not None]
        rule.update(type="sql", mustBe=0, dimension="conformity",
                    query=f"SELECT count(*) FROM {product.qualified_name} WHERE "
                          + " OR ".join(outside))  # fmt: skip
    elif expectation.row_count is not None:
        low, high = expectation.row_count.min, expectation.row_count.max
        rule.update(type="library", metric="rowCount", dimension="completeness")
        if low is not None and high is not None:
            rule.update({"mustBe": low} if low == high else {"mustBeBetween": [low, high]})
        elif low is not None:
            rule["mustBeGreaterOrEqualTo"] = low
        else:
            rule["mustBeLessOrEqualTo"] = high
    else:
        assert expectation.sql is not None
        rule.update(type="sql", query=expectation.sql.query, mustBe=0)
    return rule


def _literal(value: int | float | str | None) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _freshness(expectation: ExpectationConfig, product: DataProduct) -> dict[str, Any]:
    """A freshness SLO as ODCS's SLA property `freshness` on the timestamp column."""
    assert expectation.freshness is not None
    match = DURATION.fullmatch(expectation.freshness.max_age)
    assert match is not None  # the config model checked it
    return {"property": "freshness", "value": int(match[1]), "unit": match[2],
            "element": f"{product.name}.{expectation.freshness.column}",
            "description": f"the newest {expectation.freshness.column} is at most "
                           f"{expectation.freshness.max_age} old"}  # fmt: skip


def _logical_type(arrow: pa.DataType) -> str | None:
    """ODCS's logical type of a column; None for types it has no name for (binary,
    intervals): the physical type still says what they are."""
    types = pa.types
    checks = (
        (types.is_integer, "integer"), (types.is_floating, "number"),
        (types.is_decimal, "number"), (types.is_boolean, "boolean"),
        (lambda t: types.is_string(t) or types.is_large_string(t), "string"),
        (types.is_date, "date"), (types.is_timestamp, "timestamp"), (types.is_time, "time"),
        (lambda t: types.is_list(t) or types.is_large_list(t), "array"),
        (types.is_struct, "object"), (types.is_map, "map"),
    )  # fmt: skip
    return next((name for check, name in checks if check(arrow)), None)


def _logical_type_options(arrow: pa.DataType) -> dict[str, Any]:
    if arrow in _INTEGER_FORMATS:
        return {"format": _INTEGER_FORMATS[arrow]}
    if pa.types.is_timestamp(arrow):
        return {"timezone": arrow.tz is not None}
    return {}


def _reading_roles(catalog: Catalog, product: DataProduct) -> list[dict[str, Any]]:
    """The roles granted the product (policies may still filter rows or mask columns)."""
    granted = ("*", f"{product.domain}.*", product.qualified_name)
    roles = []
    for name, role in sorted(catalog.definition.roles.items()):
        if any(grant in granted for grant in role.grants):
            entry: dict[str, Any] = {"role": name, "access": "read"}
            if role.description:
                entry["description"] = role.description
            roles.append(entry)
    return roles


def _deprecation(product: DataProduct) -> list[dict[str, Any]]:
    deprecation = product.deprecated
    assert deprecation is not None
    values: Iterable[tuple[str, str | None]] = (
        ("successor", deprecation.successor), ("sunset", deprecation.sunset.isoformat()),
        ("deprecationReason", deprecation.reason or None),
    )  # fmt: skip
    return [{"property": key, "value": value} for key, value in values if value is not None]
