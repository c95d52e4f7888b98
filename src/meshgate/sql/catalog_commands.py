"""DESCRIBE and SHOW, written as queries over `information_schema`.

The gate admits these commands in exact forms only (`parse.parse_request`); here each becomes
an ordinary SELECT over meshgate's own catalog relations, which then binds, runs and is audited
like any query. So a command answers only what the caller may see, with the same words as a
query: DESCRIBE of a product that does not exist and of one the caller is not granted fail
with the same ProductNotFound. Output columns follow DuckDB's commands (DESCRIBE: column_name,
column_type, null, key, default, extra; SHOW TABLES: name; SHOW SCHEMAS: database_name,
schema_name, current).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from meshgate.catalog.catalog import CatalogView
from meshgate.query.model import CatalogCommand
from meshgate.query.names import folded
from meshgate.sql.bind import resolve_relation

# The queries, as a reader would write them; `:name` placeholders take string literals.
_DESCRIBE = """
SELECT c.column_name, c.data_type AS column_type, c.is_nullable AS "null",
       CASE WHEN k.column_name IS NOT NULL THEN 'PRI' END AS "key",
       c.column_default AS "default",
       CASE WHEN c.is_masked = 'YES' THEN 'masked' END AS extra
FROM information_schema.columns AS c
LEFT JOIN information_schema.key_column_usage AS k
  ON k.table_schema = c.table_schema AND k.table_name = c.table_name
 AND k.column_name = c.column_name
WHERE c.table_schema = :schema AND c.table_name = :table
ORDER BY c.ordinal_position
"""
_TABLES_OF_SCHEMA = """
SELECT table_name AS name FROM information_schema.tables
WHERE table_schema = :schema AND table_catalog = COALESCE(:catalog, table_catalog)
ORDER BY name
"""
_ALL_TABLES = """
SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
WHERE table_type = 'BASE TABLE'
ORDER BY name
"""
_SCHEMAS = """
SELECT catalog_name AS database_name, schema_name,
       COALESCE(schema_name = :current, FALSE) AS "current"
FROM information_schema.schemata
ORDER BY schema_name
"""


def catalog_query(
    command: CatalogCommand, view: CatalogView, default_domain: str | None
) -> exp.Query:
    """The query that answers `command` for the caller whose catalog is `view`.

    `SHOW TABLES FROM sales` -> `SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = 'sales' ...`
    """
    if command.kind == "describe":
        schema, table = resolve_relation(_named(command.name), view, default_domain)
        return _filled(_DESCRIBE, schema=schema, table=table)
    if command.kind == "show_tables":
        if command.name:
            # SHOW TABLES FROM schema (or catalog.schema): names fold as a FROM clause's do.
            named = folded(_named((*command.name, ("", True))))
            assert isinstance(named, exp.Table)
            return _filled(_TABLES_OF_SCHEMA, schema=named.db, catalog=named.catalog or None)
        if default_domain:
            return _filled(_TABLES_OF_SCHEMA, schema=default_domain, catalog=None)
        return _filled(_ALL_TABLES)
    return _filled(_SCHEMAS, current=default_domain)


def _named(parts: tuple[tuple[str, bool], ...]) -> exp.Table:
    """The name parts as a table reference (last part the table), for resolution."""
    identifiers = [exp.to_identifier(text, quoted=quoted) for text, quoted in parts]
    padded = [None] * (3 - len(identifiers)) + identifiers
    return exp.Table(this=padded[2], db=padded[1], catalog=padded[0])


def _filled(template: str, **values: str | None) -> exp.Query:
    """`template` parsed, each `:name` replaced by its value as a literal (None: NULL)."""

    def fill(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Placeholder):
            return node
        value = values[node.name]
        return exp.null() if value is None else exp.Literal.string(value)

    query = sqlglot.parse_one(template, read="duckdb").transform(fill)
    assert isinstance(query, exp.Query)
    return query
