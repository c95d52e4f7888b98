"""Catalog metadata commands over the caller's CatalogView, in the canonical Flight SQL schemas.

Catalog = the mesh, schema = a domain, table = a data product; the `meshgate` system schema
lists its discovery tables as SYSTEM TABLE. Result schemas are compared bit for bit by the Go
driver, nullability included (flightsql-clients.md P1), so they are spelled out here once and
every table is built against them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pyarrow as pa

from meshgate.catalog import system
from meshgate.catalog.catalog import CatalogView, DataProduct, ProductColumn
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.server.search_patterns import SearchPattern
from meshgate.types import sql_type_name

TABLE_TYPE = "TABLE"
SYSTEM_TABLE_TYPE = "SYSTEM TABLE"


def _utf8(name: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, pa.string(), nullable=nullable)


CATALOGS_SCHEMA = pa.schema([_utf8("catalog_name", False)])
DB_SCHEMAS_SCHEMA = pa.schema([_utf8("catalog_name"), _utf8("db_schema_name", False)])
TABLES_SCHEMA = pa.schema([
    _utf8("catalog_name"), _utf8("db_schema_name"),
    _utf8("table_name", False), _utf8("table_type", False),
])
TABLES_WITH_SCHEMA_SCHEMA = TABLES_SCHEMA.append(pa.field("table_schema", pa.binary(), False))
TABLE_TYPES_SCHEMA = pa.schema([_utf8("table_type", False)])
PRIMARY_KEYS_SCHEMA = pa.schema([
    _utf8("catalog_name"), _utf8("db_schema_name"), _utf8("table_name", False),
    _utf8("column_name", False), pa.field("key_sequence", pa.int32(), False), _utf8("key_name"),
])
FOREIGN_KEYS_SCHEMA = pa.schema([
    _utf8("pk_catalog_name"), _utf8("pk_db_schema_name"),
    _utf8("pk_table_name", False), _utf8("pk_column_name", False),
    _utf8("fk_catalog_name"), _utf8("fk_db_schema_name"),
    _utf8("fk_table_name", False), _utf8("fk_column_name", False),
    pa.field("key_sequence", pa.int32(), False), _utf8("fk_key_name"), _utf8("pk_key_name"),
    pa.field("update_rule", pa.uint8(), False), pa.field("delete_rule", pa.uint8(), False),
])
XDBC_TYPE_INFO_SCHEMA = pa.schema([
    _utf8("type_name", False),
    pa.field("data_type", pa.int32(), False),
    pa.field("column_size", pa.int32()),
    _utf8("literal_prefix"),
    _utf8("literal_suffix"),
    pa.field("create_params", pa.list_(pa.field("item", pa.string(), False))),
    pa.field("nullable", pa.int32(), False),
    pa.field("case_sensitive", pa.bool_(), False),
    pa.field("searchable", pa.int32(), False),
    pa.field("unsigned_attribute", pa.bool_()),
    pa.field("fixed_prec_scale", pa.bool_(), False),
    pa.field("auto_increment", pa.bool_()),
    _utf8("local_type_name"),
    pa.field("minimum_scale", pa.int32()),
    pa.field("maximum_scale", pa.int32()),
    pa.field("sql_data_type", pa.int32(), False),
    pa.field("datetime_subcode", pa.int32()),
    pa.field("num_prec_radix", pa.int32()),
    pa.field("interval_precision", pa.int32()),
])


def _pattern(message: Any, field: str) -> SearchPattern | None:
    """A search-pattern field, parsed once per request; unset means "no filter"."""
    text = _optional(message, field)
    return None if text is None else SearchPattern(text)


def _matches(value: str, pattern: SearchPattern | None) -> bool:
    return pattern is None or pattern.matches(value)


def _optional(message: Any, field: str) -> str | None:
    """proto3 `optional`: unset means "no filter", which differs from the empty string."""
    return getattr(message, field) if message.HasField(field) else None


def _catalog_matches(view: CatalogView, catalog: str | None) -> bool:
    return catalog is None or catalog == view.name


def catalogs(view: CatalogView) -> pa.Table:
    return pa.Table.from_pylist([{"catalog_name": view.name}], schema=CATALOGS_SCHEMA)


def db_schemas(view: CatalogView, command: pb.CommandGetDbSchemas) -> pa.Table:
    rows = []
    if _catalog_matches(view, _optional(command, "catalog")):
        pattern = _pattern(command, "db_schema_filter_pattern")
        names = sorted([d.name for d in view.domains()] + [system.SYSTEM_SCHEMA])
        rows = [{"catalog_name": view.name, "db_schema_name": name}
                for name in names if _matches(name, pattern)]
    return pa.Table.from_pylist(rows, schema=DB_SCHEMAS_SCHEMA)


def tables(view: CatalogView, command: pb.CommandGetTables) -> pa.Table:
    schema = TABLES_WITH_SCHEMA_SCHEMA if command.include_schema else TABLES_SCHEMA
    if not _catalog_matches(view, _optional(command, "catalog")):
        return schema.empty_table()
    wanted_types = set(command.table_types)
    domain_pattern = _pattern(command, "db_schema_filter_pattern")
    name_pattern = _pattern(command, "table_name_filter_pattern")
    candidates: list[tuple[str, str, str, DataProduct | pa.Schema]] = [
        (p.domain, p.name, TABLE_TYPE, p) for p in view.products()
    ]
    candidates += [(system.SYSTEM_SCHEMA, name, SYSTEM_TABLE_TYPE, table_schema)
                   for name, table_schema in system.SYSTEM_TABLE_SCHEMAS.items()]
    rows = []
    for domain, name, table_type, source in sorted(candidates, key=lambda c: c[:2]):
        if (wanted_types and table_type not in wanted_types) or not (
            _matches(domain, domain_pattern) and _matches(name, name_pattern)
        ):
            continue
        row: dict[str, Any] = {"catalog_name": view.name, "db_schema_name": domain,
                               "table_name": name, "table_type": table_type}
        if command.include_schema:
            columns = (column_schema(view, source) if isinstance(source, DataProduct)
                       else _system_schema(view, name, source))
            row["table_schema"] = columns.serialize().to_pybytes()
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def column_schema(view: CatalogView, product: DataProduct) -> pa.Schema:
    """A product's Arrow schema with the ARROW:FLIGHT:SQL:* metadata JDBC getColumns reads."""
    return pa.schema([
        pa.field(c.name, c.arrow_type, c.nullable, metadata=_column_metadata(view, product, c))
        for c in product.columns
    ])


