"""Prepared statements in full, as ADBC, pyarrow.flight and JDBC-style callers use them.

Typed parameter schemas inferred from each parameter's use, binds of one or many rows (each
row one run of the query, their results in order as one stream), dense-union parameters,
handles bound to their principal with a time-to-live. Rows are compared with
`analyst_oracle` (DuckDB over the demo rows with analyst's policies applied in Python).
"""

from __future__ import annotations

import datetime as dt
import decimal
import time
from collections.abc import Iterator

import adbc_driver_flightsql.dbapi as adbc
import duckdb
import pyarrow as pa
import pytest

from meshgate.catalog.config import ServerConfig
from meshgate.server import MeshgateFlightServer
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.server.flightsql_clients import Endpoint, Session, descriptor, pack, unpack
from tests.server.test_statements import assert_like_oracle

UTC = dt.UTC


@pytest.fixture
def adbc_analyst(endpoint: Endpoint) -> Iterator[adbc.Connection]:
    with endpoint.adbc("analyst") as conn:
        yield conn


TYPED = [
    ("SELECT id, name FROM hr.employees WHERE id = ?", (5,)),
    ("SELECT id, hire_date FROM hr.employees WHERE hire_date >= ? ORDER BY id",
     (dt.date(2021, 1, 1),)),
    ("SELECT order_id, amount FROM sales.orders WHERE amount > ? ORDER BY order_id",
     (decimal.Decimal("950.25"),)),
    ("SELECT order_id, ts FROM sales.orders WHERE ts < ? ORDER BY order_id",
     (dt.datetime(2024, 1, 9, tzinfo=UTC),)),
    ("SELECT order_id FROM sales.orders WHERE ts BETWEEN ? AND ? ORDER BY order_id",
     (dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 3))),
    ("SELECT id, name FROM hr.departments WHERE region = ? ORDER BY id", ("EU",)),
    ("SELECT id FROM hr.employees WHERE is_active = ? AND department_id IN (?, ?) ORDER BY id",
     (False, 1, 2)),
    ("SELECT id FROM hr.employees WHERE id > $1 ORDER BY id LIMIT $2 OFFSET $3", (10, 3, 2)),
    ("SELECT order_id FROM sales.orders WHERE amount > ? ORDER BY order_id LIMIT ?",
     (100.5, 4)),
]


@pytest.mark.parametrize(("sql", "parameters"), TYPED)
def test_adbc_binds_typed_parameters(adbc_analyst: adbc.Connection,
                                     analyst_oracle: duckdb.DuckDBPyConnection, sql: str,
                                     parameters: tuple[object, ...]) -> None:
    with adbc_analyst.cursor() as cursor:
        cursor.execute(sql, parameters)
        table = cursor.fetch_arrow_table()
    assert table.num_rows > 0
    assert_like_oracle(table, analyst_oracle, sql, parameters)


def test_text_is_bound_as_a_value_never_spliced(adbc_analyst: adbc.Connection) -> None:
    with adbc_analyst.cursor() as cursor:
        cursor.execute("SELECT id FROM hr.departments WHERE region = ?", ("EU' OR '1'='1",))
        assert cursor.fetchall() == []


def test_adbc_reports_the_parameter_types_from_their_use(adbc_analyst: adbc.Connection) -> None:
    sql = ("SELECT e.id FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id "
           "WHERE e.id = ? AND e.hire_date > ? AND o.amount < ? AND o.ts BETWEEN ? AND ? "
           "AND e.region IN (?, 'EU') AND e.name LIKE ? AND e.is_active = ? "
           "AND upper(e.name) = upper(?) LIMIT ? OFFSET ?")
    with adbc_analyst.cursor() as cursor:
        schema = cursor.adbc_prepare(sql)
    assert schema is not None
    assert schema.names == [str(i) for i in range(11)]
    assert schema.types == [
        pa.int64(), pa.date32(), pa.decimal128(12, 2), pa.timestamp("us", tz="UTC"),
        pa.timestamp("us", tz="UTC"), pa.string(), pa.string(), pa.bool_(),
        pa.string(),  # a function's argument: nothing is known, so text
        pa.int64(), pa.int64(),
    ]


