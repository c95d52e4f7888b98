"""Queries and prepared statements as pyarrow.flight and ADBC run them.

The rule every client relies on: the FlightInfo schema equals the streamed schema exactly.
Answers are compared, names, types and rows, with `analyst_oracle` (tests/security/oracle.py):
DuckDB over the demo generator's rows with analyst's policies applied in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import adbc_driver_flightsql.dbapi as adbc
import adbc_driver_manager
import duckdb
import grpc  # type: ignore[import-untyped]
import pyarrow as pa
import pytest
from google.protobuf import any_pb2
from pyarrow import flight

from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as pb
from tests.server.flightsql_clients import Endpoint, Session, descriptor, pack, unpack


def assert_like_oracle(
    table: pa.Table,
    oracle: duckdb.DuckDBPyConnection,
    sql: str,
    parameters: tuple[object, ...] = (),
) -> None:
    """Same column names, types and rows as the oracle's answer (in order if `sql` orders)."""
    want = oracle.execute(sql, list(parameters)).to_arrow_table()
    assert table.schema.names == want.schema.names
    assert table.schema.types == want.schema.types
    got_rows, want_rows = table.to_pylist(), want.to_pylist()
    if " ORDER BY " not in sql.upper():
        got_rows, want_rows = sorted(got_rows, key=repr), sorted(want_rows, key=repr)
    assert got_rows == want_rows


