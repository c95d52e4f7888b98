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


# Every name below is quoted: the generated query means exactly these relations and columns,
# whatever case folding the binder applies to what users write.
def _relation(name: str) -> exp.Table:
    return exp.table_(name, db=INFORMATION_SCHEMA, quoted=True)


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _alias(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, name, quoted=True)


def _named(parts: tuple[tuple[str, bool], ...]) -> exp.Table:
    """The name parts as a table reference (last part the table), for resolution."""
    identifiers = [exp.to_identifier(text, quoted=quoted) for text, quoted in parts]
    padded = [None] * (3 - len(identifiers)) + identifiers
    return exp.Table(this=padded[2], db=padded[1], catalog=padded[0])


def _equals(column: str, value: str) -> exp.Expr:
    return exp.EQ(this=_column(column), expression=exp.Literal.string(value))


def _describe(
    command: CatalogCommand, view: CatalogView, default_domain: str | None
) -> exp.Query:
    schema, table = resolve_relation(_named(command.name), view, default_domain)
    masked = exp.If(this=_equals("is_masked", "YES"), true=exp.Literal.string("masked"))
    return (
        exp.select(
            _column("column_name"),
            _alias(_column("data_type"), "column_type"),
            _alias(_column("is_nullable"), "null"),
            _alias(exp.cast(exp.null(), "VARCHAR"), "key"),
            _alias(_column("column_default"), "default"),
            _alias(exp.Case(ifs=[masked]), "extra"),
        )
        .from_(_relation("columns"))
        .where(exp.and_(_equals("table_schema", schema), _equals("table_name", table)))
        .order_by(_column("ordinal_position"))
    )


def _show_tables(command: CatalogCommand, default_domain: str | None) -> exp.Query:
    query = exp.select().from_(_relation("tables")).order_by(_column("name"))
    if command.name:
        # SHOW TABLES FROM schema (or catalog.schema): names fold as a FROM clause's do.
        named = folded(_named((*command.name, ("", True))))
        assert isinstance(named, exp.Table)
        query = query.select(_alias(_column("table_name"), "name"))
        query = query.where(_equals("table_schema", named.db))
        return query.where(_equals("table_catalog", named.catalog)) if named.catalog else query
    if default_domain:
        return query.select(_alias(_column("table_name"), "name")).where(
            _equals("table_schema", default_domain)
        )
    qualified = exp.DPipe(
        this=exp.DPipe(this=_column("table_schema"), expression=exp.Literal.string(".")),
        expression=_column("table_name"),
    )
    return query.select(_alias(qualified, "name")).where(_equals("table_type", BASE_TABLE))


def _show_schemas(default_domain: str | None) -> exp.Query:
    current: exp.Expr = (
        _equals("schema_name", default_domain) if default_domain else exp.false()
    )
    return (
        exp.select(
            _alias(_column("catalog_name"), "database_name"),
            _column("schema_name"),
            _alias(current, "current"),
        )
        .from_(_relation("schemata"))
        .order_by(_column("schema_name"))
    )
