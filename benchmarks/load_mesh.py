"""The mesh the load run serves: PostgreSQL, Parquet and DuckDB sources, an admin and a masked role.

`logistics.customers` lives in PostgreSQL (a uniquely named database, created here and dropped
afterwards), `logistics.shipments` in a Parquet file, `logistics.products` in a DuckDB file. The
role `analyst` reads all three through row filters and masks; `admin` reads them raw. The
data is made by the sources themselves (PostgreSQL's generate_series, DuckDB's range) from
arithmetic on the key, so every run holds the same rows.

`reference_connections` reads the data back from each source directly (the PostgreSQL driver,
the Parquet file, the DuckDB file) into one DuckDB per role, with the analyst's filters and
masks written out by hand as views: the answers a load run checks meshgate against never come
from meshgate.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as pg
import duckdb
import yaml

from meshgate.principal import hash_password

DOMAIN = "logistics"
ADMIN = "admin"
ANALYST = "analyst"
ROLES = (ADMIN, ANALYST)
CUSTOMERS = 20_000
SHIPMENTS = 100_000
PRODUCTS = 500
PG_SOURCE = "crm"
PG_POOL_SIZE = 8

_PG_TABLE = f"""
CREATE TABLE customers (
    id bigint PRIMARY KEY, name text NOT NULL, email text, region text NOT NULL,
    balance numeric(12, 2) NOT NULL, signup date NOT NULL
);
INSERT INTO customers
SELECT g, 'customer ' || g,
       CASE WHEN g % 20 = 0 THEN NULL
            ELSE 'c' || g || CASE WHEN g % 2 = 0 THEN '@example.org' ELSE '@example.com' END END,
       (ARRAY['EU', 'US', 'APAC'])[g % 3 + 1],
       ((g * 7919) % 1000000) / 100.0,
       DATE '2020-01-01' + (g % 1500)::int
FROM generate_series(1, {CUSTOMERS}) AS g;
ANALYZE customers;
"""
# Some shipments name customers that do not exist (ids past CUSTOMERS): joins must drop them.
_SHIPMENTS = f"""
SELECT range + 1 AS shipment_id,
       (range * 37) % ({CUSTOMERS} + 200) + 1 AS customer_id,
       range % {PRODUCTS} + 1 AS sku,
       CAST(range % 10 + 1 AS INTEGER) AS quantity,
       CAST(((range * 13) % 5000) / 100 AS DECIMAL(8, 2)) AS weight_kg,
       DATE '2024-01-01' + CAST(range % 700 AS INTEGER) AS shipped
FROM range({SHIPMENTS})
"""
_PRODUCTS = f"""
SELECT range + 1 AS sku,
       'category ' || ((range + 1) % 12) AS category,
       CAST(((range + 1) * 331) % 100000 / 100 AS DECIMAL(10, 2)) AS price,
       'SUP-' || lpad(CAST(((range + 1) * 17) % 10000 AS VARCHAR), 6, '0') AS supplier
FROM range({PRODUCTS})
"""

# What the analyst sees, as meshgate's config states it ...
_POLICIES: list[dict[str, Any]] = [
    {"product": f"{DOMAIN}.customers", "role": ANALYST, "row_filter": "region <> 'APAC'",
     "masks": {"name": "redact", "email": "email_domain", "balance": "null"}},
    {"product": f"{DOMAIN}.shipments", "role": ANALYST, "row_filter": "quantity <= 8",
     "masks": {"weight_kg": {"expression": "weight_kg - weight_kg % 10"}}},
    {"product": f"{DOMAIN}.products", "role": ANALYST, "masks": {"supplier": "last4"}},
]  # fmt: skip
# ... and the same, written by hand over the raw tables for the reference (every email has an @).
_ANALYST_VIEWS = f"""
CREATE VIEW {DOMAIN}.customers AS
SELECT id, '****' AS name, '***@' || split_part(email, '@', 2) AS email, region,
       CAST(NULL AS DECIMAL(12, 2)) AS balance, signup
FROM raw.customers WHERE region <> 'APAC';
CREATE VIEW {DOMAIN}.shipments AS
SELECT shipment_id, customer_id, sku, quantity,
       CAST(weight_kg - weight_kg % 10 AS DECIMAL(8, 2)) AS weight_kg, shipped