def test_numbered_parameters_take_their_first_typed_use(adbc_analyst: adbc.Connection) -> None:
    with adbc_analyst.cursor() as cursor:
        schema = cursor.adbc_prepare(
            "SELECT id FROM hr.employees WHERE $2 < hire_date AND (id = $1 OR manager_id = $1)")
    assert schema is not None
    assert schema.types == [pa.int64(), pa.date32()]


def test_a_multi_row_bind_returns_each_row_set_s_rows_in_order(
    adbc_analyst: adbc.Connection, analyst_oracle: duckdb.DuckDBPyConnection
) -> None:
    sql = "SELECT id, name FROM hr.departments WHERE id BETWEEN ? AND ? ORDER BY id"
    low, high = [4, 1, 2], [5, 1, 3]
    batch = pa.record_batch([pa.array(low), pa.array(high)], names=["0", "1"])
    with adbc_analyst.cursor() as cursor:
        cursor.execute(sql, batch)
        table = cursor.fetch_arrow_table()
    expected = [analyst_oracle.execute(sql, [a, b]).to_arrow_table()
                for a, b in zip(low, high, strict=True)]
    assert table.to_pylist() == pa.concat_tables(expected).to_pylist()
    assert table.column("id").to_pylist() == [4, 5, 1, 2, 3]


def test_executemany_is_an_update_and_refused_as_read_only(
    adbc_analyst: adbc.Connection,
) -> None:
    # DB-API executemany yields no result set; ADBC sends DoPut(CommandPreparedStatementUpdate).
    with adbc_analyst.cursor() as cursor, pytest.raises(adbc.ProgrammingError,
                                                        match="only runs read-only queries"):
        cursor.executemany("SELECT id FROM hr.departments WHERE id = ?", [(1,), (2,)])


# ---- raw pyarrow.flight: the calls JDBC makes, typed Arrow parameter columns ----------------

def _create(session: Session, sql: str) -> pb.ActionCreatePreparedStatementResult:
    [body] = session.action("CreatePreparedStatement",
                            pack(pb.ActionCreatePreparedStatementRequest(query=sql)))
    return unpack(body, pb.ActionCreatePreparedStatementResult())  # type: ignore[no-any-return]


def _command(created: pb.ActionCreatePreparedStatementResult
             ) -> pb.CommandPreparedStatementQuery:
    return pb.CommandPreparedStatementQuery(
        prepared_statement_handle=created.prepared_statement_handle)


def _bind(session: Session, handle: bytes, table: pa.Table) -> None:
    command = pb.CommandPreparedStatementQuery(prepared_statement_handle=handle)
    writer, metadata = session.client.do_put(descriptor(command), table.schema, session.options)
    writer.write_table(table)
    writer.done_writing()
    answer = metadata.read()
    writer.close()
    assert answer is not None
    result = pb.DoPutPreparedStatementResult.FromString(answer.to_pybytes())
    assert result.prepared_statement_handle == handle


def _schema(data: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(data))


def test_jdbc_style_typed_bind_of_several_rows(analyst: Session,
                                               analyst_oracle: duckdb.DuckDBPyConnection) -> None:
    sql = ("SELECT order_id FROM sales.orders WHERE amount >= ? AND ts < ? AND customer_id <> ? "
           "ORDER BY order_id LIMIT ?")
    created = _create(analyst, sql)
    parameters = _schema(created.parameter_schema)
    dataset = _schema(created.dataset_schema)
    assert parameters.types == [pa.decimal128(12, 2), pa.timestamp("us", tz="UTC"), pa.int64(),
                                pa.int64()]
    rows = [(decimal.Decimal("500.00"), dt.datetime(2024, 6, 1, tzinfo=UTC), 3, 2),
            (decimal.Decimal("10.50"), dt.datetime(2025, 1, 1, tzinfo=UTC), 1, 3)]
    table = pa.Table.from_pylist([dict(zip(parameters.names, r, strict=True)) for r in rows],
                                 schema=parameters)
    _bind(analyst, created.prepared_statement_handle, table)
    info, result = analyst.fetch(_command(created))
    assert info.schema.equals(dataset)
    assert result.schema.equals(dataset)
    expected = [analyst_oracle.execute(sql, list(r)).fetchall() for r in rows]
    assert [(v,) for v in result.column("order_id").to_pylist()] == expected[0] + expected[1]


