"""Every column type a source produces reaches each client as its product declares it.

One table of every type in a DuckDB file, one of every PostgreSQL type and one of every type an
SQLite file can hold, each with a row of values at the edges of their types and a row of NULLs,
read by ADBC, pyarrow.flight, flightsql-dbapi (in its own process) and psycopg over the
PostgreSQL wire: pushed whole to their source, and through meshgate's merge (a join across two
sources). The Flight SQL wire carries plain Arrow types only (no view, dictionary, large or
run-end encoded arrays), timestamps in microseconds.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import adbc_driver_postgresql.dbapi as pg
import duckdb
import psycopg
import pyarrow as pa
import pytest

from meshgate.principal import scram_hash
from meshgate.server import running_server
from meshgate.server.postgres import PostgresFrontEnd
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.server.flightsql_clients import Session

UUID = uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")
WHEN = dt.datetime(2025, 3, 4, 5, 6, 7, 123456)
DBAPI_CLIENT = Path(__file__).with_name("flightsql_dbapi_client.py")
INTERVAL = pa.scalar((14, 2, 3_000_000_000), pa.month_day_nano_interval()).as_py()

# (column, declared type, DuckDB source type, SQL literal, Arrow type on the wire, value read)
DUCKDB_COLUMNS: list[tuple[str, str, str, str, pa.DataType, Any]] = [
    ("b", "BOOLEAN", "BOOLEAN", "true", pa.bool_(), True),
    ("i8", "TINYINT", "TINYINT", "-128", pa.int8(), -128),
    ("i16", "SMALLINT", "SMALLINT", "-32768", pa.int16(), -32768),
    ("i32", "INTEGER", "INTEGER", "-2147483648", pa.int32(), -2147483648),
    ("i64", "BIGINT", "BIGINT", "-9223372036854775808", pa.int64(), -9223372036854775808),
    ("u8", "UTINYINT", "UTINYINT", "255", pa.uint8(), 255),
    ("u16", "USMALLINT", "USMALLINT", "65535", pa.uint16(), 65535),
    ("u32", "UINTEGER", "UINTEGER", "4294967295", pa.uint32(), 4294967295),
    ("u64", "UBIGINT", "UBIGINT", "18446744073709551615", pa.uint64(), 18446744073709551615),
    ("f32", "FLOAT", "FLOAT", "1.5", pa.float32(), 1.5),
    ("f64", "DOUBLE", "DOUBLE", "-2.25e300", pa.float64(), -2.25e300),
    ("d12", "DECIMAL(12,2)", "DECIMAL(12,2)", "-1234567890.12", pa.decimal128(12, 2),
     Decimal("-1234567890.12")),
    ("d38", "DECIMAL(38,4)", "DECIMAL(38,4)", "1234567890123456789012345678901234.5678",
     pa.decimal128(38, 4), Decimal("1234567890123456789012345678901234.5678")),
    ("txt", "VARCHAR", "VARCHAR", "'naïve ☃ \"quoted\"'", pa.string(), 'naïve ☃ "quoted"'),
    ("bin", "BLOB", "BLOB", "'\\xAB\\x00\\xFF'::BLOB", pa.binary(), b"\xab\x00\xff"),
    ("day", "DATE", "DATE", "DATE '2025-03-04'", pa.date32(), dt.date(2025, 3, 4)),
    ("clock", "TIME", "TIME", "TIME '05:06:07.123456'", pa.time64("us"),
     dt.time(5, 6, 7, 123456)),
    ("ts", "TIMESTAMP", "TIMESTAMP", "TIMESTAMP '2025-03-04 05:06:07.123456'",
     pa.timestamp("us"), WHEN),
    ("tstz", "TIMESTAMPTZ", "TIMESTAMPTZ", "TIMESTAMPTZ '2025-03-04 05:06:07.123456+00'",
     pa.timestamp("us", tz="UTC"), WHEN.replace(tzinfo=dt.UTC)),
    ("span", "INTERVAL", "INTERVAL", "INTERVAL '1 year 2 months 2 days 3 seconds'",
     pa.month_day_nano_interval(), INTERVAL),
    ("id_u", "UUID", "UUID", f"UUID '{UUID}'", pa.string(), str(UUID)),
    ("doc", "JSON", "JSON", "'{\"a\": [1, 2]}'", pa.string(), '{"a": [1, 2]}'),
    ("ints", "INTEGER[]", "INTEGER[]", "[1, NULL, 3]", pa.list_(pa.int32()), [1, None, 3]),
    ("words", "VARCHAR[]", "VARCHAR[]", "['a', '']", pa.list_(pa.string()), ["a", ""]),
    ("place", "STRUCT(city VARCHAR, zip INTEGER)", "STRUCT(city VARCHAR, zip INTEGER)",
     "{'city': 'Paris', 'zip': 75001}",
     pa.struct([pa.field("city", pa.string()), pa.field("zip", pa.int32())]),
     {"city": "Paris", "zip": 75001}),
]

# (column, declared type, PostgreSQL type, SQL literal, Arrow type on the wire, value read)
POSTGRES_COLUMNS: list[tuple[str, str, str, str, pa.DataType, Any]] = [
    ("b", "BOOLEAN", "boolean", "true", pa.bool_(), True),
    ("i16", "SMALLINT", "smallint", "-32768", pa.int16(), -32768),
    ("i32", "INTEGER", "integer", "-2147483648", pa.int32(), -2147483648),
    ("i64", "BIGINT", "bigint", "-9223372036854775808", pa.int64(), -9223372036854775808),
    ("f32", "FLOAT", "real", "1.5", pa.float32(), 1.5),
    ("f64", "DOUBLE", "double precision", "-2.25e300", pa.float64(), -2.25e300),
    ("d12", "DECIMAL(12,2)", "numeric(12,2)", "-1234567890.12", pa.decimal128(12, 2),
     Decimal("-1234567890.12")),
    ("d38", "DECIMAL(38,4)", "numeric(38,4)", "1234567890123456789012345678901234.5678",
     pa.decimal128(38, 4), Decimal("1234567890123456789012345678901234.5678")),
    ("txt", "VARCHAR", "text", "'naïve ☃ \"quoted\"'", pa.string(), 'naïve ☃ "quoted"'),
    ("short", "VARCHAR", "varchar(8)", "'abc'", pa.string(), "abc"),
    ("bin", "BLOB", "bytea", "'\\xab00ff'::bytea", pa.binary(), b"\xab\x00\xff"),
    ("day", "DATE", "date", "'2025-03-04'", pa.date32(), dt.date(2025, 3, 4)),
    ("clock", "TIME", "time", "'05:06:07.123456'", pa.time64("us"), dt.time(5, 6, 7, 123456)),
    ("ts", "TIMESTAMP", "timestamp", "'2025-03-04 05:06:07.123456'", pa.timestamp("us"), WHEN),
    ("tstz", "TIMESTAMPTZ", "timestamptz", "'2025-03-04 05:06:07.123456+00'",
     pa.timestamp("us", tz="UTC"), WHEN.replace(tzinfo=dt.UTC)),
    ("span", "INTERVAL", "interval", "'1 year 2 months 2 days 3 seconds'",
     pa.month_day_nano_interval(), INTERVAL),
    ("id_u", "UUID", "uuid", f"'{UUID}'", pa.string(), str(UUID)),
    ("doc", "JSON", "json", "'{\"a\": [1, 2]}'", pa.string(), '{"a": [1, 2]}'),
    ("ints", "INTEGER[]", "integer[]", "'{1,NULL,3}'", pa.list_(pa.int32()), [1, None, 3]),
    ("words", "VARCHAR[]", "text[]", "'{a,\"\"}'", pa.list_(pa.string()), ["a", ""]),
]
# SQLite declares any type name and stores INTEGER, REAL, TEXT or BLOB: booleans as 0/1,
# decimals, dates, times and timestamps as ISO text (the connector parses them as the product
# declares), UUID and JSON as text. It has no unsigned 64-bit integers, intervals, lists or
# structs: a product over SQLite declares those by SQL instead (`sqlite_cast` below).
# (column, declared type, SQLite column type, SQL literal, Arrow type on the wire, value read)
SQLITE_COLUMNS: list[tuple[str, str, str, str, pa.DataType, Any]] = [
    ("b", "BOOLEAN", "BOOLEAN", "1", pa.bool_(), True),
    ("i8", "TINYINT", "TINYINT", "-128", pa.int8(), -128),
    ("i16", "SMALLINT", "SMALLINT", "-32768", pa.int16(), -32768),
    ("i32", "INTEGER", "INTEGER", "-2147483648", pa.int32(), -2147483648),
    ("i64", "BIGINT", "BIGINT", "-9223372036854775808", pa.int64(), -9223372036854775808),
    ("u32", "UINTEGER", "INTEGER", "4294967295", pa.uint32(), 4294967295),
    ("f32", "FLOAT", "REAL", "1.5", pa.float32(), 1.5),
    ("f64", "DOUBLE", "DOUBLE", "-2.25e300", pa.float64(), -2.25e300),
    ("d12", "DECIMAL(12,2)", "TEXT", "'-1234567890.12'", pa.decimal128(12, 2),
     Decimal("-1234567890.12")),
    ("d38", "DECIMAL(38,4)", "TEXT", "'1234567890123456789012345678901234.5678'",
     pa.decimal128(38, 4), Decimal("1234567890123456789012345678901234.5678")),
    ("txt", "VARCHAR", "TEXT", "'naïve ☃ \"quoted\"'", pa.string(), 'naïve ☃ "quoted"'),
    ("bin", "BLOB", "BLOB", "X'AB00FF'", pa.binary(), b"\xab\x00\xff"),
    ("day", "DATE", "DATE", "'2025-03-04'", pa.date32(), dt.date(2025, 3, 4)),
    ("clock", "TIME", "TEXT", "'05:06:07.123456'", pa.time64("us"), dt.time(5, 6, 7, 123456)),
    ("ts", "TIMESTAMP", "DATETIME", "'2025-03-04 05:06:07.123456'", pa.timestamp("us"), WHEN),
    ("tstz", "TIMESTAMPTZ", "TEXT", "'2025-03-04 05:06:07.123456+00:00'",
     pa.timestamp("us", tz="UTC"), WHEN.replace(tzinfo=dt.UTC)),
    ("id_u", "UUID", "TEXT", f"'{UUID}'", pa.string(), str(UUID)),
    ("doc", "JSON", "TEXT", "'{\"a\": [1, 2]}'", pa.string(), '{"a": [1, 2]}'),
]
PRODUCTS = {"duck_types": DUCKDB_COLUMNS, "pg_types": POSTGRES_COLUMNS,
            "sqlite_types": SQLITE_COLUMNS}


def _columns_yaml(columns: list[tuple[str, str, str, str, pa.DataType, Any]]) -> str:
    lines = ["      - {name: id, type: INTEGER}"]
    lines += [f"      - {{name: {name}, type: \"{declared}\"}}"
              for name, declared, *_ in columns]
    return "\n".join(lines)


CONFIG = f"""
mesh: {{name: typed}}
sources:
  - {{name: local, kind: duckdb, options: {{path: local.duckdb}}}}
  - {{name: warehouse, kind: postgres, options: {{dsn: "DSN"}}}}
  - {{name: lite, kind: sqlite, options: {{path: lite.sqlite}}}}
