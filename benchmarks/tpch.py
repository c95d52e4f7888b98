"""A TPC-H data mesh: orders & co. in PostgreSQL, lineitem & co. as Parquet, one meshgate config.

    python -m benchmarks.tpch setup --sf 0.1 --pg-dsn postgresql://postgres@127.0.0.1/postgres \\
        --dir /tmp/tpch
    meshgate serve --config /tmp/tpch

The split makes the classic federation questions real: Q3 joins customer and orders (one
PostgreSQL query) with lineitem (a Parquet scan); Q5 and Q9 cross the boundary several times.
Data comes from tpchgen-cli (the TPC-H dbgen port), so any scale factor is reproducible.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
import yaml
from sqlglot import exp

DOMAIN = "tpch"
PG_SOURCE = "tpch_pg"
FILES_SOURCE = "tpch_files"
PASSWORD_VARIABLE = "TPCH_PG_PASSWORD"


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # DuckDB spelling, as product columns are declared
    description: str


@dataclass(frozen=True)
class Table:
    name: str
    in_postgres: bool
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str
    indexes: tuple[tuple[str, ...], ...] = ()


def _columns(*specs: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


KEY, INT, MONEY, DAY, TEXT = "BIGINT", "INTEGER", "DECIMAL(15,2)", "DATE", "VARCHAR"

# TPC-H's CHAR(n) columns are VARCHAR here: PostgreSQL's blank-padded CHAR compares and
# returns values differently from Parquet/DuckDB strings, which would make the mesh disagree
# with a single-engine reference for reasons unrelated to federation.
TABLES: tuple[Table, ...] = (
    Table("region", True, ("r_regionkey",), _columns(
        ("r_regionkey", KEY, "Region key."),
        ("r_name", TEXT, "Region name."),
        ("r_comment", TEXT, "Free text."),
    ), "The five TPC-H regions."),
    Table("nation", True, ("n_nationkey",), _columns(
        ("n_nationkey", KEY, "Nation key."),
        ("n_name", TEXT, "Nation name."),
        ("n_regionkey", KEY, "Region of the nation (region.r_regionkey)."),
        ("n_comment", TEXT, "Free text."),
    ), "The 25 TPC-H nations.", (("n_regionkey",),)),
    Table("supplier", True, ("s_suppkey",), _columns(
        ("s_suppkey", KEY, "Supplier key."),
        ("s_name", TEXT, "Supplier name."),
        ("s_address", TEXT, "Address."),
        ("s_nationkey", KEY, "Nation of the supplier (nation.n_nationkey)."),
        ("s_phone", TEXT, "Phone number."),
        ("s_acctbal", MONEY, "Account balance."),
        ("s_comment", TEXT, "Free text."),
    ), "Suppliers of parts.", (("s_nationkey",),)),
    Table("customer", True, ("c_custkey",), _columns(
        ("c_custkey", KEY, "Customer key."),
        ("c_name", TEXT, "Customer name."),
        ("c_address", TEXT, "Address."),
        ("c_nationkey", KEY, "Nation of the customer (nation.n_nationkey)."),
        ("c_phone", TEXT, "Phone number."),
        ("c_acctbal", MONEY, "Account balance."),
        ("c_mktsegment", TEXT, "Market segment."),
        ("c_comment", TEXT, "Free text."),
    ), "Customers.", (("c_nationkey",), ("c_mktsegment",))),
    Table("orders", True, ("o_orderkey",), _columns(
        ("o_orderkey", KEY, "Order key."),
        ("o_custkey", KEY, "Ordering customer (customer.c_custkey)."),
        ("o_orderstatus", TEXT, "F, O or P."),
        ("o_totalprice", MONEY, "Total price."),
        ("o_orderdate", DAY, "Order date."),
        ("o_orderpriority", TEXT, "Priority."),
        ("o_clerk", TEXT, "Clerk."),
        ("o_shippriority", INT, "Shipping priority."),
        ("o_comment", TEXT, "Free text."),
    ), "Customer orders.", (("o_custkey",), ("o_orderdate",))),
    Table("part", False, ("p_partkey",), _columns(
        ("p_partkey", KEY, "Part key."),
        ("p_name", TEXT, "Part name."),
        ("p_mfgr", TEXT, "Manufacturer."),
        ("p_brand", TEXT, "Brand."),
        ("p_type", TEXT, "Type."),
        ("p_size", INT, "Size."),
        ("p_container", TEXT, "Container."),
        ("p_retailprice", MONEY, "Retail price."),
        ("p_comment", TEXT, "Free text."),
    ), "Parts."),
    Table("partsupp", False, ("ps_partkey", "ps_suppkey"), _columns(
        ("ps_partkey", KEY, "Part (part.p_partkey)."),
        ("ps_suppkey", KEY, "Supplier (supplier.s_suppkey)."),
        ("ps_availqty", INT, "Available quantity."),
        ("ps_supplycost", MONEY, "Supply cost."),
        ("ps_comment", TEXT, "Free text."),
    ), "Which supplier offers which part, at what cost."),
    Table("lineitem", False, ("l_orderkey", "l_linenumber"), _columns(
        ("l_orderkey", KEY, "Order (orders.o_orderkey)."),
        ("l_partkey", KEY, "Part (part.p_partkey)."),
        ("l_suppkey", KEY, "Supplier (supplier.s_suppkey)."),
        ("l_linenumber", INT, "Line number within the order."),
        ("l_quantity", MONEY, "Quantity."),
        ("l_extendedprice", MONEY, "Extended price."),
        ("l_discount", MONEY, "Discount (fraction)."),
        ("l_tax", MONEY, "Tax (fraction)."),
        ("l_returnflag", TEXT, "R, A or N."),
        ("l_linestatus", TEXT, "O or F."),
        ("l_shipdate", DAY, "Ship date."),
        ("l_commitdate", DAY, "Commit date."),
        ("l_receiptdate", DAY, "Receipt date."),
        ("l_shipinstruct", TEXT, "Shipping instructions."),
        ("l_shipmode", TEXT, "Shipping mode."),
        ("l_comment", TEXT, "Free text."),
    ), "Order lines: the fact table."),
)  # fmt: skip
TABLE_NAMES = frozenset(t.name for t in TABLES)

_PG_TYPES = {KEY: "bigint", INT: "integer", MONEY: "numeric(15,2)", DAY: "date", TEXT: "text"}
_ARROW_TYPES = {
    KEY: pa.int64(), INT: pa.int32(), MONEY: pa.decimal128(15, 2), DAY: pa.date32(),
    TEXT: pa.string(),
}  # fmt: skip


def setup_tpch(
    sf: float, pg_dsn: str, directory: Path, pg_schema: str = "tpch", all_postgres: bool = False
) -> Path:
    """Generate TPC-H at scale `sf`, load the PostgreSQL half, write the config; return `directory`.

    `directory` gets `data/{lineitem,part,partsupp}.parquet` and the YAML files of a mesh
    whose domain `tpch` has one product per TPC-H table. Existing tables in `pg_schema` are
    replaced. `all_postgres` loads all eight tables into PostgreSQL (no Parquet half).
    """
    directory = directory.resolve()
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tpchgen-", dir=directory) as staging:
        generated = Path(staging)
        generate(sf, generated)
        load_postgres(pg_dsn, pg_schema, generated, all_postgres)
        for table in TABLES:
            if not in_postgres(table, all_postgres):
                target = data / f"{table.name}.parquet"
                shutil.move(str(generated / f"{table.name}.parquet"), target)
    write_config(directory, pg_dsn, pg_schema, sf, all_postgres)
    return directory


def in_postgres(table: Table, all_postgres: bool = False) -> bool:
    """Whether `table` lives in PostgreSQL in the split (default) or all-PostgreSQL layout."""
    return all_postgres or table.in_postgres


def generate(sf: float, output: Path) -> None:
    """Run tpchgen-cli (from the same environment as this Python) for all eight tables."""
    executable = shutil.which("tpchgen-cli", path=str(Path(sys.executable).parent)) or shutil.which(
        "tpchgen-cli"
    )
    if executable is None:
        raise SystemExit("tpchgen-cli is not installed: pip install -e '.[bench]'")
    subprocess.run(
        [executable, "parquet", "--scale-factor", str(sf), "--output-dir", str(output)],
        check=True,
        capture_output=True,
    )


def load_postgres(
    pg_dsn: str, pg_schema: str, generated: Path, all_postgres: bool = False
) -> None:
    """Create the PostgreSQL tables with TPC-H types, bulk-load them (binary COPY via ADBC
    ingest), then add keys and indexes (faster after the load) and ANALYZE."""
    import adbc_driver_postgresql.dbapi as pg

    schema = _quoted(pg_schema)
    with pg.connect(pg_dsn, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table in (t for t in TABLES if in_postgres(t, all_postgres)):
            name = f"{schema}.{_quoted(table.name)}"
            columns = ", ".join(
                f"{_quoted(c.name)} {_PG_TYPES[c.sql_type]} NOT NULL" for c in table.columns
            )
            cursor.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
            cursor.execute(f"CREATE TABLE {name} ({columns})")
            arrow = pq.read_table(generated / f"{table.name}.parquet").cast(arrow_schema(table))
            cursor.adbc_ingest(table.name, arrow, mode="append", db_schema_name=pg_schema)
            keys = ", ".join(_quoted(k) for k in table.primary_key)
            cursor.execute(f"ALTER TABLE {name} ADD PRIMARY KEY ({keys})")
            for index in table.indexes:
                cursor.execute(f"CREATE INDEX ON {name} ({', '.join(map(_quoted, index))})")
            cursor.execute(f"ANALYZE {name}")


def write_config(
    directory: Path, pg_dsn: str, pg_schema: str, sf: float, all_postgres: bool = False
) -> None:
    """mesh.yaml (mesh, sources, domain), products.yaml and access.yaml under `directory`."""
    dsn, has_password = _dsn_without_password(pg_dsn)
    mesh = {
        "mesh": {"name": "tpch_mesh", "description": f"TPC-H at scale factor {sf}, federated."},
        "sources": [
            {
                "name": PG_SOURCE,
                "kind": "postgres",
                "description": ", ".join(t.name for t in TABLES if in_postgres(t, all_postgres)),
                "options": {"dsn": dsn, "pool_size": 4},
            },
        ]
        + (
            []
            if all_postgres
            else [
                {
                    "name": FILES_SOURCE,
                    "kind": "files",
                    "description": "lineitem, part, partsupp as Parquet",
                    "options": {"path": "data", "format": "parquet"},
                }
            ]
        ),
        "domains": [
            {"name": DOMAIN, "owner": "benchmarks@example.com",
             "description": "The eight TPC-H tables, split between PostgreSQL and Parquet."},
        ],
    }  # fmt: skip
    products = {
        "products": [
            {
                "domain": DOMAIN,
                "name": table.name,
                "description": table.description,
                "tags": ["tpch", "postgres" if in_postgres(table, all_postgres) else "parquet"],
                "table": (
                    {"source": PG_SOURCE, "schema": pg_schema, "table": table.name}
                    if in_postgres(table, all_postgres)
                    else {"source": FILES_SOURCE, "table": table.name}
                ),
                "columns": [
                    {"name": c.name, "type": c.sql_type, "description": c.description}
                    for c in table.columns
                ],
                # Declared keys let the planner push FK -> PK joins inside one source.
                "primary_key": list(table.primary_key),
            }
            for table in TABLES
        ]
    }
    from meshgate.principal import hash_password

    access = {
        "roles": [{"name": "admin", "description": "Reads everything.", "grants": ["*"]}],
        "users": [{"name": "admin", "password_hash": hash_password("admin"), "roles": ["admin"]}],
    }
    header = "# Written by `python -m benchmarks.tpch setup`; regenerate rather than edit.\n"
    if has_password:
        header += f"# The PostgreSQL password is read from ${{{PASSWORD_VARIABLE}}} at startup.\n"
    for name, content in (("mesh.yaml", mesh), ("products.yaml", products),
                          ("access.yaml", access)):  # fmt: skip
        text = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100)
        (directory / name).write_text(header + text, encoding="utf-8")


def tpch_queries(domain: str = DOMAIN) -> list[str]:
    """The 22 TPC-H queries (DuckDB's tpch extension text), tables as `<domain>.<table>`."""
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"LOAD '{tpch_extension()}'")
    rows = connection.execute("SELECT query_nr, query FROM tpch_queries() ORDER BY 1").fetchall()
    return [qualify_tables(str(text), domain) for _, text in rows]