def _column_metadata(view: CatalogView, product: DataProduct,
                     column: ProductColumn) -> dict[str, str]:
    meta = {
        "ARROW:FLIGHT:SQL:CATALOG_NAME": view.name,
        "ARROW:FLIGHT:SQL:SCHEMA_NAME": product.domain,
        "ARROW:FLIGHT:SQL:TABLE_NAME": product.name,
        "ARROW:FLIGHT:SQL:TYPE_NAME": sql_type_name(column.arrow_type),
        "ARROW:FLIGHT:SQL:REMARKS": column.description,
    }
    if pa.types.is_decimal(column.arrow_type):
        meta["ARROW:FLIGHT:SQL:PRECISION"] = str(column.arrow_type.precision)
        meta["ARROW:FLIGHT:SQL:SCALE"] = str(column.arrow_type.scale)
    return meta


def _system_schema(view: CatalogView, name: str, schema: pa.Schema) -> pa.Schema:
    return pa.schema([
        pa.field(f.name, f.type, f.nullable, metadata={
            "ARROW:FLIGHT:SQL:CATALOG_NAME": view.name,
            "ARROW:FLIGHT:SQL:SCHEMA_NAME": system.SYSTEM_SCHEMA,
            "ARROW:FLIGHT:SQL:TABLE_NAME": name,
            "ARROW:FLIGHT:SQL:TYPE_NAME": sql_type_name(f.type),
        })
        for f in schema
    ])


def table_types() -> pa.Table:
    rows = [{"table_type": t} for t in (SYSTEM_TABLE_TYPE, TABLE_TYPE)]
    return pa.Table.from_pylist(rows, schema=TABLE_TYPES_SCHEMA)


