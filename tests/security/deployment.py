"""The demo mesh with `hr_db` served by SQLite, DuckDB or PostgreSQL, and a hidden row switch.

Each kind gets the same raw HR rows (the demo generator's tables). The hidden row is a US
employee with values no policy-respecting answer can contain; toggling it changes the source
only, never the oracle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pyarrow as pa
import yaml

from meshgate.demo.generate import HR_DDL, build_tables, prepare_demo
from meshgate.server import MeshgateFlightServer, running_server
from meshgate.service import QueryService

KINDS = ("sqlite", "duckdb", "postgres")
HIDDEN_ID = 999999
HIDDEN_SSN = "000-00-0000"
HIDDEN_NAME = "ZZ Hidden"
HIDDEN_EMAIL = "zz.hidden@secret.example"
# Values a leak would carry: in results, errors or EXPLAIN.
HIDDEN_MARKERS = (str(HIDDEN_ID), HIDDEN_SSN, HIDDEN_NAME, HIDDEN_EMAIL, "secret.example")

_PG_DDL = {
    "departments": "id INTEGER, name TEXT, region TEXT, cost_center TEXT",
    "employees": "id INTEGER, name TEXT, email TEXT, ssn TEXT, salary NUMERIC(10,2), "
                 "region TEXT, manager_id INTEGER, department_id INTEGER, hire_date DATE, "
                 "is_active BOOLEAN",
}


def hidden_row(salary: Decimal | int) -> dict[str, Any]:
    return {
        "id": HIDDEN_ID, "name": HIDDEN_NAME, "email": HIDDEN_EMAIL, "ssn": HIDDEN_SSN,
        "salary": salary, "region": "US", "manager_id": HIDDEN_ID, "department_id": 7,
        "hire_date": dt.date(2001, 2, 3), "is_active": True,
    }


@dataclass
class Deployment:
    """A running server over one source kind; `hide(True)` puts the hidden row in the source."""

    kind: str
    directory: Path
    service: QueryService
    server: MeshgateFlightServer
    secrets: tuple[str, ...]  # paths, DSNs and source names no client may ever read
    _insert: Callable[[], None]
    _delete: Callable[[], None]
    hidden: bool = False
    # What each case showed in the first phase it ran in (error text, rows each source sent),
    # to compare with what it shows once the hidden row is in the source.
    first_seen: dict[str, object] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"grpc://127.0.0.1:{self.server.port}"

    def hide(self, present: bool) -> None:
        if present == self.hidden:
            return
        (self._insert if present else self._delete)()
        self.hidden = present


def _rewrite_hr_source(directory: Path, kind: str, options: dict[str, str]) -> None:
    mesh = directory / "mesh.yaml"
    document = yaml.safe_load(mesh.read_text())
    (source,) = [s for s in document["sources"] if s["name"] == "hr_db"]
    source["kind"] = kind
    source["options"] = options
    mesh.write_text(yaml.safe_dump(document, sort_keys=False))


def _sqlite(directory: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    path = directory / "data" / "hr.sqlite"
    row = hidden_row(1_000_000_000)  # does not even fit DECIMAL(10,2): reading it would fail
    values = [v.isoformat() if isinstance(v, dt.date) else v for v in row.values()]

    def run(sql: str, *args: Any) -> None:
        connection = sqlite3.connect(path)
        try:
            connection.execute(sql, args)
            connection.commit()
        finally:
            connection.close()

    marks = ", ".join("?" for _ in values)
    return (lambda: run(f"INSERT INTO employees VALUES ({marks})", *values),
            lambda: run("DELETE FROM employees WHERE id = ?", HIDDEN_ID))


def _duckdb(directory: Path, service: Callable[[], QueryService]
            ) -> tuple[Callable[[], None], Callable[[], None]]:
    path = directory / "data" / "hr.duckdb"
    with duckdb.connect(str(path)) as connection:
        for name, table in build_tables().hr.items():
            connection.execute(f"CREATE TABLE {name} ({HR_DDL[name]})")
            connection.register("incoming", table)
            connection.execute(f"INSERT INTO {name} SELECT * FROM incoming")
            connection.unregister("incoming")
    _rewrite_hr_source(directory, "duckdb", {"path": "data/hr.duckdb"})
    row = hidden_row(Decimal("99999999.99"))

    def run(sql: str, *args: Any) -> None:
        # The connector holds the file open read-only; it reopens on the next query.
        service().connectors["hr_db"].close()
        with duckdb.connect(str(path)) as connection:
            connection.execute(sql, list(args))

    marks = ", ".join("?" for _ in row)
    return (lambda: run(f"INSERT INTO employees VALUES ({marks})", *row.values()),
            lambda: run("DELETE FROM employees WHERE id = ?", HIDDEN_ID))


def _postgres(directory: Path, dsn: str) -> tuple[Callable[[], None], Callable[[], None]]:
    with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        for name, table in build_tables().hr.items():
            cursor.execute(f"CREATE TABLE {name} ({_PG_DDL[name]})")
            cursor.adbc_ingest(name, _as_pg(table), mode="append")
    _rewrite_hr_source(directory, "postgres", {"dsn": dsn})
    row = hidden_row(Decimal("99999999.99"))

    def run(sql: str, *args: Any) -> None:
        with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(sql, args or None)

    values = ", ".join(
        "NULL" if v is None else f"'{v}'" if isinstance(v, (str, dt.date)) else str(v)
        for v in row.values()
    )
    return (lambda: run(f"INSERT INTO employees VALUES ({values})"),
            lambda: run(f"DELETE FROM employees WHERE id = {HIDDEN_ID}"))


def _as_pg(table: pa.Table) -> pa.Table:
    """Integers as int32 to match the INTEGER columns the ingest appends to."""
    fields = [pa.field(f.name, pa.int32()) if pa.types.is_integer(f.type) else f
              for f in table.schema]
    return table.cast(pa.schema(fields))


@contextlib.contextmanager
def deployed(kind: str, root: Path, pg_dsn: Callable[[], contextlib.AbstractContextManager[str]]
             ) -> Iterator[Deployment]:
    """The demo mesh in `root` with hr_db of `kind`, served on a free port."""
    directory = prepare_demo(root)
    holder: list[QueryService] = []
    with contextlib.ExitStack() as stack:
        secrets: tuple[str, ...] = (str(directory), "hr_db", "sales_db", "finance_lake",
                                    "hr.sqlite", "sales.duckdb")
        if kind == "sqlite":
            insert, delete = _sqlite(directory)
        elif kind == "duckdb":
            insert, delete = _duckdb(directory, lambda: holder[0])
            secrets += ("hr.duckdb",)
        else:
            dsn = stack.enter_context(pg_dsn())
            insert, delete = _postgres(directory, dsn)
            secrets += (dsn, dsn.rsplit("/", 1)[-1])
        service = QueryService.from_config(directory)
        holder.append(service)
        stack.callback(service.close)
        server = stack.enter_context(running_server(service))
        deployment = Deployment(kind, directory, service, server, secrets, insert, delete)
        try:
            yield deployment
        finally:
            deployment.hide(False)
