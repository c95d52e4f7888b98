"""Reflect the mesh through SQLAlchemy's PostgreSQL dialect over meshgate's PostgreSQL wire
and query it with a bound parameter; print JSON.

Run by an interpreter with SQLAlchemy 2 and psycopg 3 (`postgresql+psycopg://`), which the
project's own environment cannot hold (flightsql-dbapi pins SQLAlchemy 1.4), or with
SQLAlchemy 1.4 and psycopg2 (`postgresql+psycopg2://`, what Superset uses):

    python postgres_sqlalchemy_client.py URL
"""

from __future__ import annotations

import json
import sys
from typing import Any

import sqlalchemy as sa  # type: ignore[import-untyped,unused-ignore]


def main(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    schemas = inspector.get_schema_names()
    tables = {schema: inspector.get_table_names(schema=schema) for schema in schemas}
    columns = {f"{schema}.{table}": [[c["name"], str(c["type"]), c["nullable"], c["comment"]]
                                     for c in inspector.get_columns(table, schema=schema)]
               for schema, names in tables.items() for table in names}  # fmt: skip
    keys = {f"{schema}.{table}": inspector.get_pk_constraint(table, schema=schema)
            for schema, names in tables.items() for table in names}  # fmt: skip
    foreign = {f"{schema}.{table}": inspector.get_foreign_keys(table, schema=schema)
               for schema, names in tables.items() for table in names}  # fmt: skip
    indexes = {f"{schema}.{table}": inspector.get_indexes(table, schema=schema)
               for schema, names in tables.items() for table in names}  # fmt: skip
    result: dict[str, Any] = {
        "sqlalchemy": sa.__version__, "schemas": schemas, "tables": tables,
        "columns": columns, "foreign_keys": foreign, "indexes": indexes,
        "primary_keys": {name: [key["name"], key["constrained_columns"]]
                         for name, key in keys.items()}}  # fmt: skip
    if "sales" in tables:
        orders = sa.Table("orders", sa.MetaData(), autoload_with=engine, schema="sales")
        query = (sa.select(orders.c.order_id, orders.c.amount)
                 .where(orders.c.order_id < sa.bindparam("top")).order_by(orders.c.order_id))
        with engine.connect() as connection:
            result["rows"] = [[row[0], str(row[1])]
                              for row in connection.execute(query, {"top": 4})]
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
