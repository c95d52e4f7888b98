"""Errors are cleaned before a caller reads them: no row values, no source details (§4.6).

A value error in the merge (a failed cast) quotes the offending value in DuckDB's message;
the caller reads the message with every quoted value replaced, on one line. A source that is
unavailable is reported by an error id the operator finds in the log, never by its own message
(which names hosts, databases and users). Run against the plan-cache mesh: real DuckDB and
SQLite sources, the merge engine, and the Flight boundary's exception mapping.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import duckdb
import pytest
from pyarrow import flight

from meshgate.errors import (
    MeshgateError,
    ParameterError,
    ProductNotFound,
    QueryValueError,
    SourceUnavailable,
    Status,
)
from meshgate.execution.engine import _first_line
from meshgate.server.errors import InvalidArgument, NotFound, Unimplemented, client_error
from meshgate.service import QueryService
from meshgate.sqlconnector.failures import ValueFailure, ValueFault, duckdb_value_failure
from tests.guards import test_plan_cache

ERROR_ID = re.compile(r"error id ([0-9a-f]{12})")
CROSS_SOURCE = "FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id"
ADVICE = "; check the casts, the literals compared with columns and the arithmetic in the query"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    svc = QueryService.from_config(test_plan_cache.build(tmp_path_factory.mktemp("errors")))
    yield svc
    svc.close()


def _value_error(service: QueryService, sql: str) -> str:
    with pytest.raises(QueryValueError) as caught:
        service.query(sql, service.principal("viewer"))
    return caught.value.message


@pytest.mark.parametrize(
    ("expression", "kind"),
    [
        ("CAST(e.name AS INTEGER)", "a cast or comparison to INTEGER failed"),
        # DuckDB quotes the value without escaping its quotes: 'Ann's "x"'.
        ("CAST(e.name || '''s \"x\"' AS INTEGER)", "a cast or comparison to INTEGER failed"),
        ("CAST(e.region AS DATE)", "DATE"),
    ],
)
def test_merge_value_errors_quote_no_values(
    service: QueryService, expression: str, kind: str
) -> None:
    message = _value_error(service, f"SELECT {expression} AS v {CROSS_SOURCE}")
    assert message.startswith("a value in this query cannot be computed ("), message
    assert kind in message
    assert message.endswith(ADVICE), message
    for _, name, region in test_plan_cache.EMPLOYEES:
        assert name not in message
        assert region not in message
    assert "'" not in message.split(ADVICE)[0]  # nothing quoted: no value, no column name


def test_an_error_without_text_is_named_by_its_type() -> None:
    """DuckDB errors carry text; should one not, the operator still reads what kind it was."""
    assert _first_line(ValueError("")) == "ValueError"
    assert _first_line(ValueError("one\ntwo")) == "one"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ParameterError("bad parameter"), InvalidArgument),
        (ProductNotFound("d.p"), NotFound),
        (MeshgateError("internal meshgate error"), flight.FlightInternalError),
    ],
)
def test_meshgate_errors_keep_their_message(error: MeshgateError, kind: type) -> None:
    mapped = client_error(error)
    assert type(mapped) is kind
    assert str(mapped).startswith(error.message)


def test_unimplemented_keeps_its_message() -> None:
    class NotYet(MeshgateError):
        status = Status.UNIMPLEMENTED

    mapped = client_error(NotYet("not yet"))
    assert type(mapped) is Unimplemented
    assert str(mapped) == "not yet"
    assert str(Unimplemented()) == ""


def test_an_unavailable_source_is_named_only_by_an_error_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detail = "connection to server at db.internal (10.0.0.7), user etl_reader failed"
    with caplog.at_level(logging.WARNING, logger="meshgate.server.errors"):
        mapped = client_error(SourceUnavailable(detail))
    assert type(mapped) is flight.FlightUnavailableError
    found = ERROR_ID.search(str(mapped))
    assert found is not None
    assert "db.internal" not in str(mapped)
    assert str(mapped).startswith(
        f"a source this query reads is unavailable right now (error id {found.group(1)}); "
        "retry later, or ask the administrator: the server log has the details under this id"
    )
    assert [r.getMessage() for r in caplog.records] == [
        f"source unavailable (error id {found.group(1)}): {detail}"
    ]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_flight_errors_pass_through_unchanged() -> None:
    for error in (flight.FlightUnauthenticatedError("who?"), InvalidArgument("bad")):
        assert client_error(error) is error


def test_unexpected_errors_show_only_an_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="meshgate.server.errors"):
        mapped = client_error(KeyError("/var/lib/secret/path"))
    assert type(mapped) is flight.FlightInternalError
    found = re.match(r"internal error ([0-9a-f]{12});", str(mapped))
    assert found is not None
    assert str(mapped).startswith(
        f"internal error {found.group(1)}; the server log has the details under this id"
    )
    assert "secret" not in str(mapped)
    [record] = caplog.records
    assert record.getMessage() == f"internal error {found.group(1)}"
    assert record.exc_info is not None


def test_a_source_missing_its_table_names_neither_table_nor_file(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The driver's error names the physical table and file; the caller reads the source's
    kind and what to do, and the driver's text stays in the operator-only detail."""
    config = test_plan_cache.build(tmp_path_factory.mktemp("missing"))
    data = config.parent / "data" / "org.duckdb"
    with duckdb.connect(str(data)) as connection:
        connection.execute("DROP TABLE hr_team")
    service = QueryService.from_config(config)
    try:
        with pytest.raises(SourceUnavailable) as caught:
            service.query("SELECT name FROM hr.team", service.principal("viewer"))
    finally:
        service.close()
    assert caught.value.message == (
        "a duckdb source this query reads failed while answering it; retry later, or ask the "
        "administrator to check that the source is reachable and still has the configured "
        "tables and columns"
    )
    assert caught.value.status is Status.UNAVAILABLE
    assert caught.value.detail is not None
    assert "hr_team" in caught.value.detail


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (duckdb.OutOfRangeException("Date out of range: 999999-01-01"),
         ValueFailure(ValueFault.OUT_OF_RANGE, "DATE")),
        (duckdb.ConversionException(""), ValueFailure(ValueFault.CONVERSION)),
        (duckdb.ConversionException("Conversion Error: no target named"),
         ValueFailure(ValueFault.CONVERSION)),
    ],
)  # fmt: skip
def test_duckdb_value_errors_without_a_type_or_text(
    error: BaseException, expected: ValueFailure
) -> None:
    """The range markers name their type; an error with no text or no target type still
    classifies (as DuckDB's own exception types), naming no type."""
    assert duckdb_value_failure(error) == expected