FROM raw.shipments WHERE quantity <= 8;
CREATE VIEW {DOMAIN}.products AS
SELECT sku, category, price, repeat('*', length(supplier) - 4) || right(supplier, 4) AS supplier
FROM raw.products;
"""

_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "customers": [("id", "BIGINT"), ("name", "VARCHAR"), ("email", "VARCHAR"),
                  ("region", "VARCHAR"), ("balance", "DECIMAL(12,2)"), ("signup", "DATE")],
    "shipments": [("shipment_id", "BIGINT"), ("customer_id", "BIGINT"), ("sku", "BIGINT"),
                  ("quantity", "INTEGER"), ("weight_kg", "DECIMAL(8,2)"), ("shipped", "DATE")],
    "products": [("sku", "BIGINT"), ("category", "VARCHAR"), ("price", "DECIMAL(10,2)"),
                 ("supplier", "VARCHAR")],
}  # fmt: skip


@dataclass(frozen=True)
class LoadMesh:
    """A config directory ready for `meshgate serve`, and where its PostgreSQL data lives."""

    directory: Path
    pg_dsn: str  # the database, reached directly

    @property
    def parquet(self) -> Path:
        return self.directory / "lake" / "shipments.parquet"

    @property
    def duckdb_file(self) -> Path:
        return self.directory / "catalog.duckdb"


@contextlib.contextmanager
def load_mesh(server_dsn: str, directory: Path, pg_port: int | None = None) -> Iterator[LoadMesh]:
    """Create the sources' data and the config under `directory`; drop the database on exit.

    `pg_port`, when given, is the port meshgate reaches PostgreSQL on (a fault proxy's);
    the data is loaded and read back on the DSN's own port.
    """
    if urlsplit(server_dsn).password:
        raise SystemExit("the config must not hold a password: leave it out of --pg-dsn and "
                         "export PGPASSWORD (or use ~/.pgpass) instead")
    database = f"meshgate_load_{secrets.token_hex(6)}"
    with pg.connect(server_dsn, autocommit=True) as admin, admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{database}"')
    try:
        mesh = LoadMesh(directory, _with_database(server_dsn, database))
        with pg.connect(mesh.pg_dsn, autocommit=True) as conn, conn.cursor() as cursor:
            for statement in filter(str.strip, _PG_TABLE.split(";")):
                cursor.execute(statement)
        mesh.parquet.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect() as conn:
            conn.execute(f"COPY ({_SHIPMENTS}) TO '{mesh.parquet}' (FORMAT parquet)")
        with duckdb.connect(str(mesh.duckdb_file)) as conn:
            conn.execute(f"CREATE TABLE products AS {_PRODUCTS}")
        meshgate_dsn = mesh.pg_dsn if pg_port is None else _with_port(mesh.pg_dsn, pg_port)
        _write_config(directory, meshgate_dsn)
        yield mesh
    finally:
        with pg.connect(server_dsn, autocommit=True) as admin, admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def reference_connections(mesh: LoadMesh) -> dict[str, duckdb.DuckDBPyConnection]:
    """One in-memory DuckDB per role holding `logistics.*` as that role must see it."""
    with pg.connect(mesh.pg_dsn) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT id, name, email, region, balance::text AS balance, signup "
                       "FROM customers")  # fmt: skip
        customers = cursor.fetch_arrow_table()
    references: dict[str, duckdb.DuckDBPyConnection] = {}
    for role in ROLES:
        conn = duckdb.connect()
        conn.register("pg_customers", customers)
        conn.execute("CREATE SCHEMA raw")
        conn.execute("CREATE TABLE raw.customers AS SELECT id, name, email, region, "
                     "CAST(balance AS DECIMAL(12, 2)) AS balance, signup FROM pg_customers")
        conn.execute(f"CREATE TABLE raw.shipments AS SELECT * FROM read_parquet('{mesh.parquet}')")
        conn.execute(f"ATTACH '{mesh.duckdb_file}' AS source (READ_ONLY)")
        conn.execute("CREATE TABLE raw.products AS SELECT * FROM source.products")
        conn.execute("DETACH source")
        conn.unregister("pg_customers")
        conn.execute(f"CREATE SCHEMA {DOMAIN}")
        if role == ADMIN:
            for table in _COLUMNS:
                conn.execute(f"CREATE VIEW {DOMAIN}.{table} AS SELECT * FROM raw.{table}")
        else:
            conn.execute(_ANALYST_VIEWS)
        references[role] = conn
    return references  # fmt: skip


def backends(mesh: LoadMesh) -> tuple[int, int]:
    """Active and all client backends of the database now (this probe's own excluded)."""
    with pg.connect(mesh.pg_dsn, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE state = 'active'), count(*) "
                       "FROM pg_stat_activity WHERE backend_type = 'client backend' "
                       "AND datname = current_database() AND pid <> pg_backend_pid()")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _write_config(directory: Path, dsn: str) -> None:
    config: dict[str, Any] = {
        "mesh": {"name": "load", "description": "The load and faults run (benchmarks/load.py)."},
        "server": {"query_timeout_seconds": 30},
        "sources": [
            {"name": PG_SOURCE, "kind": "postgres",
             "options": {"dsn": dsn, "pool_size": PG_POOL_SIZE, "connect_timeout_seconds": 2}},
            {"name": "lake", "kind": "files", "options": {"path": "lake", "format": "parquet"}},
            {"name": "catalog", "kind": "duckdb", "options": {"path": "catalog.duckdb"}},
        ],
        "domains": [{"name": DOMAIN, "owner": "load@example.com"}],
        "products": [
            _product("customers", {"source": PG_SOURCE, "schema": "public", "table": "customers"}),
            _product("shipments", {"source": "lake", "table": "shipments"}),
            _product("products", {"source": "catalog", "table": "products"}),
        ],
        "roles": [{"name": ADMIN, "grants": ["*"]},
                  {"name": ANALYST, "grants": [f"{DOMAIN}.*"]}],
        "users": [{"name": role, "password_hash": hash_password(role), "roles": [role]}
                  for role in ROLES],
        "policies": _POLICIES,
    }  # fmt: skip
    header = "# Written by `python -m benchmarks.load`; regenerated on every run.\n"
    text = yaml.safe_dump(config, sort_keys=False, width=100)
    (directory / "mesh.yaml").write_text(header + text, encoding="utf-8")


def _product(name: str, table: dict[str, str]) -> dict[str, Any]:
    columns = [{"name": column, "type": sql_type} for column, sql_type in _COLUMNS[name]]
    return {"domain": DOMAIN, "name": name, "table": table, "columns": columns,
            "primary_key": [_COLUMNS[name][0][0]]}  # fmt: skip


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def _with_port(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    user = f"{parts.username}@" if parts.username else ""
    netloc = f"{user}127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