def primary_keys(view: CatalogView, command: pb.CommandGetPrimaryKeys) -> pa.Table:
    """The declared `primary_key` of one product the caller may read (names exact, not
    patterns, as the command defines them); a hidden product answers like a missing one."""
    catalog, domain = _optional(command, "catalog"), _optional(command, "db_schema")
    rows = [
        {"catalog_name": view.name, "db_schema_name": product.domain,
         "table_name": product.name, "column_name": column, "key_sequence": position,
         "key_name": product.primary_key_name}
        for product in view.products()
        if _catalog_matches(view, catalog) and product.name == command.table
        and (domain is None or domain == product.domain)
        for position, column in enumerate(product.primary_key, start=1)
    ]
    return pa.Table.from_pylist(rows, schema=PRIMARY_KEYS_SCHEMA)


def foreign_keys() -> pa.Table:
    """Imported, exported keys and cross references: none declared."""
    return FOREIGN_KEYS_SCHEMA.empty_table()


class _WireType(NamedTuple):
    name: str
    data_type: int
    column_size: int | None = None
    literal_prefix: str | None = None
    literal_suffix: str | None = None
    create_params: list[str] | None = None
    case_sensitive: bool = False
    searchable: int = pb.SEARCHABLE_BASIC
    unsigned: bool | None = None
    fixed_prec_scale: bool = False
    scale: tuple[int, int] | None = None
    radix: int | None = None


_WIRE_TYPES = (
    _WireType("BOOLEAN", pb.XDBC_BIT, 1),
    _WireType("TINYINT", pb.XDBC_TINYINT, 3, unsigned=False, fixed_prec_scale=True,
              scale=(0, 0), radix=10),
    _WireType("SMALLINT", pb.XDBC_SMALLINT, 5, unsigned=False, fixed_prec_scale=True,
              scale=(0, 0), radix=10),
    _WireType("INTEGER", pb.XDBC_INTEGER, 10, unsigned=False, fixed_prec_scale=True,
              scale=(0, 0), radix=10),
    _WireType("BIGINT", pb.XDBC_BIGINT, 19, unsigned=False, fixed_prec_scale=True,
              scale=(0, 0), radix=10),
    _WireType("FLOAT", pb.XDBC_REAL, 24, unsigned=False, radix=2),
    _WireType("DOUBLE", pb.XDBC_DOUBLE, 53, unsigned=False, radix=2),
    _WireType("DECIMAL", pb.XDBC_DECIMAL, 38, create_params=["precision", "scale"],
              unsigned=False, fixed_prec_scale=True, scale=(0, 38), radix=10),
    _WireType("VARCHAR", pb.XDBC_VARCHAR, None, "'", "'", case_sensitive=True,
              searchable=pb.SEARCHABLE_FULL),
    _WireType("BLOB", pb.XDBC_VARBINARY, searchable=pb.SEARCHABLE_NONE),
    _WireType("DATE", pb.XDBC_DATE, 10, "DATE '", "'"),
    _WireType("TIME", pb.XDBC_TIME, 15, "TIME '", "'"),
    _WireType("TIMESTAMP", pb.XDBC_TIMESTAMP, 26, "TIMESTAMP '", "'"),
)


def xdbc_type_info(command: pb.CommandGetXdbcTypeInfo) -> pa.Table:
    """The SQL types meshgate puts on the wire, optionally filtered by XDBC data type."""
    wanted = command.data_type if command.HasField("data_type") else None
    rows = [{
        "type_name": t.name, "data_type": t.data_type, "column_size": t.column_size,
        "literal_prefix": t.literal_prefix, "literal_suffix": t.literal_suffix,
        "create_params": t.create_params, "nullable": pb.NULLABILITY_NULLABLE,
        "case_sensitive": t.case_sensitive, "searchable": t.searchable,
        "unsigned_attribute": t.unsigned, "fixed_prec_scale": t.fixed_prec_scale,
        "auto_increment": False, "local_type_name": t.name,
        "minimum_scale": t.scale[0] if t.scale else None,
        "maximum_scale": t.scale[1] if t.scale else None,
        "sql_data_type": t.data_type, "datetime_subcode": None, "num_prec_radix": t.radix,
        "interval_precision": None,
    } for t in _WIRE_TYPES if wanted is None or t.data_type == wanted]
    return pa.Table.from_pylist(rows, schema=XDBC_TYPE_INFO_SCHEMA)
