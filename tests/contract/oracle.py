"""The contract suite's oracle: a plain DuckDB holding the contract data, built apart from meshgate.

It is filled from the Python rows of sources.py (`ITEMS_ROWS`, `OWNERS_ROWS`: text and numbers,
before any Arrow typing) by parameterised INSERTs into tables this module declares, so DuckDB
parses the decimals, dates and timestamps itself. Nothing here imports meshgate: no handle,
renderer, engine schema or connector reads or types the data, and the SQL it answers is the
test's own canonical SQL (DuckDB is the engine's dialect), never what a connector built.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from .sources import ITEMS_ROWS, OWNERS_ROWS

ORACLE_DDL = {
    "items": "CREATE TABLE items (id BIGINT, qty INTEGER, price DECIMAL(10, 2), name VARCHAR, "
    'day DATE, "at" TIMESTAMPTZ, active BOOLEAN)',
    "owners": "CREATE TABLE owners (item_id BIGINT, owner VARCHAR)",
}
ORACLE_ROWS: dict[str, list[tuple[Any, ...]]] = {"items": ITEMS_ROWS, "owners": OWNERS_ROWS}


def oracle() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with `items` and `owners`; timestamps in UTC, as on the wire."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    for name, ddl in ORACLE_DDL.items():
        connection.execute(ddl)
        rows = ORACLE_ROWS[name]
        marks = ", ".join("?" for _ in rows[0])
        connection.executemany(f"INSERT INTO {name} VALUES ({marks})", [list(r) for r in rows])
    return connection


def answer(connection: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The oracle's answer to `sql`."""
    return connection.execute(sql).to_arrow_table()
