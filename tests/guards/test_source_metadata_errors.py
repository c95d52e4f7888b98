"""A source's own failures keep physical names in the operator's detail, never the message.

The message of a SourceUnavailable travels further than the server log: into the audit record's
`message`, and to every front end that shows a MeshgateError's message. A missing or unreadable
file, or a table a product names but the source lacks, must therefore be described by the kind
of source and what to check, while the path, the table and the source's configured name go to
`detail` (part of `str(error)`, which `meshgate check` and the server log print).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from meshgate_duckdb import DuckDBConnector
from meshgate_files import FilesConnector
from meshgate_postgres import PostgresConnector
from meshgate_sqlite import SQLiteConnector

from meshgate.errors import SourceUnavailable, Status
from meshgate.spi import Connector, ConnectorContext, SourceTable

SOURCE = "vault_source"
TABLE = "secret_ledger"


def _duckdb_file(directory: Path) -> None:
    with duckdb.connect(str(directory / "store.duckdb")) as connection:
        connection.execute("CREATE TABLE other AS SELECT 1 AS x")


def _sqlite_file(directory: Path) -> None:
    with sqlite3.connect(directory / "store.sqlite") as connection:
        connection.execute("CREATE TABLE other (x INTEGER)")


def _garbage(name: str) -> Callable[[Path], None]:
    def write(directory: Path) -> None:
        (directory / name).write_bytes(b"this is not a database file" * 40)

    return write


def _nothing(directory: Path) -> None:
    return None


Case = tuple[type[Connector], dict[str, str], Callable[[Path], None], str]
CASES: dict[str, Case] = {
    "duckdb, no file": (DuckDBConnector, {"path": "store.duckdb"}, _nothing,
                        "a DuckDB source's database file does not exist; check the source's "
                        "`path` option (relative paths are resolved against the configuration "
                        "directory)"),
    "duckdb, no table": (DuckDBConnector, {"path": "store.duckdb"}, _duckdb_file,
                         "a DuckDB source has no table a product is configured to read; check "
                         "the product's table name in the configuration"),
    "duckdb, not a database": (DuckDBConnector, {"path": "store.duckdb"},
                               _garbage("store.duckdb"),
                               "a DuckDB source's database file could not be read; check that "
                               "it is a DuckDB database this DuckDB version can open and is not "
                               "locked by a writer"),
    "sqlite, no file": (SQLiteConnector, {"path": "store.sqlite"}, _nothing,
                        "an SQLite source's database file does not exist; check the source's "
                        "`path` option (relative paths are resolved against the configuration "
                        "directory)"),
    "sqlite, no table": (SQLiteConnector, {"path": "store.sqlite"}, _sqlite_file,
                         "an SQLite source has no table a product is configured to read; check "
                         "the product's table name in the configuration"),
    "sqlite, not a database": (SQLiteConnector, {"path": "store.sqlite"},
                               _garbage("store.sqlite"),
                               "an SQLite source's database file could not be read; check that "
                               "it is an SQLite database the server may read"),
    "files, no directory": (FilesConnector, {"path": "lake", "format": "parquet"}, _nothing,
                            "a files source's directory does not exist; check the source's "
                            "`path` option (relative paths are resolved against the "
                            "configuration directory)"),
    "files, no file": (FilesConnector, {"path": ".", "format": "parquet"}, _nothing,
                       "a files source has no file for a table a product is configured to "
                       "read; check the product's table name and the source's `path` and "
                       "`format` options"),
    "files, not parquet": (FilesConnector, {"path": ".", "format": "parquet"},
                           _garbage(f"{TABLE}.parquet"),
                           "a files source could not read a table's files; check that they "
                           "are valid parquet"),
}  # fmt: skip


def _assert_clean(error: SourceUnavailable, message: str, directory: Path) -> None:
    assert error.status is Status.UNAVAILABLE
    assert error.message == message
    for physical in (str(directory), TABLE, SOURCE):
        assert physical not in error.message
    assert error.detail is not None
    assert SOURCE in error.detail
    assert str(directory) in error.detail or TABLE in error.detail  # the operator's pointer


@pytest.mark.parametrize("case", list(CASES))
def test_a_file_source_s_failure_names_nothing_physical(case: str, tmp_path: Path) -> None:
    kind, options, prepare, message = CASES[case]
    prepare(tmp_path)
    source = kind(ConnectorContext(SOURCE, options, tmp_path))
    try:
        with pytest.raises(SourceUnavailable) as caught:
            source.table_columns(SourceTable(None, TABLE))
    finally:
        source.close()
    _assert_clean(caught.value, message, tmp_path)
    assert str(caught.value).startswith(message + " [detail: ")


def test_a_postgres_source_without_the_table_names_nothing_physical(pg_database: str) -> None:
    source = PostgresConnector(ConnectorContext(SOURCE, {"dsn": pg_database}, Path.cwd()))
    try:
        with pytest.raises(SourceUnavailable) as caught:
            source.table_columns(SourceTable("public", TABLE))
    finally:
        source.close()
    database = pg_database.rsplit("/", 1)[-1]
    assert caught.value.message == (
        "a PostgreSQL source has no table a product is configured to read; check the "
        "product's table and schema names in the configuration and that meshgate's role may "
        "read it"
    )
    assert database not in caught.value.message
    assert caught.value.detail is not None
    assert TABLE in caught.value.detail
    assert database in caught.value.detail