def qualify_tables(sql: str, domain: str = DOMAIN) -> str:
    """`FROM lineitem` -> `FROM tpch.lineitem`, leaving CTE names, aliases and columns alone."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    def qualify(node: exp.Expr) -> exp.Expr:
        if (
            isinstance(node, exp.Table)
            and not node.db
            and node.name in TABLE_NAMES
            and node.name not in ctes
        ):
            qualified = node.copy()
            qualified.set("db", exp.to_identifier(domain))
            return qualified
        return node

    return tree.transform(qualify).sql(dialect="duckdb", pretty=True)


def tpch_extension() -> Path:
    """Where the duckdb-extension-tpch wheel keeps the extension binary for this DuckDB."""
    import duckdb
    import duckdb_extension_tpch

    root = Path(duckdb_extension_tpch.__file__).parent
    exact = root / "extensions" / f"v{duckdb.__version__}" / "tpch.duckdb_extension"
    if exact.is_file():
        return exact
    found = sorted(root.rglob("tpch.duckdb_extension"))
    if not found:
        raise SystemExit("duckdb-extension-tpch holds no tpch.duckdb_extension for this DuckDB")
    return found[-1]


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.sql_type], False) for c in table.columns])


def _dsn_without_password(dsn: str) -> tuple[str, bool]:
    """The DSN for the config: a password becomes a `${TPCH_PG_PASSWORD}` reference."""
    if "://" not in dsn:
        return dsn, "password" in dsn
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn, False
    host = parts.hostname or ""
    netloc = f"{parts.username}:${{{PASSWORD_VARIABLE}}}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), True


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tpch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("setup", help="generate, load and write a config directory")
    setup.add_argument("--sf", type=float, default=0.1, help="TPC-H scale factor (default 0.1)")
    setup.add_argument("--pg-dsn", required=True, help="PostgreSQL DSN to load into")
    setup.add_argument("--dir", type=Path, required=True, help="config directory to write")
    setup.add_argument("--pg-schema", default="tpch", help="PostgreSQL schema (default tpch)")
    setup.add_argument("--all-postgres", action="store_true",
                       help="all eight tables in PostgreSQL (default: the split layout)")
    queries = commands.add_parser("queries", help="print the 22 queries against tpch.<table>")
    queries.add_argument("--number", type=int, help="print only query N (1-22)")
    args = parser.parse_args(argv)
    if args.command == "setup":
        directory = setup_tpch(args.sf, args.pg_dsn, args.dir, args.pg_schema, args.all_postgres)
        print(f"TPC-H SF {args.sf} mesh written to {directory}")
        if _dsn_without_password(args.pg_dsn)[1] and PASSWORD_VARIABLE not in os.environ:
            print(f"export {PASSWORD_VARIABLE}=... before serving (the password is not stored)")
        print(f"serve it with: meshgate serve --config {directory}   (user admin, password admin)")
        return 0
    texts = tpch_queries()
    selected = [texts[args.number - 1]] if args.number else texts
    print("\n\n".join(f"{q.rstrip(';')};" for q in selected))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