domains:
  - {{name: ops, owner: ops-team}}
products:
  - domain: ops
    name: duck_types
    table: {{source: local, table: every_type}}
    columns:
{_columns_yaml(DUCKDB_COLUMNS)}
  - domain: ops
    name: pg_types
    table: {{source: warehouse, schema: public, table: every_type}}
    columns:
{_columns_yaml(POSTGRES_COLUMNS)}
  - domain: ops
    name: sqlite_types
    table: {{source: lite, table: every_type}}
    columns:
{_columns_yaml(SQLITE_COLUMNS)}
  - domain: ops
    name: sqlite_too_wide
    table: {{source: lite, table: too_wide}}
    columns:
      - {{name: amount, type: "DECIMAL(5,1)"}}
roles: [{{name: admin, grants: ["*"]}}]
users: [{{name: admin, password_hash: "HASH", roles: [admin]}}]
"""


def _create(columns: list[tuple[str, str, str, str, pa.DataType, Any]]) -> list[str]:
    definition = ", ".join(["id integer"] + [f"{name} {source}" for name, _, source, *_ in columns])
    values = ", ".join(["1"] + [literal for _, _, _, literal, *_ in columns])
    return [f"CREATE TABLE every_type ({definition})",
            f"INSERT INTO every_type VALUES ({values})",
            "INSERT INTO every_type (id) VALUES (2)"]


@pytest.fixture(scope="module")
def ports(tmp_path_factory: pytest.TempPathFactory,
          pg_server_dsn: str) -> Iterator[tuple[str, int]]:  # fmt: skip
    """The Flight SQL URI and the PostgreSQL wire port of one server over the typed mesh."""
    from tests.conftest import fresh_pg_database

    directory: Path = tmp_path_factory.mktemp("typed")
    with duckdb.connect(str(directory / "local.duckdb")) as connection:
        for statement in _create(DUCKDB_COLUMNS):
            connection.execute(statement)
    lite = sqlite3.connect(directory / "lite.sqlite")
    with lite:
        for statement in _create(SQLITE_COLUMNS):
            lite.execute(statement)
        lite.execute("CREATE TABLE too_wide (amount TEXT)")
        lite.execute("INSERT INTO too_wide VALUES ('123456.7')")
    lite.close()
    with fresh_pg_database(pg_server_dsn) as dsn:
        with pg.connect(dsn, autocommit=True) as conn, conn.cursor() as cursor:
            for statement in _create(POSTGRES_COLUMNS):
                cursor.execute(statement)
        (directory / "mesh.yaml").write_text(
            # A SCRAM verifier: the PostgreSQL wire's default sign-in needs one; Flight SQL too.
            CONFIG.replace("HASH", scram_hash("admin"))
            .replace("DSN", dsn)
        )
        service = QueryService.from_config(directory)
        front_end = PostgresFrontEnd(service).start()
        try:
            with running_server(service) as server:
                yield f"grpc://127.0.0.1:{server.port}", front_end.port
        finally:
            front_end.shutdown()
            service.close()


@pytest.fixture(scope="module")
def uri(ports: tuple[str, int]) -> str:
    return ports[0]


@pytest.fixture(scope="module")
def postgres_port(ports: tuple[str, int]) -> int:
    return ports[1]


def _adbc(uri: str, sql: str) -> pa.Table:
    with adbc.connect(uri, db_kwargs={"username": "admin", "password": "admin"}) as conn, \
            conn.cursor() as cursor:  # fmt: skip
        cursor.execute(sql)
        table: pa.Table = cursor.fetch_arrow_table()
        return table


def _pyarrow(uri: str, sql: str) -> pa.Table:
    session = Session(uri, "admin", "admin")
    try:
        return session.fetch(pb.CommandStatementQuery(query=sql))[1]
    finally:
        session.close()


def _flightsql_dbapi(port: int, sql: str) -> dict[str, Any]:
    """flightsql-dbapi in its own process (its protobuf classes clash with meshgate's)."""
    done = subprocess.run(
        [sys.executable, str(DBAPI_CLIENT), str(port), "admin", "admin", sql],
        capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _plain(arrow: pa.DataType) -> bool:
    """No dictionary, view, large or run-end encoded layout anywhere inside."""
    if (pa.types.is_dictionary(arrow) or pa.types.is_run_end_encoded(arrow)
            or pa.types.is_large_string(arrow) or pa.types.is_large_binary(arrow)
            or pa.types.is_string_view(arrow) or pa.types.is_binary_view(arrow)
            or pa.types.is_large_list(arrow) or pa.types.is_list_view(arrow)):
        return False
    return all(_plain(arrow.field(i).type) for i in range(arrow.num_fields))


@pytest.mark.parametrize("read", [_adbc, _pyarrow], ids=["adbc", "pyarrow.flight"])
@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_every_type_arrives_as_declared(uri: str, product: str, read: Any) -> None:
    columns = PRODUCTS[product]
    table = read(uri, f"SELECT * FROM ops.{product} ORDER BY id")
    assert [(f.name, f.type) for f in table.schema] == [("id", pa.int32())] + [
        (name, wire) for name, _, _, _, wire, _ in columns
    ]
    assert all(_plain(f.type) for f in table.schema)
    values, nulls = table.to_pylist()
    assert values == {"id": 1} | {name: value for name, *_, value in columns}
    assert nulls == {"id": 2} | {name: None for name, *_ in columns}


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_every_type_reaches_flightsql_dbapi_as_declared(uri: str, product: str) -> None:
    """flightsql-dbapi reads the same Arrow types and values (the client prints values other
    than integers and text as Python's `str`)."""
    columns = PRODUCTS[product]
    result = _flightsql_dbapi(int(uri.rsplit(":", 1)[1]),
                              f"SELECT * FROM ops.{product} ORDER BY id")
    assert "error" not in result, result
    assert result["columns"] == ["id"] + [name for name, *_ in columns]
    assert result["types"] == ["int32"] + [str(wire) for _, _, _, _, wire, _ in columns]
    assert result["schema_matches"] is True
    values, nulls = result["rows"]
    assert values == [1] + [v if isinstance(v, int | str) else str(v)
                            for *_, v in columns]
    assert nulls == [2] + [None] * len(columns)


def _pg_wire(arrow: pa.DataType, value: Any) -> tuple[int, Any]:
    """The PostgreSQL type OID psycopg is told and the value it reads, for a wire type."""
    if pa.types.is_boolean(arrow):
        return 16, value
    if pa.types.is_int64(arrow) or pa.types.is_uint32(arrow):
        return 20, value
    if pa.types.is_uint64(arrow):  # beyond bigint
        return 1700, Decimal(value)
    if pa.types.is_integer(arrow):
        return 23, value
    if pa.types.is_floating(arrow):
        return 701, value
    if pa.types.is_decimal(arrow):
        return 1700, value
    if pa.types.is_binary(arrow):
        return 17, value
    if pa.types.is_date(arrow):
        return 1082, value
    if pa.types.is_time(arrow):
        return 1083, value
    if pa.types.is_timestamp(arrow):
        return (1184 if arrow.tz else 1114), value
    if pa.types.is_string(arrow):
        return 25, value
    if pa.types.is_interval(arrow):  # psycopg counts a month as 30 days, as for PostgreSQL's
        return 1186, dt.timedelta(days=value.months * 30 + value.days,
                                  microseconds=value.nanoseconds // 1000)
    arrays = {pa.int32(): 1007, pa.int64(): 1016, pa.string(): 1009}
    if pa.types.is_list(arrow) and arrow.value_type in arrays:
        return arrays[arrow.value_type], value
    if pa.types.is_nested(arrow):  # structs and other lists as json: dicts and lists
        return 114, value
    return 25, str(value)


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_every_type_reaches_psycopg_over_the_postgres_wire(postgres_port: int,
                                                           product: str) -> None:
    columns = PRODUCTS[product]
    dsn = f"postgresql://admin:admin@127.0.0.1:{postgres_port}/meshgate"
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ops.{product} ORDER BY id")
        values, nulls = cursor.fetchall()
        described = [(column.name, column.type_code) for column in cursor.description or []]
    expected = [_pg_wire(wire, value) for _, _, _, _, wire, value in columns]
    assert described == [("id", 23)] + [
        (name, oid) for (name, *_), (oid, _) in zip(columns, expected, strict=True)]
    assert values == (1, *(value for _, value in expected))
    assert nulls == (2, *([None] * len(columns)))


def test_every_type_keeps_its_value_through_the_merge(uri: str) -> None:
    """A join across the two sources runs in meshgate's DuckDB; the values come out as the
    sources gave them."""
    shared = [name for name, *_ in POSTGRES_COLUMNS
              if name in {n for n, *_ in DUCKDB_COLUMNS} and name not in {"f32"}]
    checks = " AND ".join(f"d.{name} IS NOT DISTINCT FROM p.{name}" for name in shared)
    sql = (f"SELECT d.id, {', '.join(f'p.{n}' for n in shared)}, d.place, d.u64 "
           f"FROM ops.duck_types d JOIN ops.pg_types p ON d.id = p.id WHERE {checks} "
           "ORDER BY d.id")
    table = _adbc(uri, sql)
    expected = {name: value for name, *_, value in POSTGRES_COLUMNS}
    values, nulls = table.to_pylist()
    assert values == {"id": 1} | {n: expected[n] for n in shared} | {
        "place": {"city": "Paris", "zip": 75001}, "u64": 18446744073709551615}
    assert set(nulls.values()) == {2, None}
    assert all(_plain(f.type) for f in table.schema)


def test_an_sqlite_number_wider_than_its_declared_decimal_is_refused_without_its_value(
    uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite stores decimals as text of any length (38 digits fit, above); one that does not
    fit the product's DECIMAL(p,s) fails the source like any other bad source data: the
    caller gets an error id, never the value; the log names the value and the type."""
    with pytest.raises(adbc.Error, match=r"source 'lite', which this query reads, is "
                                         r"unavailable right now \(error id \w+\)") as raised:
        _adbc(uri, "SELECT amount FROM ops.sqlite_too_wide")
    assert "123456" not in str(raised.value)
    assert "'123456.7' does not fit DECIMAL(5, 1)" in caplog.text


def test_a_type_no_product_may_declare_is_a_config_error_with_the_list() -> None:
    from meshgate.errors import ConfigError
    from meshgate.types import arrow_type, parse_sql_type

    with pytest.raises(ConfigError, match=r"MAP\(TEXT, INT\) is not supported yet; supported "
                                          r"types: BOOLEAN, .* STRUCT\(name type, \.\.\.\)"):
        arrow_type(parse_sql_type("MAP(VARCHAR, INTEGER)"))
