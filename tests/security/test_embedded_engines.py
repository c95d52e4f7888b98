"""Every embedded DuckDB (the merge, the DuckDB and files sources) is locked down.

User SQL never carries SET, INSTALL or a file read past the gate; these tests go under it,
straight to each engine's own connection, to prove that even a statement meshgate built by
mistake could not widen what the engine may do: no extension installed or loaded, no file
read outside what the source names, no setting changed once it is open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from meshgate_duckdb import DuckDBConnector
from meshgate_files import FilesConnector
from sqlglot import exp, parse_one

from meshgate.errors import MeshgateError, UnsupportedQuery
from meshgate.execution.engine import DuckDBEngine
from meshgate.spi import ConnectorContext, PushedQuery, QueryContext

ATTEMPTS = {
    "SET enable_external_access = true": "the configuration has been locked",
    "SET autoload_known_extensions = true": "the configuration has been locked",
    "RESET lock_configuration": "the configuration has been locked",
    "INSTALL inet": "disabled",
    "LOAD inet": "disabled",
}


def raw(sql: str) -> PushedQuery:
    """A handle whose SELECT is `sql` (a statement the planner never builds)."""
    select = parse_one(sql, read="duckdb")
    assert isinstance(select, exp.Select)
    return PushedQuery(select=select, schema=pa.schema([("n", pa.int64())]), inputs=())


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A Parquet file no source names."""
    path = tmp_path / "elsewhere" / "secret.parquet"
    path.parent.mkdir()
    duckdb.sql(f"COPY (SELECT 42 AS n) TO '{path}'")
    return path


@pytest.fixture
def duckdb_source(tmp_path: Path) -> Iterator[DuckDBConnector]:
    duckdb.connect(str(tmp_path / "lab.duckdb")).close()
    source = DuckDBConnector(ConnectorContext("lab", {"path": "lab.duckdb"}, tmp_path))
    yield source
    source.close()


@pytest.fixture
def files_source(tmp_path: Path) -> Iterator[FilesConnector]:
    (tmp_path / "lake").mkdir()
    duckdb.sql(f"COPY (SELECT 7 AS n) TO '{tmp_path / 'lake' / 'mine.parquet'}'")
    source = FilesConnector(ConnectorContext("lake", {"path": "lake"}, tmp_path))
    yield source
    source.close()


def _engines(duckdb_source: DuckDBConnector,
             files_source: FilesConnector) -> dict[str, duckdb.DuckDBPyConnection]:
    return {"merge": DuckDBEngine()._cursor(), "duckdb source": duckdb_source._cursor(),
            "files source": files_source._cursor()}


@pytest.mark.parametrize(("statement", "refusal"), ATTEMPTS.items(), ids=list(ATTEMPTS))
def test_no_engine_takes_a_setting_or_an_extension(duckdb_source: DuckDBConnector,
                                                   files_source: FilesConnector,
                                                   statement: str, refusal: str) -> None:
    for name, cursor in _engines(duckdb_source, files_source).items():
        with pytest.raises(duckdb.Error, match=refusal):
            cursor.execute(statement)
        assert cursor.execute(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions'), "
            "current_setting('lock_configuration')").fetchone() == (False, False, True), name
        cursor.close()


def test_an_extension_type_is_refused_not_installed() -> None:
    engine = DuckDBEngine()
    query = parse_one("SELECT CAST('1.2.3.4' AS INET) AS ip")
    assert isinstance(query, exp.Query)
    with pytest.raises(UnsupportedQuery, match="DuckDB's inet extension, which meshgate does"):
        engine.describe(query, {})


def test_the_merge_and_the_duckdb_source_read_no_file(duckdb_source: DuckDBConnector,
                                                      outside: Path) -> None:
    scan = f"SELECT n FROM read_parquet('{outside}')"
    with pytest.raises(MeshgateError) as merged:
        list(DuckDBEngine().run(raw(scan).select, {}, {}, QueryContext.standalone()))
    with pytest.raises(MeshgateError) as pushed:
        duckdb_source.execute(raw(scan)).read_all()
    for refused in (merged.value, pushed.value):
        assert "file system operations are disabled" in str(refused.detail)


def test_the_files_source_reads_its_directory_and_nothing_else(files_source: FilesConnector,
                                                                outside: Path,
                                                                tmp_path: Path) -> None:
    mine = files_source.execute(raw(f"SELECT n FROM read_parquet('{tmp_path}/lake/mine.parquet')"))
    assert mine.read_all().column("n").to_pylist() == [7]
    for path in (outside, tmp_path / "lake" / ".." / "elsewhere" / "secret.parquet"):
        with pytest.raises(MeshgateError) as refused:
            files_source.execute(raw(f"SELECT n FROM read_parquet('{path}')")).read_all()
        assert "file system operations are disabled" in str(refused.value.detail)
