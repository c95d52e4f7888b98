"""Reflect the mesh and query it through flightsql-dbapi's SQLAlchemy dialect; print JSON.

Run in its own process for the reason `flightsql_dbapi_client.py` gives (the two libraries'
generated Flight SQL classes cannot share one process):

    python flightsql_sqlalchemy_client.py PORT USER PASSWORD

With MESHGATE_TEST_TLS_CA set it connects over TLS; the dialect's URL has no way to name a CA,
only `disable_server_verification=true` (encrypted, the certificate not checked).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import sqlalchemy as sa  # type: ignore[import-untyped]  # 1.4, pinned by flightsql-dbapi


def main(port: str, user: str, password: str) -> dict[str, Any]:
    transport = ("disable_server_verification=true" if os.environ.get("MESHGATE_TEST_TLS_CA")
                 else "insecure=true")
    engine = sa.create_engine(
        f"datafusion://{user}:{password}@127.0.0.1:{port}?{transport}"
        # the dialect's switches: bind parameters through prepared statements, read keys
        "&feature-sqlalchemy-prepared-statements=on&feature-sqlalchemy-primary-keys=on")
    inspector = sa.inspect(engine)
    schemas = inspector.get_schema_names()
    tables = {schema: inspector.get_table_names(schema=schema) for schema in schemas}
    columns = {f"hr.{table}": [{"name": c["name"], "type": str(c["type"]),
                                "nullable": c["nullable"]}
                               for c in inspector.get_columns(table, schema="hr")]
               for table in tables.get("hr", [])}
    keys = inspector.get_pk_constraint("employees", schema="hr")
    metadata = sa.MetaData()
    employees = sa.Table("employees", metadata, autoload_with=engine, schema="hr")
    query = (sa.select(employees.c.id, employees.c.region)
             .where(employees.c.id < sa.bindparam("top")).order_by(employees.c.id))
    with engine.connect() as connection:
        rows = [list(row) for row in connection.execute(query, {"top": 50})]
    return {"schemas": schemas, "tables": tables, "columns": columns,
            "primary_key": keys["constrained_columns"], "rows": rows}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:]), default=str))
