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

from sqlglot import exp

from meshgate.catalog.catalog import CatalogView
from meshgate.catalog.information_schema import BASE_TABLE, INFORMATION_SCHEMA
from meshgate.query.model import CatalogCommand
from meshgate.query.names import folded
from meshgate.sql.bind import resolve_relation


def catalog_query(
    command: CatalogCommand, view: CatalogView, default_domain: str | None
) -> exp.Query:
    """The query that answers `command` for the caller whose catalog is `view`.

    >>> catalog_query(CatalogCommand("show_tables", (("sales", False),), "..."), view, None)
    SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'sales' ...
    """
    if command.kind == "describe":
        return _describe(command, view, default_domain)
    if command.kind == "show_tables":
        return _show_tables(command, default_domain)
    return _show_schemas(default_domain)


def _relation(name: str) -> exp.Table:
    return exp.table_(name, db=INFORMATION_SCHEMA)


def _named(parts: tuple[tuple[str, bool], ...]) -> exp.Table:
    """The name parts as a table reference (last part the table), for resolution."""
    identifiers = [exp.to_identifier(text, quoted=quoted) for text, quoted in parts]
    padded = [None] * (3 - len(identifiers)) + identifiers
    return exp.Table(this=padded[2], db=padded[1], catalog=padded[0])


def _equals(column: str, value: str) -> exp.Expr:
    return exp.EQ(this=exp.column(column), expression=exp.Literal.string(value))


def _describe(
    command: CatalogCommand, view: CatalogView, default_domain: str | None
) -> exp.Query:
    schema, table = resolve_relation(_named(command.name), view, default_domain)
    masked = exp.If(this=_equals("is_masked", "YES"), true=exp.Literal.string("masked"))
    return (
        exp.select(
            exp.column("column_name"),
            exp.alias_(exp.column("data_type"), "column_type"),
            exp.alias_(exp.column("is_nullable"), "null", quoted=True),
            exp.alias_(exp.cast(exp.null(), "VARCHAR"), "key", quoted=True),
            exp.alias_(exp.column("column_default"), "default", quoted=True),
            exp.alias_(exp.Case(ifs=[masked]), "extra"),
        )
        .from_(_relation("columns"))
        .where(exp.and_(_equals("table_schema", schema), _equals("table_name", table)))
        .order_by(exp.column("ordinal_position"))
    )


def _show_tables(command: CatalogCommand, default_domain: str | None) -> exp.Query:
    query = exp.select().from_(_relation("tables")).order_by(exp.column("name"))
    if command.name:
        # SHOW TABLES FROM schema (or catalog.schema): names fold as a FROM clause's do.
        named = folded(_named((*command.name, ("", True))))
        assert isinstance(named, exp.Table)
        query = query.select(exp.alias_(exp.column("table_name"), "name"))
        query = query.where(_equals("table_schema", named.db))
        return query.where(_equals("table_catalog", named.catalog)) if named.catalog else query
    if default_domain:
        return query.select(exp.alias_(exp.column("table_name"), "name")).where(
            _equals("table_schema", default_domain)
        )
    qualified = exp.DPipe(
        this=exp.DPipe(this=exp.column("table_schema"), expression=exp.Literal.string(".")),
        expression=exp.column("table_name"),
    )
    return query.select(exp.alias_(qualified, "name")).where(_equals("table_type", BASE_TABLE))


def _show_schemas(default_domain: str | None) -> exp.Query:
    current: exp.Expr = (
        _equals("schema_name", default_domain) if default_domain else exp.false()
    )
    return (
        exp.select(
            exp.alias_(exp.column("catalog_name"), "database_name"),
            exp.column("schema_name"),
            exp.alias_(current, "current", quoted=True),
        )
        .from_(_relation("schemata"))
        .order_by(exp.column("schema_name"))
    )
