"""The contract suite's sources: the same small data set in each real source kind.

Every connector is proven by the same tests (tests/contract/test_contract.py). To add one,
write a builder in this module decorated with `@contract_source("<name>", *marks)`: it gets
the pytest request (for fixtures such as `pg_database`) and a fresh directory, stores TABLES
(Arrow, with the declared types) in a new source of its kind, and returns a `ContractSource`
naming the cases its connector is expected to refuse or answer INEXACT. Nothing else changes:
the `source` fixture is parametrised over every registered builder.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from meshgate_duckdb import DuckDBConnector
from meshgate_files import FilesConnector
from meshgate_sqlite import SQLiteConnector

from meshgate.spi import ConnectorContext, SourceColumn, SourceTable
from meshgate.sqlconnector import SqlConnector

ITEMS_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("qty", pa.int32()),
        ("price", pa.decimal128(10, 2)),
        ("name", pa.string()),
        ("day", pa.date32()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("active", pa.bool_()),
    ]
)
ITEMS_ROWS: list[tuple[Any, ...]] = [
    (1, 7, "1.50", "apple", "2024-01-15", "2024-01-15 10:00:00", True),
    (2, 2, "12.25", "Apple", "2024-02-01", "2024-02-01 23:30:00", False),
    (3, None, "3.10", "banana", None, "2024-02-10 00:00:00", True),
    (4, -7, None, "Zebra", "2024-03-05", None, None),
    (5, 10, "0.05", None, "2024-03-31", "2024-03-31 12:00:00.5", False),
    (6, 3, "100.00", "éclair", "2023-12-31", "2023-12-31 23:59:59", True),
    (7, None, "2.50", "apricot", "2024-02-29", "2024-02-29 06:00:00", None),
    (8, 5, "9.99", "Cherry", "2024-01-01", "2024-01-01 00:00:00", True),
]  # id, qty, price, name, day, at (UTC), active
OWNERS_SCHEMA = pa.schema([("item_id", pa.int64()), ("owner", pa.string())])
OWNERS_ROWS: list[tuple[Any, ...]] = [(1, "ann"), (2, "bob"), (2, "cy"), (5, "dee"), (9, "eve")]


def _table(schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema)


def _typed_item(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Text in ITEMS_ROWS -> the Python values of the declared types."""
    ident, qty, price, name, day, at, active = row
    return (
        ident,
        qty,
        None if price is None else Decimal(price),
        name,
        None if day is None else dt.date.fromisoformat(day),
        None if at is None else dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC),
        active,
    )


TABLES: Mapping[str, pa.Table] = {
    "items": _table(ITEMS_SCHEMA, [_typed_item(r) for r in ITEMS_ROWS]),
    "owners": _table(OWNERS_SCHEMA, OWNERS_ROWS),
}


@dataclass(frozen=True)
class ContractSource:
    """A connector over the contract tables, and what it is expected to refuse.

    `refuses` / `inexact` hold case ids of test_contract.py; every other case must be pushed
    (EXACT) and return the same rows as DuckDB.
    """

    connector: SqlConnector
    schema: str | None
    unavailable: SqlConnector  # the same kind pointed at a source that does not exist
    refuses: frozenset[str] = frozenset()
    inexact: frozenset[str] = frozenset()
    # Whether some query still holds the source (e.g. a read lock), to prove that closing a
    # reader releases it; None where the source offers no way to observe that.
    busy: Callable[[], bool] | None = None

    def table(self, name: str) -> SourceTable:
        return SourceTable(self.schema, name)

    @staticmethod
    def columns(name: str) -> list[SourceColumn]:
        return [SourceColumn(f.name, f.type) for f in TABLES[name].schema]


Builder = Callable[[pytest.FixtureRequest, Path], ContractSource]
BUILDERS: dict[str, tuple[Builder, tuple[pytest.MarkDecorator, ...]]] = {}


def contract_source(name: str, *marks: pytest.MarkDecorator) -> Callable[[Builder], Builder]:
    """Register a builder of a contract source (one per connector kind or storage format)."""

    def register(builder: Builder) -> Builder:
        BUILDERS[name] = (builder, marks)
        return builder

    return register


def _context(name: str, directory: Path, **options: Any) -> ConnectorContext:
    return ConnectorContext(name=name, options=options, config_dir=directory)


# Both database sources declare `items.name` case-insensitive: the connectors must still
# compare, group and order it by bytes, as the engine does.
DUCKDB_DDL = {
    "items": "CREATE TABLE main.items (id BIGINT, qty INTEGER, price DECIMAL(10, 2), "
    'name VARCHAR COLLATE nocase, day DATE, "at" TIMESTAMPTZ, active BOOLEAN)',
    "owners": "CREATE TABLE main.owners (item_id BIGINT, owner VARCHAR)",
}


@contract_source("duckdb")
def duckdb_source(request: pytest.FixtureRequest, directory: Path) -> ContractSource:
    path = directory / "contract.duckdb"
    with duckdb.connect(str(path)) as connection:
        for name, table in TABLES.items():
            connection.execute(DUCKDB_DDL[name])
            connection.register("incoming", table)
            connection.execute(f"INSERT INTO main.{name} SELECT * FROM incoming")
            connection.unregister("incoming")
    connector = DuckDBConnector(_context("shop", directory, path="contract.duckdb"))
    return ContractSource(
        connector=connector,
        schema="main",
        unavailable=DuckDBConnector(_context("shop", directory, path="missing.duckdb")),
        busy=lambda: connector.open_streams > 0,
    )


