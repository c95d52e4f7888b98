"""Adversarial queries as `analyst`, over Flight SQL, against the reference oracle.

Every allowed query must answer exactly what the same query answers over the policy relation
materialised independently (oracle.py); every refused one must fail with its status before any
source is contacted; every failing one (a value error on rows analyst may see) with its message
and no value or name from a source. All run twice: without, then with, a hidden US row in the
source; the answers, the errors and the rows each source sends must not change.
"""

from __future__ import annotations

import re
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import duckdb
import pytest

from tests.security.cases import (
    ALLOWED,
    FAILING,
    REFUSED,
    SALES_PHYSICAL,
    Allowed,
    Failing,
    Refused,
)
from tests.security.conftest import AuditLines
from tests.security.deployment import HIDDEN_MARKERS, Deployment
from tests.security.results import query, rows

_ERROR_ID = re.compile(r"\b[0-9a-f]{8,}\b")


def _source_rows(line: dict[str, Any]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for fragment in line["sources"]:
        totals[fragment["source"]] = totals.get(fragment["source"], 0) + fragment["rows"]
    return totals


def _same_as_first(deployment: Deployment, key: str, seen: object) -> None:
    first = deployment.first_seen.setdefault(key, seen)
    assert seen == first, f"{key} changed once the hidden row was in the source"


@pytest.mark.parametrize("case", ALLOWED, ids=[c.id for c in ALLOWED])
def test_allowed_query_answers_as_over_the_policy_relation(
    case: Allowed, phase: str, deployment: Deployment, analyst: adbc.Connection,
    oracle: duckdb.DuckDBPyConnection, audit: AuditLines,
) -> None:
    answer = query(analyst, case.sql)
    expected = oracle.execute(case.oracle_sql or case.sql).to_arrow_table()
    assert answer.num_columns == expected.num_columns
    assert rows(answer, case.ordered) == rows(expected, case.ordered)
    line = audit.wait_for(case.sql)
    assert line["outcome"] == "ok"
    assert line["rows"] == answer.num_rows
    assert line["sources"], "an allowed query over products reads at least one source"
    _same_as_first(deployment, f"{case.id}:source-rows", _source_rows(line))


def _sentinel(analyst: adbc.Connection, audit: AuditLines, case: Refused, phase: str) -> None:
    """A query after the refused one: once its audit line is written, every earlier one is."""
    sql = f"SELECT count(*) AS after_{case.id.replace('-', '_')}_{phase} FROM hr.departments"
    query(analyst, sql)
    audit.wait_for(sql)


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_refused_query_fails_before_any_source_is_contacted(
    case: Refused, phase: str, deployment: Deployment, analyst: adbc.Connection,
    audit: AuditLines,
) -> None:
    with pytest.raises(adbc.Error) as caught:
        query(analyst, case.sql)
    error = caught.value
    assert error.status_code.name == case.status, str(error)
    message = str(error)
    for secret in (*deployment.secrets, *HIDDEN_MARKERS):
        if secret.lower() not in case.sql.lower():
            assert secret not in message
    assert "Traceback" not in message
    _same_as_first(deployment, f"{case.id}:error", _ERROR_ID.sub("<id>", message))
    _sentinel(analyst, audit, case, phase)
    contacted = [f for line in audit.of(case.sql) for f in line["sources"]]
    assert contacted == []


@pytest.mark.parametrize("case", FAILING, ids=[c.id for c in FAILING])
def test_failing_query_fails_alike_without_values_or_names(
    case: Failing, phase: str, deployment: Deployment, analyst: adbc.Connection,
    audit: AuditLines,
) -> None:
    with pytest.raises(adbc.Error) as caught:
        query(analyst, case.sql)
    error = caught.value
    assert error.status_code.name == "INVALID_ARGUMENT", str(error)
    message = str(error)
    assert case.message in message
    for secret in (*deployment.secrets, *HIDDEN_MARKERS, *SALES_PHYSICAL):
        assert secret not in message
    assert "Traceback" not in message
    _same_as_first(deployment, f"{case.id}:error", _ERROR_ID.sub("<id>", message))
    line = audit.wait_for(case.sql)
    assert (line["outcome"], line["status"]) == ("error", "INVALID_ARGUMENT")