QUERIES = [
    "SELECT * FROM sales.orders",
    "SELECT order_id, amount, ts FROM sales.orders WHERE amount > 100 ORDER BY order_id LIMIT 7",
    "SELECT region, count(*) AS n, sum(salary) AS total FROM hr.employees GROUP BY region",
    "SELECT o.order_id, e.name FROM sales.orders o JOIN hr.employees e ON o.employee_id = e.id",
    "SELECT * FROM hr.employees WHERE 1 = 0",
    "SELECT 1 AS one, 'x' AS letter, NULL AS nothing",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_flight_info_schema_equals_streamed_schema(
    analyst: Session, analyst_oracle: duckdb.DuckDBPyConnection, sql: str
) -> None:
    info, table = analyst.fetch(pb.CommandStatementQuery(query=sql))
    assert table.schema.equals(info.schema, check_metadata=True)
    assert_like_oracle(table, analyst_oracle, sql)
    assert len(info.endpoints) == 1
    assert info.endpoints[0].locations == []
    ticket = unpack(info.endpoints[0].ticket.ticket, pb.TicketStatementQuery())
    assert len(ticket.statement_handle) >= 32


def test_get_schema_matches_flight_info(analyst: Session) -> None:
    command = pb.CommandStatementQuery(query=QUERIES[2])
    schema = analyst.client.get_schema(descriptor(command), analyst.options).schema
    assert schema.equals(analyst.info(command).schema)


def test_rows_match_the_oracle(analyst: Session, analyst_oracle: duckdb.DuckDBPyConnection
                               ) -> None:
    sql = "SELECT order_id, employee_id, amount FROM sales.orders ORDER BY order_id"
    _, table = analyst.fetch(pb.CommandStatementQuery(query=sql))
    assert table.num_rows > 0
    assert_like_oracle(table, analyst_oracle, sql)


@pytest.fixture
def adbc_analyst(endpoint: Endpoint) -> Iterator[adbc.Connection]:
    with endpoint.adbc("analyst") as conn:
        yield conn


@pytest.mark.parametrize("sql", QUERIES)
def test_adbc_runs_every_query(adbc_analyst: adbc.Connection,
                               analyst_oracle: duckdb.DuckDBPyConnection, sql: str) -> None:
    # ADBC checks each endpoint's schema against the FlightInfo schema itself.
    with adbc_analyst.cursor() as cursor:
        cursor.execute(sql)
        table = cursor.fetch_arrow_table()
    assert_like_oracle(table, analyst_oracle, sql)


def test_adbc_parameters_are_bound_positionally(
    adbc_analyst: adbc.Connection, analyst_oracle: duckdb.DuckDBPyConnection
) -> None:
    between = "SELECT id, region FROM hr.departments WHERE id BETWEEN ? AND ? ORDER BY id"
    region = "SELECT id FROM hr.departments WHERE region = ? ORDER BY id LIMIT 2"
    with adbc_analyst.cursor() as cursor:
        cursor.execute(between, parameters=(3, 5))
        table = cursor.fetch_arrow_table()
        assert table.column("id").to_pylist() == [3, 4, 5]
        assert_like_oracle(table, analyst_oracle, between, (3, 5))
        cursor.execute(region, parameters=("EU",))
        table = cursor.fetch_arrow_table()
        assert table.num_rows == 2
        assert_like_oracle(table, analyst_oracle, region, ("EU",))


def test_adbc_partial_fetch_then_next_query(
    adbc_analyst: adbc.Connection, analyst_oracle: duckdb.DuckDBPyConnection
) -> None:
    with adbc_analyst.cursor() as cursor:
        cursor.execute("SELECT * FROM sales.order_items")
        assert cursor.fetchone() is not None
        cursor.execute("SELECT count(*) AS n FROM sales.orders")
        assert_like_oracle(cursor.fetch_arrow_table(), analyst_oracle,
                           "SELECT count(*) AS n FROM sales.orders")


def _create(session: Session, sql: str) -> pb.ActionCreatePreparedStatementResult:
    [body] = session.action("CreatePreparedStatement",
                            pack(pb.ActionCreatePreparedStatementRequest(query=sql)))
    return unpack(body, pb.ActionCreatePreparedStatementResult())  # type: ignore[no-any-return]


def _bind(session: Session, handle: bytes, batch: pa.RecordBatch) -> bytes:
    command = pb.CommandPreparedStatementQuery(prepared_statement_handle=handle)
    writer, metadata = session.client.do_put(descriptor(command), batch.schema, session.options)
    writer.write_batch(batch)
    writer.done_writing()
    answer = metadata.read()
    writer.close()
    assert answer is not None
    return pb.DoPutPreparedStatementResult.FromString(
        answer.to_pybytes()).prepared_statement_handle


def _union_parameter(value: object) -> pa.Array:
    """One parameter as flightsql-dbapi sends it: dense_union<int64, double, string, ...>."""
    children = [pa.array([value] if isinstance(value, int) else [], pa.int64()),
                pa.array([value] if isinstance(value, str) else [], pa.string())]
    code = 0 if isinstance(value, int) else 1
    return pa.UnionArray.from_dense(pa.array([code], pa.int8()), pa.array([0], pa.int32()),
                                    children, ["int64", "string"])


def test_prepared_statement_lifecycle(analyst: Session,
                                     analyst_oracle: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT id, name FROM hr.departments WHERE id <= ? AND region <> ? ORDER BY id"
    created = _create(analyst, sql)
    dataset = pa.ipc.read_schema(pa.py_buffer(created.dataset_schema))
    parameters = pa.ipc.read_schema(pa.py_buffer(created.parameter_schema))
    assert dataset.names == ["id", "name"]
    assert len(parameters) == 2
    assert created.HasField("is_update")
    assert created.is_update is False

    batch = pa.RecordBatch.from_arrays([_union_parameter(10), _union_parameter("nowhere")],
                                       names=["0", "1"])
    assert _bind(analyst, created.prepared_statement_handle, batch) == \
        created.prepared_statement_handle

    command = pb.CommandPreparedStatementQuery(
        prepared_statement_handle=created.prepared_statement_handle)
    info, table = analyst.fetch(command)
    assert info.schema.equals(dataset)
    assert table.schema.equals(dataset)
    assert table.column("id").to_pylist() == list(range(1, 11))
    assert_like_oracle(table, analyst_oracle, sql, (10, "nowhere"))

    analyst.action("ClosePreparedStatement", pack(pb.ActionClosePreparedStatementRequest(
        prepared_statement_handle=created.prepared_statement_handle)))
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        analyst.info(command)


def test_handles_belong_to_their_principal(analyst: Session, admin: Session) -> None:
    created = _create(analyst, "SELECT 1 AS one")
    command = pb.CommandPreparedStatementQuery(
        prepared_statement_handle=created.prepared_statement_handle)
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        admin.info(command)
    info = analyst.info(pb.CommandStatementQuery(query="SELECT 2 AS two"))
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        admin.client.do_get(info.endpoints[0].ticket, admin.options).read_all()
    assert analyst.client.do_get(info.endpoints[0].ticket, analyst.options).read_all().num_rows == 1


@pytest.mark.parametrize("command", [
    pb.CommandStatementUpdate(query="DELETE FROM sales.orders"),
    pb.CommandPreparedStatementUpdate(prepared_statement_handle=b"x"),
])
def test_updates_are_refused_as_read_only(analyst: Session, command: pb.CommandStatementUpdate
                                          ) -> None:
    schema = pa.schema([])
    writer, _ = analyst.client.do_put(descriptor(command), schema, analyst.options)
    with pytest.raises(pa.ArrowInvalid, match="updates and bulk ingestion are not accepted: "
                                              "meshgate only runs read-only queries"):
        writer.close()


def test_adbc_unprepared_update_is_read_only(adbc_analyst: adbc.Connection) -> None:
    # The Go client sends a DoPut without any schema message here (flightsql-clients.md P8).
    statement = adbc_driver_manager.AdbcStatement(adbc_analyst.adbc_connection)
    statement.set_sql_query("UPDATE sales.orders SET amount = 0")
    with pytest.raises(adbc_driver_manager.Error, match="read-only"):
        statement.execute_update()
    statement.close()


def test_cancel_flight_info_drops_the_ticket(analyst: Session) -> None:
    info = analyst.info(pb.CommandStatementQuery(query="SELECT * FROM sales.orders"))
    request = flight_pb2.CancelFlightInfoRequest(
        info=flight_pb2.FlightInfo.FromString(info.serialize()))
    [body] = analyst.action("CancelFlightInfo", request.SerializeToString())
    result = flight_pb2.CancelFlightInfoResult.FromString(body)
    assert result.status == flight_pb2.CANCEL_STATUS_CANCELLED
    with pytest.raises(pa.ArrowKeyError, match="unknown or expired statement handle"):
        analyst.client.do_get(info.endpoints[0].ticket, analyst.options).read_all()


def test_reader_closed_early_leaves_the_server_usable(
    analyst: Session, analyst_oracle: duckdb.DuckDBPyConnection
) -> None:
    info = analyst.info(pb.CommandStatementQuery(query="SELECT * FROM sales.order_items"))
    reader = analyst.client.do_get(info.endpoints[0].ticket, analyst.options)
    first = reader.read_chunk()
    assert first.data.num_rows > 0
    reader.cancel()
    count = "SELECT count(*) AS n FROM sales.order_items"
    _, table = analyst.fetch(pb.CommandStatementQuery(query=count))
    assert_like_oracle(table, analyst_oracle, count)


def test_unknown_action_is_unimplemented(analyst: Session) -> None:
    with pytest.raises(pa.ArrowNotImplementedError, match="the action 'Frobnicate'"):
        analyst.action("Frobnicate", b"")


def _any(message_name: str, value: bytes = b"") -> bytes:
    """A Flight SQL message meshgate's compiled subset of FlightSql.proto leaves out, as a client
    sends it: wrapped in Any (its fields do not matter: it is refused by its type)."""
    type_url = f"type.googleapis.com/arrow.flight.protocol.sql.{message_name}"
    return any_pb2.Any(type_url=type_url, value=value).SerializeToString()


@pytest.mark.parametrize("action", [
    "BeginTransaction", "BeginSavepoint", "EndTransaction", "EndSavepoint",
])
def test_transactions_are_refused_saying_there_are_none(analyst: Session, action: str) -> None:
    body = _any(f"Action{action}Request")
    with pytest.raises(pa.ArrowNotImplementedError,
                       match=r"meshgate has no transactions: .* leave autocommit on"):
        analyst.action(action, body)


def test_substrait_plans_are_refused_asking_for_sql(analyst: Session) -> None:
    command = flight.FlightDescriptor.for_command(_any("CommandStatementSubstraitPlan", b"\n\x01x"))
    with pytest.raises(pa.ArrowNotImplementedError, match="does not accept Substrait plans; "
                                                          "send the query as SQL"):
        analyst.client.get_flight_info(command, analyst.options)
    with pytest.raises(pa.ArrowNotImplementedError, match="does not accept Substrait plans"):
        analyst.action("CreatePreparedSubstraitPlan",
                       _any("ActionCreatePreparedSubstraitPlanRequest"))


def test_adbc_bulk_ingest_is_refused_as_read_only(adbc_analyst: adbc.Connection) -> None:
    with adbc_analyst.cursor() as cursor, pytest.raises(adbc_driver_manager.Error,
                                                         match="read-only"):
        cursor.adbc_ingest("new_orders", pa.table({"id": [1, 2]}), mode="create")


def test_adbc_cannot_open_a_transaction(adbc_analyst: adbc.Connection) -> None:
    with pytest.raises(adbc_driver_manager.Error):
        adbc_analyst.adbc_connection.set_autocommit(False)
    with adbc_analyst.cursor() as cursor:  # the connection still serves queries
        cursor.execute("SELECT 1 AS one")
        assert cursor.fetchone() == (1,)


def test_list_actions(analyst: Session) -> None:
    names = {a.type for a in analyst.client.list_actions(analyst.options)}
    assert {"CreatePreparedStatement", "ClosePreparedStatement", "SetSessionOptions",
            "GetSessionOptions", "CloseSession", "CancelFlightInfo"} <= names


def test_path_descriptors_are_rejected(analyst: Session) -> None:
    with pytest.raises(pa.ArrowInvalid, match="command descriptors"):
        analyst.client.get_flight_info(flight.FlightDescriptor.for_path("sales", "orders"),
                                       analyst.options)


def test_jdbc_style_prepared_query(analyst: Session,
                                  analyst_oracle: duckdb.DuckDBPyConnection) -> None:
    """JDBC prepares everything; an empty dataset_schema would make it run a SELECT as update."""
    sql = "SELECT * FROM sales.orders"
    created = _create(analyst, sql)
    dataset = pa.ipc.read_schema(pa.py_buffer(created.dataset_schema))
    assert dataset.names[:2] == ["order_id", "employee_id"]
    assert len(pa.ipc.read_schema(pa.py_buffer(created.parameter_schema))) == 0
    command = pb.CommandPreparedStatementQuery(
        prepared_statement_handle=created.prepared_statement_handle)
    info, table = analyst.fetch(command)
    assert info.schema.equals(dataset)
    assert table.schema.equals(dataset)
    assert table.num_rows > 10_000
    assert_like_oracle(table, analyst_oracle, sql)
    _, again = analyst.fetch(command)  # a prepared statement runs as often as asked
    assert again.equals(table)
    analyst.action("ClosePreparedStatement", pack(pb.ActionClosePreparedStatementRequest(
        prepared_statement_handle=created.prepared_statement_handle)))


def test_concurrent_queries_from_several_clients(
    endpoint: Endpoint, analyst_oracle: duckdb.DuckDBPyConnection
) -> None:
    sql = "SELECT employee_id, sum(amount) AS total FROM sales.orders GROUP BY employee_id"

    def run(_: int) -> pa.Table:
        session = endpoint.session("analyst")
        try:
            return session.fetch(pb.CommandStatementQuery(query=sql))[1]
        finally:
            session.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        tables = list(pool.map(run, range(16)))
    for table in tables:
        assert_like_oracle(table, analyst_oracle, sql)


def test_cancel_flight_info_stops_a_running_stream(analyst: Session,
                                                  endpoint: Endpoint) -> None:
    info = analyst.info(pb.CommandStatementQuery(
        query="SELECT a.*, b.order_id AS other FROM sales.order_items a CROSS JOIN "
              "(SELECT order_id FROM sales.orders LIMIT 50) b"))
    ticket = info.endpoints[0].ticket.ticket
    # A raw gRPC reader: pyarrow's client turns any CANCELLED status it reads into a simulated
    # SIGINT (SignalStopHandler.__exit__), i.e. a KeyboardInterrupt in the main thread.
    with endpoint.grpc_channel() as channel:
        do_get = channel.unary_stream("/arrow.flight.protocol.FlightService/DoGet",
                                      request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)
        bearer = dict(analyst.headers)["authorization"]
        stream = do_get(flight.Ticket(ticket).serialize(),
                        metadata=[("authorization", bearer)])
        next(stream)  # the schema message
        next(stream)  # the first batch
        request = flight_pb2.CancelFlightInfoRequest(
            info=flight_pb2.FlightInfo.FromString(info.serialize()))
        [body] = analyst.action("CancelFlightInfo", request.SerializeToString())
        assert flight_pb2.CancelFlightInfoResult.FromString(body).status == \
            flight_pb2.CANCEL_STATUS_CANCELLED
        with pytest.raises(grpc.RpcError) as caught:
            for _ in stream:
                pass
    assert caught.value.code() == grpc.StatusCode.CANCELLED
    assert "the query was cancelled" in caught.value.details()


def test_adbc_execute_schema_and_partitions(
    adbc_analyst: adbc.Connection, analyst_oracle: duckdb.DuckDBPyConnection
) -> None:
    sql = "SELECT order_id, amount FROM sales.orders WHERE order_id <= 5"
    with adbc_analyst.cursor() as cursor:
        schema = cursor.adbc_execute_schema(sql)
        partitions, partition_schema = cursor.adbc_execute_partitions(sql)
        assert schema.equals(partition_schema)
        assert len(partitions) == 1
        cursor.adbc_read_partition(partitions[0])
        table = cursor.fetch_arrow_table()
    assert table.schema.equals(schema)
    assert table.column("order_id").to_pylist() == [1, 2, 3, 4, 5]
    assert_like_oracle(table, analyst_oracle, sql)
