"""`python -m benchmarks.tpch setup` against a real PostgreSQL, at SF 0.01."""

from __future__ import annotations

from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pyarrow.parquet as pq
import pytest

from benchmarks.tpch import main, qualify_tables, setup_tpch, tpch_extension, tpch_queries
from meshgate.catalog.loader import load_mesh
from meshgate.registry import installed_kinds

pytestmark = pytest.mark.postgres

PG_TABLES = {"region": 5, "nation": 25, "supplier": 100, "customer": 1500, "orders": 15000}


def test_setup_loads_postgres_writes_parquet_and_a_loadable_config(
    pg_database: str, tmp_path: Path
) -> None:
    directory = setup_tpch(0.01, pg_database, tmp_path / "mesh")
    with pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cursor:
        for table, rows in PG_TABLES.items():
            cursor.execute(f"SELECT count(*) FROM tpch.{table}")
            assert cursor.fetchone() == (rows,)
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'tpch.orders'::regclass AND attname IN "
            "('o_orderkey', 'o_totalprice', 'o_orderdate') ORDER BY attnum"
        )
        assert [r[0] for r in cursor.fetchall()] == ["bigint", "numeric(15,2)", "date"]
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'tpch'")
        row = cursor.fetchone()
        assert row is not None
        assert row[0] >= 5 + 6  # a primary key per table plus the foreign-key indexes
    parquet = sorted(p.name for p in (directory / "data").iterdir())
    assert parquet == ["lineitem.parquet", "part.parquet", "partsupp.parquet"]
    assert pq.read_metadata(directory / "data" / "lineitem.parquet").num_rows > 50_000
    mesh = load_mesh(directory, known_source_kinds=installed_kinds())
    assert len(mesh.products) == 8
    assert mesh.sources["tpch_pg"].options["dsn"] == pg_database
    assert mesh.products[("tpch", "lineitem")].table is not None
    assert "admin" in mesh.users


def test_a_password_in_the_dsn_is_not_written_to_the_config(tmp_path: Path) -> None:
    from benchmarks.tpch import write_config

    write_config(tmp_path, "postgresql://bench:s3cret@db.example:5432/tpch", "tpch", 0.01)
    text = (tmp_path / "mesh.yaml").read_text()
    assert "s3cret" not in text
    assert "${TPCH_PG_PASSWORD}" in text


def test_the_22_queries_reference_the_domain_and_run() -> None:
    queries = tpch_queries()
    assert len(queries) == 22
    connection = duckdb.connect()
    connection.execute(f"LOAD '{tpch_extension()}'")
    connection.execute("CREATE SCHEMA tpch")
    connection.execute("CALL dbgen(sf = 0.01, schema = 'tpch')")
    for number, query in enumerate(queries, 1):
        assert "tpch." in query, number
        connection.execute(query).fetchall()
    # CTE names, aliases and columns are left alone.
    assert "tpch.revenue" not in queries[14]
    assert qualify_tables("SELECT n_name AS nation FROM nation") == (
        "SELECT\n  n_name AS nation\nFROM tpch.nation"
    )


def test_cli_prints_one_query(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queries", "--number", "6"]) == 0
    assert "FROM tpch.lineitem" in capsys.readouterr().out
