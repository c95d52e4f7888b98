"""Quality expectations over a DuckDB source: each kind passes on good data and fails on bad,
pushed down as one aggregate; results kept, shown in the catalog to whom may see them, and
`meshgate check --quality` as a user runs it."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as adbc
import duckdb
import pytest
from meshgate_duckdb import SANDBOX

from meshgate.errors import ConfigError
from meshgate.principal import Principal
from meshgate.quality.runner import CheckRun, checked_products, owner_principal, run_checks
from meshgate.quality.schedule import QualitySchedule
from meshgate.server import running_server
from meshgate.service import QueryService, load_definition
from tests.quality import mesh
from tests.waiting import within

NOW = dt.datetime.now(dt.UTC)


def duckdb_mesh(directory: Path) -> Path:
    with duckdb.connect(str(directory / "shop.duckdb")) as connection:
        for table, rows in (("items_good", mesh.good_rows(NOW)), ("items_bad", mesh.bad_rows(NOW))):
            connection.execute(f"CREATE TABLE {table} (id BIGINT, status VARCHAR, "
                               "price DECIMAL(10,2), updated_at TIMESTAMPTZ)")  # fmt: skip
            connection.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", rows)
    return mesh.build(directory, "{name: shop_db, kind: duckdb, options: {path: shop.duckdb}}")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return duckdb_mesh(tmp_path_factory.mktemp("quality"))


@pytest.fixture(scope="module")
def service(config: Path) -> Iterator[QueryService]:
    service = QueryService.from_config(config)
    yield service
    service.close()


@pytest.fixture(scope="module")
def runs(service: QueryService) -> dict[tuple[str, str], CheckRun]:
    found = run_checks(service, checked_products(service))
    return {(r.result.product, r.result.expectation): r for r in found}


def test_every_kind_passes_on_good_data(runs: dict[tuple[str, str], CheckRun]) -> None:
    good = {e: r.result for (p, e), r in runs.items() if p == "shop.good"}
    assert {e.split("(")[0] for e in good} == set(mesh.KINDS)
    assert {e: r.outcome for e, r in good.items()} == dict.fromkeys(good, "pass")
    assert good["row_count"].observed == 3
    age = good["freshness(updated_at)"].observed
    assert age is not None
    # The newest row was written 5 minutes before NOW (when this module was imported).
    since = (dt.datetime.now(dt.UTC) - NOW).total_seconds()
    assert 5 * 60 <= age <= 5 * 60 + since + 1


def test_every_kind_fails_on_bad_data(runs: dict[tuple[str, str], CheckRun]) -> None:
    bad = {e: r.result for (p, e), r in runs.items() if p == "shop.bad"}
    assert {e: r.outcome for e, r in bad.items()} == dict.fromkeys(bad, "fail")
    assert {e: r.observed for e, r in bad.items() if e in mesh.EXPECTED_BAD} == mesh.EXPECTED_BAD


def test_a_stale_product_fails_its_freshness_slo(runs: dict[tuple[str, str], CheckRun]) -> None:
    stale = runs[("shop.bad", "freshness(updated_at)")].result
    assert stale.outcome == "fail"
    assert stale.observed is not None
    assert 2 * 86400 <= stale.observed < 2 * 86400 + 600
    assert stale.detail == "newest updated_at at most 1h old"


def test_each_check_is_one_aggregate_the_source_runs(
    service: QueryService, runs: dict[tuple[str, str], CheckRun]
) -> None:
    """The source receives the aggregate and sends back one row: the table is never pulled."""
    for (product, expectation), run in runs.items():
        assert len(run.source_sql) == 1, (expectation, run.source_sql)
        assert "COUNT(" in run.source_sql[0] or "MAX(" in run.source_sql[0], run.source_sql
        assert run.source_rows == 1, (product, expectation, run.source_rows)
    not_null = runs[("shop.bad", "not_null(id)")]
    assert not_null.source_sql == (
        'SELECT COUNT(*) - COUNT("bad"."id") AS "observed" FROM "items_bad" AS "bad"',
    )
    # The audit record of the check says the same: who ran it, what the source received.
    record = next(r for r in service.audit.records("shop-team@example.com")
                  if r.sql == not_null.sql)  # fmt: skip
    assert record.client == "meshgate quality check"
    assert [(s.sql, s.rows) for s in record.sources] == [(not_null.source_sql[0], 1)]
    # And the source's own plan of that SQL is an aggregate over the table, not a scan out.
    with duckdb.connect(str(service.definition.directory / "shop.duckdb"), read_only=True,
                        config=SANDBOX) as connection:  # the connector's own settings
        plan = "\n".join(r[1] for r in connection.execute(f"EXPLAIN {not_null.source_sql[0]}")
                         .fetchall())  # fmt: skip
    assert "AGGREGATE" in plan.upper()
    assert "items_bad" in plan


def test_checks_run_as_the_owner_with_the_roles_granting_the_product(
    service: QueryService,
) -> None:
    good = service.catalog.products[("shop", "good")]
    assert owner_principal(service, good) == Principal(
        "shop-team@example.com", frozenset({"reader", "limited"})
    )
    ledger = service.catalog.products[("vault", "ledger")]
    assert owner_principal(service, ledger).roles == {"auditor"}


def test_results_are_kept_in_the_state_directory(
    config: Path, runs: dict[tuple[str, str], CheckRun]
) -> None:
    with sqlite3.connect(config / ".meshgate-state" / "quality.sqlite") as connection:
        rows = connection.execute(
            "SELECT product, expectation, outcome, observed, checked_at, duration "
            "FROM quality_results WHERE product = 'shop.bad' AND expectation = 'range(price)'"
        ).fetchall()
    assert len(rows) >= 1
    product, expectation, outcome, observed, checked_at, duration = rows[-1]
    assert (product, expectation, outcome, observed) == ("shop.bad", "range(price)", "fail", 2.0)
    assert dt.datetime.fromisoformat(checked_at) >= NOW
    assert duration > 0


def test_health_over_flight_sql_shows_only_granted_products(
    service: QueryService, runs: dict[tuple[str, str], CheckRun]
) -> None:
    with running_server(service) as server:
        uri = f"grpc://127.0.0.1:{server.port}"
        with adbc.connect(uri, db_kwargs={"username": "reader", "password": "reader"},
                         autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT product, quality_status, failed_expectations, freshness_ok, "
                "freshness_age_seconds, row_count_estimate, last_checked_at "
                "FROM meshgate.products ORDER BY product"
            )
            products = cursor.fetch_arrow_table().to_pylist()
            cursor.execute("SELECT domain, product, expectation, outcome, observed "
                           "FROM meshgate.quality_results")  # fmt: skip
            results = cursor.fetch_arrow_table().to_pylist()
        with adbc.connect(uri, db_kwargs={"username": "limited", "password": "limited"},
                         autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT product, observed FROM meshgate.quality_results")
            limited = cursor.fetch_arrow_table().to_pylist()
            cursor.execute("SELECT quality_status, freshness_age_seconds, "
                           "row_count_estimate FROM meshgate.products")  # fmt: skip
            limited_products = cursor.fetch_arrow_table().to_pylist()
        with adbc.connect(uri, db_kwargs={"username": "auditor", "password": "auditor"},
                         autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute("SELECT DISTINCT product FROM meshgate.quality_results")
            audited = cursor.fetch_arrow_table().to_pylist()
    bad, good = products
    assert (bad["product"], bad["quality_status"], bad["freshness_ok"]) == ("bad", "fail", False)
    assert set(bad["failed_expectations"]) == {e for p, e in runs if p == "shop.bad"}
    assert bad["freshness_age_seconds"] >= 2 * 86400
    assert bad["row_count_estimate"] == 5
    assert (good["quality_status"], good["failed_expectations"], good["freshness_ok"]) == (
        "pass", [], True)  # fmt: skip
    assert good["last_checked_at"] >= NOW
    assert good["row_count_estimate"] == 3
    assert {(r["domain"], r["product"]) for r in results} == {("shop", "good"), ("shop", "bad")}
    assert {"range(price)", "freshness(updated_at)"} <= {r["expectation"] for r in results}
    assert not any("vault" in str(row) or "ledger" in str(row) for row in products + results)
    # A caller whose row filter hides rows sees outcomes but no counts over the hidden rows.
    assert limited
    assert all(r["observed"] is None for r in limited)
    assert [(p["freshness_age_seconds"], p["row_count_estimate"]) for p in limited_products] == [
        (None, None), (None, None)]  # fmt: skip
    assert {p["quality_status"] for p in limited_products} == {"pass", "fail"}
    assert audited == [{"product": "ledger"}]


def test_an_ungranted_product_answers_like_a_missing_table(service: QueryService) -> None:
    reader = service.principal("reader")
    table = service.query("SELECT count(*) AS n FROM meshgate.quality_results "
                          "WHERE domain = 'vault'", reader)  # fmt: skip
    assert table.to_pylist() == [{"n": 0}]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshgate.cli", *args], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ), check=False)  # fmt: skip


def test_check_quality_prints_a_table_and_fails_on_a_failure(tmp_path: Path) -> None:
    config = duckdb_mesh(tmp_path)
    failing = run_cli("check", "--quality", "--config", str(config))
    assert failing.returncode == 1, failing.stderr
    lines = failing.stdout.splitlines()
    assert [cell.strip() for cell in lines[0].split(" | ")] == [
        "product", "expectation", "outcome", "observed", "expected", "duration_seconds"]
    rows = [[cell.strip() for cell in line.split(" | ")] for line in lines[2:-1]]
    assert ["shop.bad", "range(price)", "fail", "2", "0 bad rows"] in [r[:5] for r in rows]
    assert ["shop.bad", "freshness(updated_at)", "fail"] in [r[:3] for r in rows]
    assert lines[-1].startswith("24 expectations checked, 8 failed; results kept in ")
    passing = run_cli("check", "--quality", "--product", "shop.good", "--config", str(config))
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "8 expectations checked, all passed" in passing.stdout
    unknown = run_cli("check", "--quality", "--product", "shop.nope", "--config", str(config))
    assert unknown.returncode == 2
    assert "error: no product 'shop.nope'; name one as domain.product" in unknown.stderr


def test_serve_runs_scheduled_checks(tmp_path: Path) -> None:
    config = duckdb_mesh(tmp_path)
    text = (config / "mesh.yaml").read_text(encoding="utf-8")
    text = text.replace("  - domain: shop\n    name: good\n",
                        "  - domain: shop\n    name: good\n    quality_schedule: 1s\n")
    (config / "mesh.yaml").write_text(text, encoding="utf-8")
    service = QueryService.from_config(config)
    schedule = QualitySchedule(service)
    assert schedule.products == ["shop.good"]
    schedule.start()
    try:
        assert within(30, lambda: len(service.quality_store.results(["shop.good"])) >= 16)
    finally:
        schedule.stop()
        service.close()
    assert service.quality_store.results(["shop.bad"]) == []


def test_no_schedule_runs_nothing(service: QueryService) -> None:
    assert QualitySchedule(service).products == []


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        ("{not_null: idd}", "quality[0] (not_null) names undeclared columns ['idd']"),
        ("{unique: [id, nope]}", "quality[0] (unique) names undeclared columns ['nope']"),
        ("{freshness: {column: updated_at, max_age: 1 hour}}",
         "'1 hour' is not a duration: write a whole number and a unit, s, m, h or d"),
        ("{freshness: {column: status, max_age: 1h}}",
         "column status is VARCHAR; freshness needs a TIMESTAMP, TIMESTAMPTZ or DATE column"),
        ("{not_null: id, unique: id}",
         "an expectation is exactly one of not_null, unique, accepted_values, range, "
         "row_count, sql or freshness (given: not_null, unique)"),
        ("{row_count: {min: 5, max: 2}}", "min 5 is above max 2"),
        ("{range: {column: price}}", "give `min`, `max` or both"),
        ("{nul: id}", "nul"),
    ],
)
def test_bad_expectations_are_config_errors(tmp_path: Path, expectation: str, message: str) -> None:
    config = duckdb_mesh(tmp_path)
    text = (config / "mesh.yaml").read_text(encoding="utf-8")
    text = text.replace("      - not_null: id\n", f"      - {expectation}\n", 1)
    (config / "mesh.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_definition(config)
    assert message in str(error.value)
    assert "mesh.yaml:" in str(error.value)


def test_bad_schedule_is_a_config_error(tmp_path: Path) -> None:
    config = duckdb_mesh(tmp_path)
    (config / "server.yaml").write_text("server: {quality_schedule: often}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'often' is not a duration"):
        load_definition(config)


def test_a_check_that_cannot_run_is_an_error_and_fails_the_run(tmp_path: Path) -> None:
    config = duckdb_mesh(tmp_path)
    text = (config / "mesh.yaml").read_text(encoding="utf-8")
    text = text.replace('query: "SELECT count(*) FROM shop.good WHERE price < 0"',
                        'query: "SELECT id, status FROM shop.good"', 1)
    (config / "mesh.yaml").write_text(text, encoding="utf-8")
    service = QueryService.from_config(config)
    try:
        [run] = [r for r in run_checks(service, [service.catalog.products[("shop", "good")]])
                 if r.result.expectation == "sql(no_negative_price)"]  # fmt: skip
        health = service.query("SELECT quality_status, failed_expectations FROM "
                               "meshgate.products WHERE product = 'good'",
                               service.principal("reader")).to_pylist()  # fmt: skip
    finally:
        service.close()
    assert (run.result.outcome, run.result.observed) == ("error", None)
    assert run.result.detail.startswith(
        "the check could not run: the check sql(no_negative_price) does not answer one row of "
        "one column")
    assert health == [{"quality_status": "fail",
                       "failed_expectations": ["sql(no_negative_price)"]}]  # fmt: skip


def test_health_follows_each_new_run(tmp_path: Path) -> None:
    """meshgate.products is read afresh per query: a cached plan never shows old health."""
    service = QueryService.from_config(duckdb_mesh(tmp_path))
    reader = service.principal("reader")
    sql = "SELECT quality_status, last_checked_at FROM meshgate.products WHERE product = 'good'"
    try:
        before = service.query(sql, reader).to_pylist()
        run_checks(service, [service.catalog.products[("shop", "good")]])
        after = service.query(sql, reader).to_pylist()
    finally:
        service.close()
    assert before == [{"quality_status": "unknown", "last_checked_at": None}]
    assert after[0]["quality_status"] == "pass"
    assert after[0]["last_checked_at"] >= NOW
