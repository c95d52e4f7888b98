"""What a client sees when something fails: the right gRPC code and no Python traceback.

Measured over the wire with a raw grpcio channel (the gRPC status itself) and through ADBC
(the message a user reads). pyarrow would append `Detail: Python exception: Traceback ...` for
INVALID_ARGUMENT/NOT_FOUND; meshgate.server.errors avoids it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import adbc_driver_flightsql.dbapi as adbc
import grpc  # type: ignore[import-untyped]
import pyarrow as pa
import pytest
from google.protobuf import any_pb2
from pyarrow import flight

from meshgate.audit import error_id_of
from meshgate.errors import QueryValueError, SourceUnavailable
from meshgate.server.errors import InvalidArgument, NotFound, client_error
from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as pb
from tests.server.flightsql_clients import adbc_refusal, basic, pack

GET_FLIGHT_INFO = "/arrow.flight.protocol.FlightService/GetFlightInfo"


@pytest.fixture
def channel(server: flight.FlightServerBase) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


def _status(channel: grpc.Channel, sql: str, user: str = "analyst") -> grpc.RpcError:
    call = channel.unary_unary(GET_FLIGHT_INFO, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    command = pack(pb.CommandStatementQuery(query=sql))
    with pytest.raises(grpc.RpcError) as caught:
        call(flight.FlightDescriptor.for_command(command).serialize(),
             metadata=[("authorization", basic(user, user))])
    return caught.value


@pytest.mark.parametrize(
    ("sql", "code", "text"),
    [
        ("SELEC 1", grpc.StatusCode.INVALID_ARGUMENT, "syntax error"),
        ("SELECT * FROM sales.orders WHERE (", grpc.StatusCode.INVALID_ARGUMENT, "column"),
        ("DELETE FROM sales.orders", grpc.StatusCode.INVALID_ARGUMENT, "read-only"),
        ("DROP TABLE sales.orders", grpc.StatusCode.INVALID_ARGUMENT, "read-only"),
        ("SELECT 1; SELECT 2", grpc.StatusCode.INVALID_ARGUMENT, "one statement at a time"),
        ("SELECT * FROM finance.budgets", grpc.StatusCode.NOT_FOUND, "does not exist"),
        ("SELECT * FROM sales.nope", grpc.StatusCode.NOT_FOUND, "does not exist"),
        ("SELECT CAST('1.2.3.4' AS INET)", grpc.StatusCode.INVALID_ARGUMENT,
         "this query uses a type or function of DuckDB's inet extension, which meshgate does "
         "not load; write it with DuckDB's built-in types and functions"),
        # Found by tests/fuzz: both answered INTERNAL.
        ("SELECT max() FROM sales.orders", grpc.StatusCode.INVALID_ARGUMENT,
         "the merge engine cannot bind this query: check the functions it calls"),
        ("SELECT (SELECT 1) FROM sales.orders ORDER BY 1", grpc.StatusCode.INVALID_ARGUMENT,
         "give the item an alias and refer to it by that name"),
        ("SELECT 2evenue FROM sales.orders", grpc.StatusCode.INVALID_ARGUMENT,
         "check for numbers run into names (such as 2evenue)"),
    ],
    ids=["syntax", "syntax-position", "write", "drop", "two-statements", "denied-product",
         "unknown-product", "extension-type", "unbindable-call", "position-of-subquery",
         "number-run-into-name"],
)
def test_grpc_status_has_the_code_and_no_traceback(channel: grpc.Channel, sql: str,
                                                    code: grpc.StatusCode, text: str) -> None:
    error = _status(channel, sql)
    assert error.code() == code
    assert text in error.details()
    assert "Traceback" not in error.details()
    assert ".py" not in error.details()


def test_denied_and_missing_products_are_indistinguishable(channel: grpc.Channel) -> None:
    # finance.budgets exists, but the analyst is not granted finance
    denied = _status(channel, "SELECT * FROM finance.budgets").details()
    missing = _status(channel, "SELECT * FROM finance.nothing_here").details()
    assert denied.replace("budgets", "X") == missing.replace("nothing_here", "X")


def test_adbc_user_reads_a_clean_message(uri: str) -> None:
    with adbc.connect(uri, db_kwargs={"username": "analyst", "password": "analyst"},
                      autocommit=True) as conn, conn.cursor() as cursor:
        with pytest.raises(adbc.ProgrammingError) as caught:
            cursor.execute("SELEC 1")
        message = str(caught.value)
        assert "INVALID_ARGUMENT" in message
        assert "syntax error" in message
        assert "Traceback" not in message
        with pytest.raises(adbc.Error) as denied:
            cursor.execute("SELECT * FROM finance.ledger")
        assert "NOT_FOUND" in str(denied.value)
        assert "Traceback" not in str(denied.value)


def test_unauthenticated_has_no_traceback(channel: grpc.Channel) -> None:
    error = _status(channel, "SELECT 1", user="intruder")
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Traceback" not in error.details()


def test_unexpected_errors_become_internal_with_an_id_that_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="meshgate.server.errors"):
        error = client_error(ZeroDivisionError("secret detail"))
    assert isinstance(error, flight.FlightInternalError)
    assert "secret detail" not in str(error)
    error_id = str(error).split()[2].rstrip(";")
    assert error_id in caplog.text
    assert "ZeroDivisionError" in caplog.text


def test_meshgate_statuses_map_to_flight_errors() -> None:
    assert isinstance(client_error(SourceUnavailable("hr is down")), flight.FlightUnavailableError)


def test_an_error_s_detail_reaches_the_log_under_an_id_never_the_client(
        caplog: pytest.LogCaptureFixture) -> None:
    raised = QueryValueError("a cast failed; check the casts", detail="'Vertex' in cust_name")
    with caplog.at_level(logging.WARNING, logger="meshgate.server.errors"):
        error = client_error(raised)
    assert isinstance(error, InvalidArgument)
    assert str(error).startswith("a cast failed; check the casts (error id ")
    assert "Vertex" not in str(error)
    assert "cust_name" not in str(error)
    error_id = str(error).split("error id ")[1].split(";")[0]
    assert error_id == error_id_of(raised)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f"INVALID_ARGUMENT (error id {error_id}): a cast failed; check the "
         "casts [detail: 'Vertex' in cust_name]")
    ]  # fmt: skip
    # the operator's text, as logs and the CLI print it
    assert str(raised) == "a cast failed; check the casts [detail: 'Vertex' in cust_name]"
    assert client_error(QueryValueError("no detail")).args == ("no detail",)


class _Raising(flight.FlightServerBase):  # type: ignore[misc]
    """A bare pyarrow server raising what the action names: the measurement behind errors.py."""

    RAISE: dict[str, Callable[[], Exception]] = {
        "ArrowInvalid": lambda: pa.ArrowInvalid("bad input"),
        "KeyError": lambda: KeyError("bad input"),
        "InvalidArgument": lambda: InvalidArgument("bad input"),
        "NotFound": lambda: NotFound("bad input"),
        "FlightUnavailableError": lambda: flight.FlightUnavailableError("bad input"),
    }

    def do_action(self, context: flight.ServerCallContext, action: flight.Action) -> None:
        raise self.RAISE[action.type]()


@pytest.mark.parametrize(("raised", "code", "traceback"), [
    ("ArrowInvalid", grpc.StatusCode.INVALID_ARGUMENT, True),
    ("KeyError", grpc.StatusCode.NOT_FOUND, True),
    ("InvalidArgument", grpc.StatusCode.INVALID_ARGUMENT, False),
    ("NotFound", grpc.StatusCode.NOT_FOUND, False),
    ("FlightUnavailableError", grpc.StatusCode.UNAVAILABLE, False),
])
def test_what_pyarrow_puts_in_the_grpc_status(raised: str, code: grpc.StatusCode,
                                              traceback: bool) -> None:
    with _Raising("grpc://127.0.0.1:0") as server, \
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_stream("/arrow.flight.protocol.FlightService/DoAction",
                                    request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        action = flight.Action(raised, b"").serialize()
        with pytest.raises(grpc.RpcError) as caught:
            list(call(action))
    assert caught.value.code() == code
    assert caught.value.details().startswith("bad input") or raised == "KeyError"
    assert ("Traceback (most recent call last)" in caught.value.details()) == traceback


def test_bad_input_leaves_the_server_serving(uri: str) -> None:
    bad = {
        "SELEC 1": adbc_refusal("INVALID_ARGUMENT", "syntax error near 'SELEC'"),
        "DROP TABLE sales.orders": adbc_refusal("INVALID_ARGUMENT", "DROP statements are not"),
        "SELECT 1; SELECT 2": adbc_refusal("INVALID_ARGUMENT", "send one statement at a time"),
        "SELECT * FROM sales.nope": adbc_refusal("NOT_FOUND", "data product 'sales.nope' does"),
        "SELECT * FROM finance.budgets": adbc_refusal("NOT_FOUND", "data product 'finance.budg"),
    }
    with pytest.raises(adbc.Error, match="UNAUTHENTICATED"), adbc.connect(
        uri, db_kwargs={"username": "analyst", "password": "wrong"}
    ) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1")
    with adbc.connect(uri, db_kwargs={"username": "analyst", "password": "analyst"},
                      autocommit=True) as conn:
        for sql, refusal in bad.items():
            with conn.cursor() as cursor, pytest.raises(adbc.Error, match=refusal):
                cursor.execute(sql)
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sales.orders")  # no policy restricts it
            assert cursor.fetchone() == (20000,)


FLIGHT_SERVICE = "/arrow.flight.protocol.FlightService/"
CORRUPT = b"\x0a\xff"  # field 1, a length running past the end: no protobuf decodes it


def _refusal(call: Callable[..., Iterable[bytes]], request: object,
             user: str = "analyst") -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        list(call(request, metadata=[("authorization", basic(user, user))]))
    return caught.value


def _stream(channel: grpc.Channel, method: str) -> Callable[..., Iterable[bytes]]:
    call: Callable[..., Iterable[bytes]] = channel.unary_stream(
        FLIGHT_SERVICE + method, request_serializer=lambda b: b,
        response_deserializer=lambda b: b)
    return call


def test_list_flights_is_unimplemented_with_a_clean_message(channel: grpc.Channel) -> None:
    error = _refusal(_stream(channel, "ListFlights"), b"")
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.details().startswith("meshgate does not list flights; send a Flight SQL command")
    assert "Traceback" not in error.details()


def test_do_exchange_is_unimplemented_with_a_clean_message(channel: grpc.Channel) -> None:
    call = channel.stream_stream(FLIGHT_SERVICE + "DoExchange", request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
    descriptor = flight.FlightDescriptor.for_command(b"x").serialize()
    first = b"\x0a" + bytes([len(descriptor)]) + descriptor  # FlightData.flight_descriptor
    error = _refusal(call, iter([first]))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error.details().startswith("meshgate does not support DoExchange; run queries with")
    assert "Traceback" not in error.details()


@pytest.mark.parametrize(("action", "expected"), [
    ("SetSessionOptions", "arrow.flight.protocol.SetSessionOptionsRequest"),
    ("GetSessionOptions", "arrow.flight.protocol.GetSessionOptionsRequest"),
    ("CloseSession", "arrow.flight.protocol.CloseSessionRequest"),
    ("CancelFlightInfo", "arrow.flight.protocol.CancelFlightInfoRequest"),
])
def test_corrupt_action_bodies_are_invalid_argument(channel: grpc.Channel, action: str,
                                                    expected: str) -> None:
    body = flight.Action(action, CORRUPT).serialize()
    error = _refusal(_stream(channel, "DoAction"), body)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(
        f"the {action} action body must be a serialized {expected}")
    assert "Traceback" not in error.details()


def test_cancel_flight_info_with_a_corrupt_flight_info_is_invalid_argument(
        channel: grpc.Channel) -> None:
    request = flight_pb2.CancelFlightInfoRequest(info=flight_pb2.FlightInfo(schema=b"garbage"))
    body = flight.Action("CancelFlightInfo", request.SerializeToString()).serialize()
    error = _refusal(_stream(channel, "DoAction"), body)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(
        "the CancelFlightInfo request must carry the FlightInfo the query returned")


@pytest.mark.parametrize(("value", "why"), [
    (b"\x0a\x02\xc3\x28", "a query that is not UTF-8"),
    (CORRUPT, "a length running past the end"),
])
def test_a_command_that_does_not_decode_is_invalid_argument(channel: grpc.Channel,
                                                            value: bytes, why: str) -> None:
    """Found by tests/fuzz: the Any unwrapped, its value did not decode, INTERNAL came back."""
    command = any_pb2.Any(type_url="type.googleapis.com/arrow.flight.protocol.sql."
                          "CommandStatementQuery", value=value).SerializeToString()
    call = channel.unary_unary(GET_FLIGHT_INFO, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as caught:
        call(flight.FlightDescriptor.for_command(command).serialize(),
             metadata=[("authorization", basic("analyst", "analyst"))])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, why
    assert caught.value.details().startswith(
        "the CommandStatementQuery in this request cannot be decoded (corrupt protobuf, or text "
        "that is not UTF-8); send a valid serialized arrow.flight.protocol.sql."
        "CommandStatementQuery")
