"""A query's cancel token stops a running SQLite, DuckDB or merge statement from another thread.

The statements below run for minutes before their first row, so only the driver's own
interrupt (registered on the token by the SQL-connector base's drivers) can end them early.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from meshgate_duckdb import DuckDBConnector
from meshgate_sqlite import SQLiteConnector
from sqlglot import exp, parse_one

from meshgate.errors import QueryCancelled
from meshgate.execution.engine import DuckDBEngine
from meshgate.spi import Connector, ConnectorContext, PushedQuery, QueryContext

SCHEMA = pa.schema([("n", pa.int64())])


def raw(sql: str, dialect: str) -> PushedQuery:
    """A handle whose SELECT is `sql` (a statement the planner never builds)."""
    select = parse_one(sql, read=dialect)
    assert isinstance(select, exp.Select)
    return PushedQuery(select=select, schema=SCHEMA, inputs=())


def cancelled_after(connector: Connector, handle: PushedQuery, seconds: float) -> float:
    """Run `handle`, cancel its token after `seconds`; how long the run took in all."""
    context = QueryContext.standalone()
    threading.Timer(seconds, context.cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(QueryCancelled):
        connector.execute(handle, context).read_all()
    return time.monotonic() - started


def test_the_token_interrupts_a_running_sqlite_statement(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.sqlite").close()
    source = SQLiteConnector(ConnectorContext("lab", {"path": "empty.sqlite"}, tmp_path))
    handle = raw("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                 "WHERE i < 10000000000) SELECT count(*) AS n FROM c", "sqlite")  # fmt: skip
    assert cancelled_after(source, handle, 0.5) < 2


def test_the_token_interrupts_a_running_duckdb_statement(tmp_path: Path) -> None:
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    source = DuckDBConnector(ConnectorContext("lab", {"path": "empty.duckdb"}, tmp_path))
    handle = raw("SELECT count(*) AS n FROM range(1000000) AS a(x), range(1000000) AS b(y) "
                 "WHERE a.x + b.y = -1", "duckdb")  # fmt: skip
    assert cancelled_after(source, handle, 0.5) < 2
    source.close()


def test_a_token_cancelled_before_the_run_starts_no_source_work(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.sqlite").close()
    source = SQLiteConnector(ConnectorContext("lab", {"path": "empty.sqlite"}, tmp_path))
    context = QueryContext.standalone()
    context.cancel.cancel()
    with pytest.raises(QueryCancelled):
        source.execute(raw("SELECT 1 AS n", "sqlite"), context)
    assert not source.sent_sql


def test_the_token_interrupts_the_residual_engine() -> None:
    engine = DuckDBEngine()
    query = parse_one("SELECT count(*) AS n FROM range(1000000) AS a(x), range(1000000) AS b(y) "
                      "WHERE a.x + b.y = -1", read="duckdb")  # fmt: skip
    assert isinstance(query, exp.Query)
    context = QueryContext.standalone()
    threading.Timer(0.5, context.cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(QueryCancelled):
        list(engine.run(query, {}, {}, context))
    assert time.monotonic() - started < 2
    engine.close()


def test_the_residual_engine_describes_with_engine_types_over_named_inputs() -> None:
    engine = DuckDBEngine()
    query = parse_one("SELECT f.k, SUM(f.qty) AS total FROM __fragment_1 AS f GROUP BY f.k",
                      read="duckdb")  # fmt: skip
    assert isinstance(query, exp.Query)
    inputs = {"__fragment_1": pa.schema([("k", pa.string()), ("qty", pa.int32())])}
    described = engine.describe(query, inputs)
    assert described == pa.schema([("k", pa.string()), ("total", pa.decimal128(38, 0))])
    table = pa.table({"k": ["a", "a", "b"], "qty": pa.array([1, 2, 3], pa.int32())})
    rows = pa.Table.from_batches(
        list(engine.run(query, {"__fragment_1": table.to_reader()}, {},
                        QueryContext.standalone())))  # fmt: skip
    assert sorted(rows.to_pylist(), key=lambda r: r["k"]) == [
        {"k": "a", "total": 3}, {"k": "b", "total": 3}]
    engine.close()
