"""`pg_catalog` for PostgreSQL clients, built from what the caller may see.

SQLAlchemy's PostgreSQL dialect, Superset's schema browser and other BI tools read
`pg_namespace`, `pg_class`, `pg_attribute`, `pg_type`, `pg_constraint`, `pg_index`,
`pg_description` and call `format_type`. Answering each query shape by string match does not
scale, so a catalog query runs instead on a small in-memory DuckDB that holds only catalog
tables (never data): one row per domain, product, column and primary key of the caller's
`CatalogView` (so grants decide what exists; masked columns read as nullable, as over Flight
SQL), with PostgreSQL's type OIDs and names. The client's SQL is parsed with sqlglot
(PostgreSQL dialect), its `pg_catalog.*` / `pg_*` relations and the few `pg_*` functions are
pointed at the `pgc` schema holding those tables and macros, casts to `regclass`, `regtype`
and `oid` become integers or look-ups, and the DuckDB it runs on has external access off and
its configuration locked: a catalog query reads nothing else, no file and no source. OIDs are
positions in the caller's own list, so they name nothing a caller cannot see. The DuckDB is
built once per principal and configuration generation (a tenth to a few tenths of a second)
and kept for the next catalog queries (a few milliseconds each).

psql's `\\dt` runs here too (`OPERATOR(pg_catalog.~)` becomes a regular-expression match,
`COLLATE pg_catalog.default` goes); its `\\d TABLE` is still answered by shape in
`postgres.py`, as its queries read columns (`reltoastrelid`, ...) this catalog lacks.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import expressions as exp

from meshgate.catalog.catalog import CatalogView
from meshgate.errors import READ_ONLY, ForbiddenStatement, SqlSyntaxError
from meshgate.principal import Principal
from meshgate.service import QueryService

_SCHEMA = "pgc"
# PostgreSQL's OIDs and format_type names for the types meshgate columns can have.
_TYPES: tuple[tuple[int, str, str, str, int], ...] = (  # oid, typname, format name, category, len
    (16, "bool", "boolean", "B", 1), (17, "bytea", "bytea", "U", -1),
    (20, "int8", "bigint", "N", 8), (21, "int2", "smallint", "N", 2),
    (23, "int4", "integer", "N", 4), (25, "text", "text", "S", -1),
    (114, "json", "json", "U", -1), (700, "float4", "real", "N", 4),
    (701, "float8", "double precision", "N", 8), (1043, "varchar", "character varying", "S", -1),
    (1082, "date", "date", "D", 4), (1083, "time", "time without time zone", "D", 8),
    (1114, "timestamp", "timestamp without time zone", "D", 8),
    (1184, "timestamptz", "timestamp with time zone", "D", 8),
    (1186, "interval", "interval", "T", 16), (1700, "numeric", "numeric", "N", -1),
    (2950, "uuid", "uuid", "U", 16),
    (1000, "_bool", "boolean[]", "A", -1), (1016, "_int8", "bigint[]", "A", -1),
    (1007, "_int4", "integer[]", "A", -1), (1009, "_text", "text[]", "A", -1),
    (1022, "_float8", "double precision[]", "A", -1),
)  # fmt: skip
_ARRAY_OF = {20: 1016, 21: 1007, 23: 1007, 25: 1009, 16: 1000, 701: 1022, 700: 1022}
_VECTORS = {"indkey", "indoption", "indclass", "indcollation"}
_NAMESPACE_OID, _RELATION_OID = 16384, 24576  # user OIDs start at 16384 in PostgreSQL
_FUNCTIONS = {"format_type", "pg_get_expr", "pg_table_is_visible", "pg_get_constraintdef",
              "pg_get_indexdef", "pg_get_userbyid", "obj_description", "col_description",
              "pg_type_is_visible", "pg_get_serial_sequence", "pg_encoding_to_char",
              "has_table_privilege", "has_schema_privilege", "to_regtype", "to_regclass",
              "pg_collation_is_visible", "current_setting"}  # fmt: skip
_RELATIONS = ("pg_namespace", "pg_class", "pg_attribute", "pg_type", "pg_constraint",
              "pg_index", "pg_description", "pg_attrdef", "pg_enum", "pg_range",
              "pg_collation", "pg_am", "pg_inherits", "pg_database", "pg_roles", "pg_user",
              "pg_settings", "pg_proc", "pg_sequence", "pg_partitioned_table",
              "pg_tablespace", "pg_extension", "pg_matviews", "pg_views",
              "pg_foreign_table", "pg_opclass", "pg_statistic_ext", "pg_depend",
              "pg_policy", "pg_rewrite", "pg_trigger")  # fmt: skip


def type_oid(arrow: pa.DataType) -> tuple[int, int]:
    """(PostgreSQL type OID, typmod) of a column of this Arrow type."""
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return _ARRAY_OF.get(type_oid(arrow.value_type)[0], 1009), -1
    if pa.types.is_decimal(arrow):
        return 1700, ((arrow.precision << 16) | arrow.scale) + 4
    for test, oid in ((pa.types.is_boolean, 16), (pa.types.is_int64, 20),
                      (pa.types.is_int16, 21), (pa.types.is_int8, 21),
                      (pa.types.is_integer, 23), (pa.types.is_float32, 700),
                      (pa.types.is_floating, 701), (pa.types.is_date, 1082),
                      (pa.types.is_time, 1083), (pa.types.is_binary, 17),
                      (pa.types.is_large_binary, 17), (pa.types.is_interval, 1186),
                      (pa.types.is_duration, 1186)):  # fmt: skip
        if test(arrow):
            return oid, -1
    if pa.types.is_timestamp(arrow):
        return (1184 if arrow.tz is not None else 1114), -1
    return 25, -1


def relation_oid(position: int) -> int:
    """The OID of the caller's product at `position` of their list sorted by (domain, name),
    the same in every catalog answer (its primary key's index takes the next one)."""
    return _RELATION_OID + 2 * position


def relation_position(oid: int) -> int | None:
    offset = oid - _RELATION_OID
    return offset // 2 if offset >= 0 and offset % 2 == 0 else None


def is_catalog_query(sql: str) -> bool:
    """Whether `sql` reads a relation of PostgreSQL's system catalog (a query that only
    mentions one, in a string say, is not one)."""
    lowered = sql.lower()
    if "pg_catalog" not in lowered and not any(name in lowered for name in _RELATIONS):
        return False
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except sqlglot.errors.SqlglotError:
        return False  # the QueryService says what is wrong with it
    return any(_is_catalog_relation(table) for table in tree.find_all(exp.Table))


def _is_catalog_relation(table: exp.Table) -> bool:
    return table.db.lower() == "pg_catalog" or (
        not table.db and table.name.lower() in _RELATIONS)


def _rows(view: CatalogView) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog's rows for the caller's domains, products, columns and keys."""
    domains = sorted({d.name: d.description for d in view.domains()}.items())
    namespaces = {name: _NAMESPACE_OID + i for i, (name, _) in enumerate(domains)}
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in (
        "pg_namespace", "pg_class", "pg_attribute", "pg_constraint", "pg_index",
        "pg_description")}  # fmt: skip
    for name, description in domains:
        rows["pg_namespace"].append((namespaces[name], name, 10, None))
        if description:
            rows["pg_description"].append((namespaces[name], 2615, 0, description))
    products = sorted((p for p in view.products() if p.domain in namespaces),
                      key=lambda p: (p.domain, p.name))  # fmt: skip
    for i, product in enumerate(products):
        relation = relation_oid(i)
        masked = view.masked_columns(product)
        keyed = bool(product.primary_key)
        rows["pg_class"].append((relation, product.name, namespaces[product.domain], "r", 10,
                                 -1.0, keyed, "p", False, 2, None,
                                 len(product.columns)))  # fmt: skip
        if product.description:
            rows["pg_description"].append((relation, 1259, 0, product.description))
        numbers = {}
        for number, column in enumerate(product.columns, start=1):
            oid, modifier = type_oid(column.arrow_type)
            numbers[column.name] = number
            rows["pg_attribute"].append((relation, column.name, oid, modifier, number,
                                         not (column.nullable or column.name in masked),
                                         False, False, "", "", 0))  # fmt: skip
            if column.description:
                rows["pg_description"].append((relation, 1259, number, column.description))
        if keyed:
            index = relation + 1
            keys = [numbers[c] for c in product.primary_key]
            rows["pg_class"].append((index, product.primary_key_name,
                                     namespaces[product.domain], "i", 10, -1.0, False, "p",
                                     False, 403, None, len(keys)))  # fmt: skip
            rows["pg_constraint"].append((index, product.primary_key_name,
                                          namespaces[product.domain], "p", relation, keys, 0,
                                          None, False, False, True, index, "", ""))  # fmt: skip
            rows["pg_index"].append((index, relation, keys, True, True, None, None,
                                     len(keys), len(keys), [0] * len(keys)))  # fmt: skip
    return rows


_DDL = f"""
CREATE SCHEMA {_SCHEMA};
CREATE TABLE {_SCHEMA}.pg_namespace (oid BIGINT, nspname VARCHAR, nspowner BIGINT,
  nspacl VARCHAR[]);
CREATE TABLE {_SCHEMA}.pg_class (oid BIGINT, relname VARCHAR, relnamespace BIGINT, relkind VARCHAR,
  relowner BIGINT, reltuples DOUBLE, relhasindex BOOLEAN, relpersistence VARCHAR,
  relispartition BOOLEAN, relam BIGINT, reloptions VARCHAR[], relnatts INTEGER,
  relhasrules BOOLEAN DEFAULT false, relhastriggers BOOLEAN DEFAULT false,
  relrowsecurity BOOLEAN DEFAULT false, relforcerowsecurity BOOLEAN DEFAULT false,
  relchecks INTEGER DEFAULT 0, reltablespace BIGINT DEFAULT 0, reloftype BIGINT DEFAULT 0,
  relreplident VARCHAR DEFAULT 'd', relpartbound VARCHAR, reltype BIGINT DEFAULT 0,
  relacl VARCHAR[], relpages INTEGER DEFAULT 0, relisshared BOOLEAN DEFAULT false);
CREATE TABLE {_SCHEMA}.pg_attribute (attrelid BIGINT, attname VARCHAR, atttypid BIGINT,
  atttypmod INTEGER, attnum SMALLINT, attnotnull BOOLEAN, attisdropped BOOLEAN,
  atthasdef BOOLEAN, attidentity VARCHAR, attgenerated VARCHAR, attcollation BIGINT,
  attndims INTEGER DEFAULT 0, attlen INTEGER DEFAULT -1, attislocal BOOLEAN DEFAULT true,
  attinhcount INTEGER DEFAULT 0);
CREATE TABLE {_SCHEMA}.pg_type (oid BIGINT, typname VARCHAR, format_name VARCHAR,
  typcategory VARCHAR, typlen INTEGER, typnamespace BIGINT DEFAULT 11,
  typtype VARCHAR DEFAULT 'b', typbasetype BIGINT DEFAULT 0, typtypmod INTEGER DEFAULT -1,
  typnotnull BOOLEAN DEFAULT false, typelem BIGINT DEFAULT 0, typarray BIGINT DEFAULT 0,
  typrelid BIGINT DEFAULT 0, typowner BIGINT DEFAULT 10, typdelim VARCHAR DEFAULT ',',
  typinput VARCHAR, typoutput VARCHAR, typreceive VARCHAR, typdefault VARCHAR,
  typcollation BIGINT DEFAULT 0, typisdefined BOOLEAN DEFAULT true,
  typbyval BOOLEAN DEFAULT false);
CREATE TABLE {_SCHEMA}.pg_constraint (oid BIGINT, conname VARCHAR, connamespace BIGINT,
  contype VARCHAR, conrelid BIGINT, conkey SMALLINT[], confrelid BIGINT, confkey SMALLINT[],
  condeferrable BOOLEAN, condeferred BOOLEAN, convalidated BOOLEAN, conindid BIGINT,
  confupdtype VARCHAR, confdeltype VARCHAR, confmatchtype VARCHAR DEFAULT 's',
  conislocal BOOLEAN DEFAULT true, coninhcount INTEGER DEFAULT 0,
  connoinherit BOOLEAN DEFAULT true,
  conbin VARCHAR, contypid BIGINT DEFAULT 0, conparentid BIGINT DEFAULT 0);
CREATE TABLE {_SCHEMA}.pg_index (indexrelid BIGINT, indrelid BIGINT, indkey SMALLINT[],
  indisunique BOOLEAN, indisprimary BOOLEAN, indexprs VARCHAR, indpred VARCHAR,
  indnatts SMALLINT, indnkeyatts SMALLINT, indoption SMALLINT[],
  indisexclusion BOOLEAN DEFAULT false, indimmediate BOOLEAN DEFAULT true,
  indisclustered BOOLEAN DEFAULT false, indisvalid BOOLEAN DEFAULT true,
  indisready BOOLEAN DEFAULT true, indislive BOOLEAN DEFAULT true,
  indisreplident BOOLEAN DEFAULT false, indnullsnotdistinct BOOLEAN DEFAULT false,
  indclass BIGINT[], indcollation BIGINT[]);
CREATE TABLE {_SCHEMA}.pg_description (objoid BIGINT, classoid BIGINT, objsubid INTEGER,
  description VARCHAR);
CREATE TABLE {_SCHEMA}.pg_attrdef (oid BIGINT, adrelid BIGINT, adnum SMALLINT, adbin VARCHAR);
CREATE TABLE {_SCHEMA}.pg_enum (oid BIGINT, enumtypid BIGINT, enumsortorder DOUBLE,
  enumlabel VARCHAR);
CREATE TABLE {_SCHEMA}.pg_range (rngtypid BIGINT, rngsubtype BIGINT, rngmultitypid BIGINT);
CREATE TABLE {_SCHEMA}.pg_collation (oid BIGINT, collname VARCHAR, collnamespace BIGINT);
CREATE TABLE {_SCHEMA}.pg_am (oid BIGINT, amname VARCHAR, amtype VARCHAR);
INSERT INTO {_SCHEMA}.pg_am VALUES (2, 'heap', 't'), (403, 'btree', 'i');
CREATE TABLE {_SCHEMA}.pg_inherits (inhrelid BIGINT, inhparent BIGINT, inhseqno INTEGER,
  inhdetachpending BOOLEAN);
CREATE TABLE {_SCHEMA}.pg_database (oid BIGINT, datname VARCHAR, datdba BIGINT,
  encoding INTEGER, datcollate VARCHAR, datctype VARCHAR, datistemplate BOOLEAN,
  datallowconn BOOLEAN);
INSERT INTO {_SCHEMA}.pg_database VALUES (16383, 'meshgate', 10, 6, 'C', 'C', false, true);
CREATE TABLE {_SCHEMA}.pg_roles (oid BIGINT, rolname VARCHAR, rolsuper BOOLEAN);
CREATE TABLE {_SCHEMA}.pg_user (usesysid BIGINT, usename VARCHAR, usesuper BOOLEAN);
CREATE TABLE {_SCHEMA}.pg_settings (name VARCHAR, setting VARCHAR);
INSERT INTO {_SCHEMA}.pg_settings VALUES ('server_version', '15.0'),
  ('server_encoding', 'UTF8'), ('standard_conforming_strings', 'on'),
  ('max_identifier_length', '63'), ('TimeZone', 'UTC'), ('DateStyle', 'ISO, MDY'),
  ('default_table_access_method', 'heap'), ('search_path', 'public'),
  ('transaction_isolation', 'read committed'), ('client_encoding', 'UTF8');
"""
# Relations meshgate has nothing for (no functions, views, sequences, rules...): empty, but
# with the columns clients select.
_EMPTY = {
    "pg_proc": "oid BIGINT, proname VARCHAR, pronamespace BIGINT, prorettype BIGINT, "
               "proargtypes BIGINT[], prokind VARCHAR",
    "pg_sequence": "seqrelid BIGINT, seqtypid BIGINT, seqstart BIGINT, seqincrement BIGINT, "
                   "seqmax BIGINT, seqmin BIGINT, seqcache BIGINT, seqcycle BOOLEAN",
    "pg_partitioned_table": "partrelid BIGINT, partstrat VARCHAR, partnatts SMALLINT",
    "pg_tablespace": "oid BIGINT, spcname VARCHAR",
    "pg_extension": "oid BIGINT, extname VARCHAR, extversion VARCHAR, extnamespace BIGINT",
    "pg_matviews": "schemaname VARCHAR, matviewname VARCHAR, definition VARCHAR",
    "pg_views": "schemaname VARCHAR, viewname VARCHAR, definition VARCHAR",
    "pg_foreign_table": "ftrelid BIGINT, ftserver BIGINT",
    "pg_opclass": "oid BIGINT, opcname VARCHAR, opcmethod BIGINT, opcnamespace BIGINT, "
                  "opcdefault BOOLEAN",
    "pg_statistic_ext": "oid BIGINT, stxname VARCHAR, stxrelid BIGINT, stxnamespace BIGINT",
    "pg_depend": "classid BIGINT, objid BIGINT, objsubid INTEGER, refclassid BIGINT, "
                 "refobjid BIGINT, refobjsubid INTEGER, deptype VARCHAR",
    "pg_policy": "oid BIGINT, polname VARCHAR, polrelid BIGINT",
    "pg_rewrite": "oid BIGINT, rulename VARCHAR, ev_class BIGINT",
    "pg_trigger": "oid BIGINT, tgname VARCHAR, tgrelid BIGINT",
}
_MACROS = f"""
CREATE MACRO {_SCHEMA}.format_type(t, m) AS CASE
  WHEN t = 1700 AND m >= 4 THEN 'numeric(' || ((m - 4) >> 16) || ',' || ((m - 4) & 65535) || ')'
  ELSE (SELECT format_name FROM {_SCHEMA}.pg_type WHERE oid = t) END;
CREATE MACRO {_SCHEMA}.pg_get_expr(e, r) AS NULL::VARCHAR, (e, r, p) AS NULL::VARCHAR;
CREATE MACRO {_SCHEMA}.pg_table_is_visible(o) AS true;
CREATE MACRO {_SCHEMA}.pg_type_is_visible(o) AS true;
CREATE MACRO {_SCHEMA}.has_table_privilege(a, b) AS true, (a, b, c) AS true;
CREATE MACRO {_SCHEMA}.has_schema_privilege(a, b) AS true, (a, b, c) AS true;
CREATE MACRO {_SCHEMA}.pg_get_serial_sequence(a, b) AS NULL::VARCHAR;
CREATE MACRO {_SCHEMA}.pg_collation_is_visible(o) AS true;
CREATE MACRO {_SCHEMA}.current_setting(n) AS (SELECT min(setting) FROM {_SCHEMA}.pg_settings
  WHERE lower(name) = lower(n)), (n, missing_ok) AS (SELECT min(setting)
  FROM {_SCHEMA}.pg_settings WHERE lower(name) = lower(n));
CREATE MACRO {_SCHEMA}.pg_encoding_to_char(e) AS 'UTF8';
CREATE MACRO {_SCHEMA}.pg_get_userbyid(o) AS 'meshgate';
CREATE MACRO {_SCHEMA}.obj_description(o) AS (SELECT min(description)
  FROM {_SCHEMA}.pg_description WHERE objoid = o AND objsubid = 0),
  (o, c) AS (SELECT min(description) FROM {_SCHEMA}.pg_description
  WHERE objoid = o AND objsubid = 0);
CREATE MACRO {_SCHEMA}.col_description(o, n) AS (SELECT min(description)
  FROM {_SCHEMA}.pg_description WHERE objoid = o AND objsubid = n);
CREATE MACRO {_SCHEMA}.key_columns(o) AS (SELECT string_agg(a.attname, ', '
  ORDER BY list_position(c.conkey, a.attnum)) FROM {_SCHEMA}.pg_constraint c,
  {_SCHEMA}.pg_attribute a WHERE c.oid = o AND a.attrelid = c.conrelid
  AND list_contains(c.conkey, a.attnum));
CREATE MACRO {_SCHEMA}.pg_get_constraintdef(o) AS 'PRIMARY KEY (' || {_SCHEMA}.key_columns(o)
  || ')', (o, p) AS 'PRIMARY KEY (' || {_SCHEMA}.key_columns(o) || ')';
CREATE MACRO {_SCHEMA}.pg_get_indexdef(o) AS NULL::VARCHAR,
  (o, c, p) AS (SELECT a.attname FROM {_SCHEMA}.pg_index i,
  {_SCHEMA}.pg_attribute a WHERE i.indexrelid = o AND a.attrelid = i.indrelid
  AND a.attnum = i.indkey[c]);
CREATE MACRO {_SCHEMA}.regclass_of(name) AS (SELECT c.oid FROM {_SCHEMA}.pg_class c
  JOIN {_SCHEMA}.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname || '.' || c.relname = name OR (c.relname = name AND NOT contains(name, '.'))
     OR '"' || n.nspname || '"."' || c.relname || '"' = name);
CREATE MACRO {_SCHEMA}.regtype_of(name) AS (SELECT min(oid) FROM {_SCHEMA}.pg_type
  WHERE typname = name OR format_name = name);
CREATE MACRO {_SCHEMA}.to_regtype(name) AS {_SCHEMA}.regtype_of(name);
CREATE MACRO {_SCHEMA}.to_regclass(name) AS {_SCHEMA}.regclass_of(name);
"""


class CatalogQueries:
    """Runs clients' catalog queries, each on its caller's own `pg_catalog`.

    One small DuckDB per principal and configuration generation, kept for the next query
    (BI tools send dozens at connect) and dropped, least recently used first, past
    `_KEPT`; a query runs on a cursor of its own."""

    def __init__(self, service: QueryService) -> None:
        self._service = service
        self._kept: OrderedDict[tuple[Any, ...], duckdb.DuckDBPyConnection] = OrderedDict()
        self._lock = threading.Lock()

    def run(self, principal: Principal, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        translated = translate(sql)
        cursor = self._catalog(principal).cursor()
        try:
            return cursor.execute(translated, list(params)).fetch_arrow_table()
        except duckdb.Error as exc:
            raise SqlSyntaxError(
                "this catalog query is not supported by meshgate's pg_catalog "
                f"({str(exc).splitlines()[0]})") from None
        finally:
            cursor.close()

    def _catalog(self, principal: Principal) -> duckdb.DuckDBPyConnection:
        key = (self._service.generation, principal.name, principal.roles,
               tuple(sorted(principal.attributes.items())))  # fmt: skip
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept
        connection = duckdb.connect(config={"threads": 1, "memory_limit": "256MB"})
        _fill(connection, self._service.view(principal))
        # Nothing but these tables: no file, no network, no setting changed by a query.
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        with self._lock:
            self._kept[key] = connection
            while len(self._kept) > _KEPT:
                self._kept.popitem(last=False)[1].close()
        return connection

    def close(self) -> None:
        with self._lock:
            while self._kept:
                self._kept.popitem()[1].close()


_KEPT = 32


def _fill(connection: duckdb.DuckDBPyConnection, view: CatalogView) -> None:
    connection.execute(_DDL)
    for name, columns in _EMPTY.items():
        connection.execute(f"CREATE TABLE {_SCHEMA}.{name} ({columns})")
    for name, values in [*_rows(view).items(), ("pg_type", list(_TYPES))]:
        if values:  # the rows fill a table's first columns; the others keep their defaults
            names = [row[0] for row in connection.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND "
                "table_name = ? ORDER BY column_index", [_SCHEMA, name]).fetchall()]
            width = len(values[0])
            rows = pa.Table.from_pylist([dict(zip(names, row, strict=False)) for row in values])
            connection.register("catalog_rows", rows)
            connection.execute(f"INSERT INTO {_SCHEMA}.{name} ({', '.join(names[:width])}) "
                               f"SELECT {', '.join(names[:width])} FROM catalog_rows")
            connection.unregister("catalog_rows")
    connection.execute(_MACROS)


def translate(sql: str) -> str:
    """The client's PostgreSQL catalog query as DuckDB SQL over the `pgc` schema."""
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except sqlglot.errors.ParseError as exc:
        raise SqlSyntaxError(f"catalog query could not be parsed: {exc}") from None
    if not isinstance(tree, exp.Query):
        raise ForbiddenStatement(f"only SELECT reads pg_catalog: {READ_ONLY}")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not (_is_catalog_relation(table) or (not table.db and table.name.lower() in ctes)):
            # Nothing else: no product (ask for those apart), no DuckDB table function.
            raise SqlSyntaxError(
                f"a pg_catalog query reads only pg_catalog's relations, not {table.sql()!r}")
    return _rewrite(tree).sql(dialect="duckdb")


def _rewrite(node: exp.Expr) -> exp.Expr:
    """Children first, so that a rewritten function or cast already holds rewritten
    arguments."""
    for child in list(node.iter_expressions()):
        rewritten = _rewrite(child)
        if rewritten is not child:
            child.replace(rewritten)
    return _point_at_catalog(node)


def _point_at_catalog(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Table) and (node.db.lower() == "pg_catalog" or (
            not node.db and node.name.lower() in _RELATIONS)):  # fmt: skip
        if node.name.lower() not in _RELATIONS:
            raise SqlSyntaxError(f"pg_catalog.{node.name} is not served by meshgate")
        return exp.table_(node.name.lower(), db=_SCHEMA, alias=node.alias or None)
    if isinstance(node, exp.Column) and node.db.lower() == "pg_catalog":
        return exp.column(node.name, table=node.table.lower(), db=_SCHEMA, quoted=False)
    if isinstance(node, exp.Dot) and isinstance(node.this, exp.Identifier) and \
            node.this.name.lower() == "pg_catalog" and isinstance(node.expression, exp.Func):
        function: exp.Expr = node.args["expression"]
        return _point_at_catalog(function)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "json_build_object":
        return exp.Anonymous(this="json_object", expressions=[
            exp.cast(e, "VARCHAR") if i % 2 == 0 else e for i, e in enumerate(node.expressions)])
    if isinstance(node, exp.Anonymous) and node.name.lower() in _FUNCTIONS:
        return exp.Anonymous(this=f"{_SCHEMA}.{node.name.lower()}",
                             expressions=node.expressions)  # fmt: skip
    if isinstance(node, exp.Operator) and str(node.args.get("operator")).lower() in (
            "pg_catalog.~", "~"):  # psql's name patterns: `OPERATOR(pg_catalog.~)`
        return exp.RegexpLike(this=node.this, expression=node.expression)
    if isinstance(node, exp.Collate) and node.expression.sql().lower() in (
            "pg_catalog.default", 'pg_catalog."default"', "default"):  # fmt: skip
        collated: exp.Expr = node.this
        return collated
    if isinstance(node, exp.EQ) and isinstance(node.expression, exp.Any) and not isinstance(
            node.expression.this, (exp.Subquery, exp.Select)):  # fmt: skip
        return exp.Anonymous(this="list_contains",
                             expressions=[node.expression.this, node.this])  # x = ANY(array)
    if isinstance(node, exp.Cast):
        target = node.to.sql(dialect="postgres").lower()
        if target in ("varchar", "text") and isinstance(node.this, exp.Column) and \
                node.this.name.lower() in _VECTORS:
            # int2vector and oidvector read as PostgreSQL writes them: "1 3"
            return exp.Anonymous(this="array_to_string",
                                 expressions=[node.this, exp.Literal.string(" ")])
        if target in ("regclass", "pg_catalog.regclass"):
            return _lookup("regclass_of", node.this)
        if target in ("regtype", "pg_catalog.regtype"):
            return _lookup("regtype_of", node.this)
        if target in ("oid", "pg_catalog.oid", "regproc", "name", "pg_catalog.name"):
            return exp.cast(node.this, "BIGINT" if "oid" in target else "VARCHAR")
    return node


def _lookup(macro: str, value: exp.Expr) -> exp.Expr:
    if not (isinstance(value, exp.Literal) and value.is_string) and not isinstance(
            value, (exp.Placeholder, exp.Parameter)):  # fmt: skip
        return exp.cast(value, "BIGINT")  # an OID already
    return exp.Anonymous(this=f"{_SCHEMA}.{macro}", expressions=[value])
