"""The suite's two TPC-H layouts: set up once per scale factor, reused while the data is there.

`split` keeps orders, customer, nation, region and supplier in PostgreSQL and lineitem, part
and partsupp as Parquet; `all_pg` keeps all eight in PostgreSQL, in its own schema. A layout is
reused when its directory holds the marker this module writes after a setup (scale factor,
schema, DSN) *and* PostgreSQL still holds the row counts the marker recorded; anything else
is set up again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import duckdb

from benchmarks.run import duckdb_peer, postgres_extension
from benchmarks.tpch import DOMAIN, TABLES, Table, in_postgres, setup_tpch

MARKER = "suite-layout.json"
LAYOUTS = ("split", "all_pg")


@dataclass(frozen=True)
class Layout:
    name: str  # "split" or "all_pg"
    directory: Path
    pg_dsn: str
    pg_schema: str

    @property
    def all_postgres(self) -> bool:
        return self.name == "all_pg"

    def in_postgres(self, table: Table) -> bool:
        return in_postgres(table, self.all_postgres)

    @property
    def postgres_tables(self) -> tuple[Table, ...]:
        return tuple(t for t in TABLES if self.in_postgres(t))

    def largest_postgres_table(self) -> str:
        """orders in the split layout, lineitem in the all-PostgreSQL one: by row count."""
        counts = _row_counts(self.pg_dsn, self.pg_schema, self.postgres_tables)
        return max(counts, key=lambda name: counts[name])

    def peer(self) -> duckdb.DuckDBPyConnection:
        """DuckDB with the postgres extension attached to this layout's PostgreSQL."""
        return duckdb_peer(self.directory, self.pg_dsn, self.pg_schema, self.all_postgres)

    def local(self) -> duckdb.DuckDBPyConnection:
        """DuckDB holding all eight tables in memory, copied from this layout's own sources.

        The lower bound, and the reference every meshgate answer is checked against.
        """
        connection = duckdb.connect()
        connection.execute(f"LOAD '{postgres_extension()}'")
        connection.execute(
            f"ATTACH '{self.pg_dsn.replace(chr(39), chr(39) * 2)}' AS pg (TYPE postgres, READ_ONLY)"
        )
        connection.execute(f"CREATE SCHEMA {DOMAIN}")
        for table in TABLES:
            source = (
                f'pg."{self.pg_schema}".{table.name}'
                if self.in_postgres(table)
                else f"read_parquet('{self.directory / 'data' / f'{table.name}.parquet'}')"
            )
            connection.execute(f"CREATE TABLE {DOMAIN}.{table.name} AS SELECT * FROM {source}")
        connection.execute("DETACH pg")
        return connection


def ensure_layout(name: str, sf: float, pg_dsn: str, schema_prefix: str, root: Path) -> Layout:
    """The layout `name` at scale `sf` under `root/<name>-sf<sf>`, set up unless reusable."""
    if name not in LAYOUTS:
        raise SystemExit(f"unknown layout {name!r}; one of {', '.join(LAYOUTS)}")
    if not schema_prefix.startswith("bench"):
        raise SystemExit(f"--pg-schema {schema_prefix!r} must start with 'bench'")
    tag = f"{sf:g}".replace(".", "_")
    layout = Layout(name, (root / f"{name}-sf{tag}").resolve(), pg_dsn,
                    f"{schema_prefix}_{name}_sf{tag}")  # fmt: skip
    wanted = {"sf": sf, "layout": name, "pg_schema": layout.pg_schema, "pg_dsn": pg_dsn}
    marker = layout.directory / MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        counts = recorded.pop("row_counts", {})
        if recorded == wanted and counts and _row_counts_or_none(layout) == counts:
            print(f"{name}: reusing SF {sf:g} in {layout.directory} (schema {layout.pg_schema})",
                  flush=True)  # fmt: skip
            return layout
    print(f"{name}: setting up SF {sf:g} in {layout.directory} (schema {layout.pg_schema})",
          flush=True)  # fmt: skip
    marker.unlink(missing_ok=True)
    setup_tpch(sf, pg_dsn, layout.directory, layout.pg_schema, layout.all_postgres)
    counts = _row_counts(pg_dsn, layout.pg_schema, layout.postgres_tables)
    marker.write_text(json.dumps(wanted | {"row_counts": counts}, indent=2))
    return layout


def _row_counts_or_none(layout: Layout) -> dict[str, int] | None:
    try:
        return _row_counts(layout.pg_dsn, layout.pg_schema, layout.postgres_tables)
    except Exception:
        return None


def _row_counts(dsn: str, schema: str, tables: tuple[Table, ...]) -> dict[str, int]:
    with pg.connect(dsn) as connection, connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table.name}"')
            row = cursor.fetchone()
            assert row is not None
            counts[table.name] = int(row[0])
        return counts
