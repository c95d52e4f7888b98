"""The SQL standard's `information_schema`, answered from meshgate's own catalog.

BI tools and people who know SQL look for `information_schema.tables`, `.columns` and
`.schemata` first. meshgate builds them per query from the caller's `CatalogView`, exactly like
the `meshgate` system schema: an ungranted product (and a domain with no granted product) is
absent, columns are the product's declared contract columns, and nothing comes from a source's
catalog or names a physical table (ARCHITECTURE.md §4.4, §4.6). DESCRIBE and SHOW are
rewritten to queries over these relations, so they answer the same.

Column names and order follow the standard (as DuckDB and PostgreSQL spell them); the
relations keep the columns a catalog of read-only logical tables can fill, plus two trailing
extensions: `table_comment` / `column_comment` (the declared description, as DuckDB adds them)
and `columns.is_masked` ('YES' where the caller's policies mask the column). A masked column is
listed with its declared type (masks keep the column's type) and is nullable, since masks such
as `null` and `redact` produce NULL.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from meshgate.catalog import system
from meshgate.catalog.catalog import CatalogView, DataProduct
from meshgate.types import sql_type_name

INFORMATION_SCHEMA = "information_schema"

# The standard's table types; the `meshgate` schema and this one are listed as GetTables
# lists the system schema.
BASE_TABLE = "BASE TABLE"
SYSTEM_TABLE = "SYSTEM TABLE"

TABLES = pa.schema(
    [
        pa.field("table_catalog", pa.string()),
        pa.field("table_schema", pa.string()),
        pa.field("table_name", pa.string()),
        pa.field("table_type", pa.string()),
        pa.field("is_insertable_into", pa.string()),
        pa.field("is_typed", pa.string()),
        pa.field("table_comment", pa.string()),
    ]
)
COLUMNS = pa.schema(
    [
        pa.field("table_catalog", pa.string()),
        pa.field("table_schema", pa.string()),
        pa.field("table_name", pa.string()),
        pa.field("column_name", pa.string()),
        pa.field("ordinal_position", pa.int32()),
        pa.field("column_default", pa.string()),
        pa.field("is_nullable", pa.string()),
        pa.field("data_type", pa.string()),
        pa.field("character_maximum_length", pa.int32()),
        pa.field("numeric_precision", pa.int32()),
        pa.field("numeric_precision_radix", pa.int32()),
        pa.field("numeric_scale", pa.int32()),
        pa.field("column_comment", pa.string()),
        pa.field("is_masked", pa.string()),
    ]
)
SCHEMATA = pa.schema(
    [
        pa.field("catalog_name", pa.string()),
        pa.field("schema_name", pa.string()),
        pa.field("schema_owner", pa.string()),
        pa.field("default_character_set_catalog", pa.string()),
        pa.field("default_character_set_schema", pa.string()),
        pa.field("default_character_set_name", pa.string()),
        pa.field("sql_path", pa.string()),
    ]
)
# A product's declared primary key, the one constraint meshgate knows, as the standard lists
# it (what SQLAlchemy's and BI tools' reflection read, and what DESCRIBE's `key` shows).
TABLE_CONSTRAINTS = pa.schema(
    [
        pa.field("constraint_catalog", pa.string()),
        pa.field("constraint_schema", pa.string()),
        pa.field("constraint_name", pa.string()),
        pa.field("table_catalog", pa.string()),
        pa.field("table_schema", pa.string()),
        pa.field("table_name", pa.string()),
        pa.field("constraint_type", pa.string()),
        pa.field("is_deferrable", pa.string()),
        pa.field("initially_deferred", pa.string()),
    ]
)
KEY_COLUMN_USAGE = pa.schema(
    [
        pa.field("constraint_catalog", pa.string()),
        pa.field("constraint_schema", pa.string()),
        pa.field("constraint_name", pa.string()),
        pa.field("table_catalog", pa.string()),
        pa.field("table_schema", pa.string()),
        pa.field("table_name", pa.string()),
        pa.field("column_name", pa.string()),
        pa.field("ordinal_position", pa.int32()),
    ]
)

INFORMATION_SCHEMA_TABLES: dict[str, pa.Schema] = {
    "columns": COLUMNS,
    "key_column_usage": KEY_COLUMN_USAGE,
    "schemata": SCHEMATA,
    "table_constraints": TABLE_CONSTRAINTS,
    "tables": TABLES,
}
_SYSTEM_SCHEMAS: dict[str, pa.Schema] = {
    "domains": system.DOMAINS,
    "products": system.PRODUCTS,
    "columns": system.COLUMNS,
    "query_history": system.QUERY_HISTORY,
    "quality_results": system.QUALITY_RESULTS,
    "lineage": system.LINEAGE,
    "usage": system.USAGE,
}


def information_schema_table(name: str, view: CatalogView) -> pa.Table:
    """One `information_schema` relation as the caller may see it."""
    if name == "tables":
        return _as_table(_tables(view), TABLES)
    if name == "columns":
        return _as_table(_columns(view), COLUMNS)
    if name == "schemata":
        return _as_table(_schemata(view), SCHEMATA)
    if name == "table_constraints":
        return _as_table(_table_constraints(view), TABLE_CONSTRAINTS)
    if name == "key_column_usage":
        return _as_table(_key_column_usage(view), KEY_COLUMN_USAGE)
    raise KeyError(name)


def _as_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """The rows as `schema`; a row that fills other columns than the schema's is a bug here
    (Arrow would silently drop an unknown key and leave the column NULL)."""
    for row in rows:
        if list(row) != schema.names:
            raise ValueError(f"row keys {list(row)} do not match {schema.names}")
    return pa.Table.from_pylist(rows, schema=schema)


def _system_relations() -> list[tuple[str, str, pa.Schema]]:
    """(schema, table, Arrow schema) of every relation meshgate itself serves."""
    return [(system.SYSTEM_SCHEMA, n, s) for n, s in _SYSTEM_SCHEMAS.items()] + [
        (INFORMATION_SCHEMA, n, s) for n, s in INFORMATION_SCHEMA_TABLES.items()
    ]


def _tables(view: CatalogView) -> list[dict[str, Any]]:
    rows = [
        _table_row(view, p.domain, p.name, BASE_TABLE, p.description) for p in view.products()
    ]
    rows += [
        _table_row(view, schema, name, SYSTEM_TABLE, None)
        for schema, name, _ in _system_relations()
    ]
    return sorted(rows, key=lambda r: (r["table_schema"], r["table_name"]))


def _table_row(
    view: CatalogView, schema: str, name: str, table_type: str, comment: str | None
) -> dict[str, Any]:
    return {
        "table_catalog": view.name, "table_schema": schema, "table_name": name,
        "table_type": table_type, "is_insertable_into": "NO", "is_typed": "NO",
        "table_comment": comment,
    }  # fmt: skip


def _columns(view: CatalogView) -> list[dict[str, Any]]:
    rows = [row for p in view.products() for row in _product_columns(view, p)]
    for schema, name, arrow in _system_relations():
        rows += [
            _column_row(view, schema, name, field.name, i, field.type, field.nullable, None, False)
            for i, field in enumerate(arrow, start=1)
        ]
    return sorted(rows, key=lambda r: (r["table_schema"], r["table_name"],
                                       r["ordinal_position"]))  # fmt: skip


def _product_columns(view: CatalogView, product: DataProduct) -> list[dict[str, Any]]:
    masked = view.masked_columns(product)
    return [
        _column_row(view, product.domain, product.name, c.name, i, c.arrow_type,
                    c.nullable or c.name in masked, c.description, c.name in masked)
        for i, c in enumerate(product.columns, start=1)
    ]  # fmt: skip


def _column_row(
    view: CatalogView,
    schema: str,
    table: str,
    column: str,
    ordinal: int,
    arrow: pa.DataType,
    nullable: bool,
    comment: str | None,
    masked: bool,
) -> dict[str, Any]:
    precision, radix, scale = _numeric(arrow)
    return {
        "table_catalog": view.name, "table_schema": schema, "table_name": table,
        "column_name": column, "ordinal_position": ordinal, "column_default": None,
        "is_nullable": "YES" if nullable else "NO", "data_type": sql_type_name(arrow),
        "character_maximum_length": None, "numeric_precision": precision,
        "numeric_precision_radix": radix, "numeric_scale": scale,
        "column_comment": comment or None, "is_masked": "YES" if masked else "NO",
    }  # fmt: skip


def _table_constraints(view: CatalogView) -> list[dict[str, Any]]:
    return [
        {"constraint_catalog": view.name, "constraint_schema": p.domain,
         "constraint_name": p.primary_key_name, "table_catalog": view.name,
         "table_schema": p.domain, "table_name": p.name, "constraint_type": "PRIMARY KEY",
         "is_deferrable": "NO", "initially_deferred": "NO"}
        for p in view.products() if p.primary_key
    ]  # fmt: skip


def _key_column_usage(view: CatalogView) -> list[dict[str, Any]]:
    return [
        {"constraint_catalog": view.name, "constraint_schema": p.domain,
         "constraint_name": p.primary_key_name, "table_catalog": view.name,
         "table_schema": p.domain, "table_name": p.name, "column_name": column,
         "ordinal_position": position}
        for p in view.products()
        for position, column in enumerate(p.primary_key, start=1)
    ]  # fmt: skip


def _numeric(arrow: pa.DataType) -> tuple[int | None, int | None, int | None]:
    """(precision, radix, scale) as the standard gives them: digits for decimals, bits else."""
    if pa.types.is_decimal(arrow):
        return arrow.precision, 10, arrow.scale
    if pa.types.is_integer(arrow):
        return arrow.bit_width, 2, 0
    if pa.types.is_floating(arrow):
        return (24 if arrow.bit_width == 32 else 53), 2, None  # FLOAT, DOUBLE
    return None, None, None


def _schemata(view: CatalogView) -> list[dict[str, Any]]:
    owners: dict[str, str | None] = {d.name: d.owner for d in view.domains()}
    owners[system.SYSTEM_SCHEMA] = None
    owners[INFORMATION_SCHEMA] = None
    return [
        {
            "catalog_name": view.name, "schema_name": name, "schema_owner": owner,
            "default_character_set_catalog": None, "default_character_set_schema": None,
            "default_character_set_name": None, "sql_path": None,
        }
        for name, owner in sorted(owners.items())
    ]  # fmt: skip
