"""flightsql-dbapi 0.2.2 (the SQLAlchemy dialect's client), each run in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

from tests.server.flightsql_clients import Endpoint

CLIENT = Path(__file__).with_name("flightsql_dbapi_client.py")


def _environment(endpoint: Endpoint) -> dict[str, str]:
    """The client scripts connect over TLS when given the CA's file."""
    if endpoint.ca_file is None:
        return {k: v for k, v in os.environ.items() if k != "MESHGATE_TEST_TLS_CA"}
    return {**os.environ, "MESHGATE_TEST_TLS_CA": str(endpoint.ca_file)}


def run(endpoint: Endpoint, sql: str, *params: object,
        user: str = "analyst") -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(CLIENT), str(endpoint.port), user, user, sql, json.dumps(params)],
        capture_output=True, text=True, timeout=120, check=False, env=_environment(endpoint),
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_query_without_parameters(endpoint: Endpoint) -> None:
    result = run(endpoint, "SELECT id, name FROM hr.departments ORDER BY id LIMIT 3")
    assert result["columns"] == ["id", "name"]
    assert [row[0] for row in result["rows"]] == [1, 2, 3]
    assert result["schema_matches"] is True


def test_query_with_union_typed_parameters(endpoint: Endpoint) -> None:
    result = run(endpoint, "SELECT id FROM hr.departments WHERE id BETWEEN ? AND ? ORDER BY id",
                 2, 4)
    assert result["rows"] == [[2], [3], [4]]


def test_sql_info_keys_the_dialect_indexes(endpoint: Endpoint) -> None:
    info = run(endpoint, "SELECT 1 AS one")["sql_info"]
    assert info["0"] == "meshgate"
    assert info["3"] is True
    assert info["504"] == '"'
    assert "2" in info


def test_errors_are_reported_without_traceback(endpoint: Endpoint) -> None:
    result = run(endpoint, "SELECT * FROM finance.ledger")
    assert "does not exist" in result["message"]
    assert "Traceback" not in result["message"]


REFLECTING = Path(__file__).with_name("flightsql_sqlalchemy_client.py")


def test_sqlalchemy_reflects_what_the_user_may_read_and_queries_with_a_parameter(
    endpoint: Endpoint,
) -> None:
    done = subprocess.run([sys.executable, str(REFLECTING), str(endpoint.port), "analyst",
                           "analyst"], capture_output=True, text=True, timeout=180, check=False,
                          env=_environment(endpoint))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["schemas"]) == {"hr", "sales", "meshgate"}  # no finance for analyst
    assert "employees" in result["tables"]["hr"]
    assert "orders" in result["tables"]["sales"]
    columns = {c["name"]: c for c in result["columns"]["hr.employees"]}
    assert columns["salary"]["type"].startswith("DECIMAL")
    assert columns["id"]["type"] == "BIGINT"
    assert result["primary_key"] == ["id"]
    ids = [row[0] for row in result["rows"]]
    assert ids == sorted(ids)
    assert ids
    assert max(ids) < 50
    assert {row[1] for row in result["rows"]} == {"EU"}  # analyst's row filter applies
    direct = run(endpoint, "SELECT id FROM hr.employees WHERE id < 50 ORDER BY id")
    assert [row[0] for row in direct["rows"]] == ids


def test_union_parameters_of_every_kind_bind_to_typed_columns(
    endpoint: Endpoint, analyst_oracle: duckdb.DuckDBPyConnection
) -> None:
    # float against a DECIMAL column, text against a TIMESTAMPTZ one, int in LIMIT
    sql = "SELECT order_id FROM sales.orders WHERE amount > ? AND ts < ? ORDER BY order_id LIMIT ?"
    values = (900.5, "2024-02-01 00:00:00+00", 5)
    result = run(endpoint, sql, *values)
    assert result["rows"] == [list(r) for r in analyst_oracle.execute(sql, list(values)).fetchall()]
    assert len(result["rows"]) == 5


def test_union_text_and_booleans_are_values_never_sql(endpoint: Endpoint) -> None:
    sql = "SELECT count(*) AS n FROM hr.employees WHERE is_active = ? AND name <> ?"
    assert run(endpoint, sql, False, "x' OR 1=1 --")["rows"] == [[23]]
    assert run(endpoint, "SELECT id FROM hr.departments WHERE region = ?", "EU' OR '1'='1")[
        "rows"] == []