@pytest.mark.parametrize(("sql", "column", "value", "expected"), [
    ("SELECT count(*) AS n FROM hr.departments WHERE id = ?", pa.array([3], pa.int32()), 3, 1),
    ("SELECT count(*) AS n FROM hr.departments WHERE id = ?", pa.array([3.0]), 3.0, 1),
    ("SELECT count(*) AS n FROM hr.employees WHERE hire_date < ?",
     pa.array([dt.date(2019, 1, 1)], pa.date32()), dt.date(2019, 1, 1), None),
    ("SELECT count(*) AS n FROM sales.orders WHERE ts >= ?",
     pa.array([dt.datetime(2025, 6, 1)], pa.timestamp("ns")), dt.datetime(2025, 6, 1), None),
    ("SELECT count(*) AS n FROM hr.employees WHERE is_active = ?", pa.array([False]), False,
     23),
    ("SELECT count(*) AS n FROM hr.departments WHERE octet_length(CAST(? AS BLOB)) = id",
     pa.array([b"\x00'\x01"]), b"\x00'\x01", 1),
    ("SELECT count(*) AS n FROM hr.departments WHERE id = ?", pa.array([None], pa.int64()),
     None, 0),
    ("SELECT count(*) AS n FROM hr.departments WHERE id = ?", pa.nulls(1), None, 0),
])
def test_each_arrow_type_is_bound_as_a_value_of_its_type(
    analyst: Session, analyst_oracle: duckdb.DuckDBPyConnection, sql: str, column: pa.Array,
    value: object, expected: int | None,
) -> None:
    created = _create(analyst, sql)
    _bind(analyst, created.prepared_statement_handle,
          pa.table([column], names=["0"]))
    _, table = analyst.fetch(_command(created))
    want = analyst_oracle.execute(sql, [value]).fetchone()
    assert want is not None
    assert table.column("n").to_pylist() == [want[0]]
    if expected is not None:
        assert want[0] == expected


def test_a_bind_of_no_rows_runs_nothing(analyst: Session) -> None:
    # (ADBC sends no DoPut for an empty batch, so the statement then runs unbound.)
    created = _create(analyst, "SELECT id, name FROM hr.departments WHERE id = ?")
    _bind(analyst, created.prepared_statement_handle,
          pa.table([pa.array([], pa.int64())], names=["0"]))
    info, table = analyst.fetch(_command(created))
    assert table.num_rows == 0
    assert table.schema.equals(info.schema)
    assert table.schema.names == ["id", "name"]


def test_timestamps_finer_than_microseconds_are_refused_clearly(analyst: Session) -> None:
    created = _create(analyst, "SELECT count(*) AS n FROM sales.orders WHERE ts >= ?")
    column = pa.array([1_700_000_000_000_000_001], pa.timestamp("ns"))
    with pytest.raises(pa.ArrowInvalid, match="bind timestamps to the microsecond"):
        _bind(analyst, created.prepared_statement_handle, pa.table([column], names=["0"]))


def test_a_parameter_only_an_overloaded_function_uses_must_be_cast(analyst: Session) -> None:
    with pytest.raises(pa.ArrowInvalid, match=(
            r"if it is a parameter, cast it to the type you mean, e\.g\. "
            r"octet_length\(CAST\(\? AS BLOB\)\)")):
        _create(analyst, "SELECT count(*) AS n FROM hr.departments WHERE octet_length(?) = id")