@contract_source("files_parquet")
def parquet_source(request: pytest.FixtureRequest, directory: Path) -> ContractSource:
    data = directory / "lake"
    (data / "owners").mkdir(parents=True)
    pq.write_table(TABLES["items"], data / "items.parquet")
    # A table stored as a folder of Parquet files, as partitioned writers produce.
    owners = TABLES["owners"]
    pq.write_table(owners.slice(0, 2), data / "owners" / "part-0.parquet")
    pq.write_table(owners.slice(2), data / "owners" / "part-1.parquet")
    connector = FilesConnector(_context("lake", directory, path="lake", format="parquet"))
    return ContractSource(
        connector=connector,
        schema=None,
        unavailable=FilesConnector(_context("lake", directory, path="nowhere", format="parquet")),
        busy=lambda: connector.open_streams > 0,
    )


@contract_source("files_csv")
def csv_source(request: pytest.FixtureRequest, directory: Path) -> ContractSource:
    data = directory / "csv"
    data.mkdir()
    with duckdb.connect() as connection:
        for name, table in TABLES.items():
            connection.register("outgoing", table)
            target = str(data / f"{name}.csv").replace("'", "''")
            connection.execute(f"COPY outgoing TO '{target}' (HEADER, DELIMITER ',')")
            connection.unregister("outgoing")
    connector = FilesConnector(_context("csv", directory, path="csv", format="csv"))
    return ContractSource(
        connector=connector,
        schema=None,
        unavailable=FilesConnector(_context("csv", directory, path="csv_missing", format="csv")),
        busy=lambda: connector.open_streams > 0,
    )


SQLITE_DDL = {
    "items": "CREATE TABLE items (id INTEGER, qty INTEGER, price TEXT, name TEXT COLLATE NOCASE, "
    "day TEXT, at TEXT, active BOOLEAN)",
    "owners": "CREATE TABLE owners (item_id INTEGER, owner TEXT)",
}


def _sqlite_value(value: Any) -> Any:
    """How the contract data is stored in SQLite: decimals and dates as ISO/decimal text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@contract_source("sqlite")
def sqlite_source(request: pytest.FixtureRequest, directory: Path) -> ContractSource:
    path = directory / "contract.sqlite"
    connection = sqlite3.connect(path)
    with connection:
        for name, ddl in SQLITE_DDL.items():
            connection.execute(ddl)
            rows = TABLES[name].to_pylist()
            marks = ", ".join("?" for _ in TABLES[name].schema)
            connection.executemany(
                f"INSERT INTO {name} VALUES ({marks})",
                [tuple(_sqlite_value(v) for v in row.values()) for row in rows],
            )
    connection.close()
    stored_as_text = {
        "filter_decimal_gt", "filter_date_ge", "filter_timestamptz_lt", "topn_price",
        "topn_day", "agg_sum_price", "agg_min_day", "join_on_date",
    }  # fmt: skip
    not_declared = {
        "filter_int_division", "filter_floor_division", "filter_ilike", "filter_case",
        "filter_lower", "filter_not_like", "projection_int_division", "agg_avg",
        "join_right", "join_full", "join_cross", "query_group_of_scans", "query_like",
        "query_subquery", "filter_substring", "filter_substring_from_end", "query_shared_cte",
    }  # fmt: skip

    def busy() -> bool:
        """A reading statement holds SQLite's SHARED lock: no writer can take EXCLUSIVE."""
        writer = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            writer.execute("BEGIN EXCLUSIVE")
            writer.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            return True
        finally:
            writer.close()

    return ContractSource(
        connector=SQLiteConnector(_context("legacy", directory, path="contract.sqlite")),
        schema="main",
        unavailable=SQLiteConnector(_context("legacy", directory, path="gone.sqlite")),
        refuses=frozenset(stored_as_text | not_declared),
        inexact=frozenset({"filter_like"}),
        busy=busy,
    )


POSTGRES_DDL = {
    # `name` is case-insensitive (a nondeterministic ICU collation), like the other databases.
    "items": "CREATE TABLE public.items (id bigint, qty integer, price numeric(10,2), "
    "name text COLLATE contract_ci, day date, at timestamptz, active boolean)",
    "owners": "CREATE TABLE public.owners (item_id bigint, owner text)",
}


@contract_source("postgres", pytest.mark.postgres)
def postgres_source(request: pytest.FixtureRequest, directory: Path) -> ContractSource:
    import adbc_driver_postgresql.dbapi as pg
    from meshgate_postgres import PostgresConnector

    dsn: str = request.getfixturevalue("pg_database")
    with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE COLLATION contract_ci "
            "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
        )
        for name, table in TABLES.items():
            cursor.execute(POSTGRES_DDL[name])
            cursor.adbc_ingest(name, table, mode="append", db_schema_name="public")

    connector = PostgresConnector(_context("warehouse", directory, dsn=dsn))

    def busy() -> bool:
        """A half-read result holds a connection (and its COPY, if rows remain): the pool's
        or, for the DuckDB reader, the one its read's transaction pins."""
        usage = connector.pool_usage()
        return usage is not None and usage.in_use > 0

    return ContractSource(
        connector=connector,
        schema="public",
        unavailable=PostgresConnector(
            _context("warehouse", directory, dsn="postgresql://meshgate@127.0.0.1:1/gone")
        ),
        refuses=frozenset(
            {"filter_floor_division", "filter_ilike", "filter_lower", "filter_substring_from_end"}
        ),
        busy=busy,
    )