def test_a_bind_is_bounded(analyst: Session) -> None:
    created = _create(analyst, "SELECT id FROM hr.departments WHERE id = ?")
    rows = pa.table([pa.array(range(10_001))], names=["0"])
    with pytest.raises(pa.ArrowInvalid, match="bind at most 10000 rows per execution"):
        _bind(analyst, created.prepared_statement_handle, rows)


def test_a_bind_with_the_wrong_number_of_columns_is_refused(analyst: Session) -> None:
    created = _create(analyst, "SELECT id FROM hr.departments WHERE id BETWEEN ? AND ?")
    with pytest.raises(pa.ArrowInvalid, match=r"has 2 parameter\(s\) but 1 column\(s\)"):
        _bind(analyst, created.prepared_statement_handle,
              pa.table([pa.array([1])], names=["0"]))


def test_handles_of_another_principal_are_not_found(analyst: Session, admin: Session) -> None:
    created = _create(analyst, "SELECT id FROM hr.departments WHERE id = ?")
    handle = created.prepared_statement_handle
    parameters = pa.table([pa.array([2])], names=["0"])
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        _bind(admin, handle, parameters)
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        admin.action("ClosePreparedStatement", pack(pb.ActionClosePreparedStatementRequest(
            prepared_statement_handle=handle)))
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        _bind(admin, b"0" * 32, parameters)  # exactly what an unknown handle gets
    # Still the owner's, untouched by the other caller's attempts.
    _bind(analyst, handle, parameters)
    _, table = analyst.fetch(_command(created))
    assert table.column("id").to_pylist() == [2]
    analyst.action("ClosePreparedStatement", pack(pb.ActionClosePreparedStatementRequest(
        prepared_statement_handle=handle)))
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        analyst.info(_command(created))


@pytest.fixture
def short_lived(service: QueryService) -> Iterator[Session]:
    """A server whose prepared statements expire one second after their last use."""
    config = ServerConfig(prepared_statement_ttl_seconds=1)
    server = MeshgateFlightServer(service, "grpc://127.0.0.1:0", config)
    session = Session(f"grpc://127.0.0.1:{server.port}", "analyst", "analyst")
    try:
        yield session
    finally:
        session.close()
        server.shutdown()


def test_an_idle_prepared_statement_expires(short_lived: Session) -> None:
    created = _create(short_lived, "SELECT id FROM hr.departments WHERE id = ?")
    _bind(short_lived, created.prepared_statement_handle, pa.table([pa.array([1])], names=["0"]))
    time.sleep(0.6)
    short_lived.fetch(_command(created))  # a use keeps it open
    time.sleep(0.6)
    assert short_lived.fetch(_command(created))[1].num_rows == 1
    time.sleep(1.5)
    with pytest.raises(pa.ArrowKeyError, match=(
            "unknown or expired statement handle; prepare or run the query again")):
        short_lived.info(_command(created))


def test_the_dataset_schema_comes_with_every_prepared_query(analyst: Session) -> None:
    for sql in ("SELECT id, name FROM hr.departments WHERE id = ?",
                "SELECT count(*) AS n FROM sales.orders",
                "DESCRIBE hr.employees", "SHOW TABLES"):
        created = _create(analyst, sql)
        dataset = _schema(created.dataset_schema)
        assert len(dataset) > 0, sql
        assert created.is_update is False
        if not _schema(created.parameter_schema).names:
            assert analyst.info(_command(created)).schema.equals(dataset)


def test_unknown_handle_and_principal_message_are_one(analyst: Session,
                                                      admin: Session) -> None:
    created = _create(analyst, "SELECT 1 AS one")
    with pytest.raises(pa.ArrowKeyError) as other:
        admin.info(_command(created))
    with pytest.raises(pa.ArrowKeyError) as unknown:
        admin.info(pb.CommandPreparedStatementQuery(prepared_statement_handle=b"f" * 32))
    assert str(other.value) == str(unknown.value)
