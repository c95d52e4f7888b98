"""Quality expectations over a real PostgreSQL: each kind passes on good rows and fails on bad
ones, every check reaches the server as one aggregate (PostgreSQL's own plan of the SQL it
received aggregates at the source), and a two-day-old product fails its one hour SLO."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import psycopg
import pytest

from meshgate.quality.runner import CheckRun, checked_products, run_checks
from meshgate.server import running_server
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database
from tests.quality import mesh

pytestmark = pytest.mark.postgres



@pytest.fixture(scope="module")
def written_at() -> dt.datetime:
    """When the rows' ages are counted from: taken as they are written, not at import (with
    xdist a module can run many minutes after it was collected)."""
    return dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def dsn(pg_server_dsn: str, written_at: dt.datetime) -> Iterator[str]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
            for table, rows in (("items_good", mesh.good_rows(written_at)),
                                ("items_bad", mesh.bad_rows(written_at))):  # fmt: skip
                cursor.execute(f"CREATE TABLE {table} (id BIGINT, status TEXT, "
                               "price NUMERIC(10,2), updated_at TIMESTAMPTZ)")  # fmt: skip
                for row in rows:
                    cursor.execute(f"INSERT INTO {table} VALUES ($1, $2, $3, $4)",
                                   parameters=row)  # fmt: skip
                cursor.execute(f"ANALYZE {table}")
        yield dsn


@pytest.fixture(scope="module")
def service(dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    config = mesh.build(tmp_path_factory.mktemp("pgquality"),
                        f"{{name: shop_db, kind: postgres, options: {{dsn: '{dsn}'}}}}",
                        schema="public")  # fmt: skip
    service = QueryService.from_config(config)
    yield service
    service.close()


@pytest.fixture(scope="module")
def runs(service: QueryService) -> dict[tuple[str, str], CheckRun]:
    found = run_checks(service, checked_products(service))
    return {(r.result.product, r.result.expectation): r for r in found}


def test_every_kind_passes_on_good_rows(runs: dict[tuple[str, str], CheckRun]) -> None:
    good = {e: r.result for (p, e), r in runs.items() if p == "shop.good"}
    assert {e.split("(")[0] for e in good} == set(mesh.KINDS)
    assert {e: (r.outcome, r.detail) for e, r in good.items() if r.outcome != "pass"} == {}
    assert good["row_count"].observed == 3


def test_every_kind_fails_on_bad_rows(runs: dict[tuple[str, str], CheckRun]) -> None:
    bad = {e: r.result for (p, e), r in runs.items() if p == "shop.bad"}
    assert {e: r.outcome for e, r in bad.items()} == dict.fromkeys(bad, "fail")
    assert {e: r.observed for e, r in bad.items() if e in mesh.EXPECTED_BAD} == mesh.EXPECTED_BAD


def test_a_two_day_old_product_fails_a_one_hour_slo(
    runs: dict[tuple[str, str], CheckRun], written_at: dt.datetime
) -> None:
    since_written = (dt.datetime.now(dt.UTC) - written_at).total_seconds()
    stale = runs[("shop.bad", "freshness(updated_at)")].result
    fresh = runs[("shop.good", "freshness(updated_at)")].result
    assert (stale.outcome, fresh.outcome) == ("fail", "pass")
    assert stale.observed is not None
    assert 2 * 86400 <= stale.observed <= 2 * 86400 + since_written
    assert fresh.observed is not None
    assert fresh.observed < 3600


def test_postgres_runs_each_check_as_one_aggregate(
    dsn: str, runs: dict[tuple[str, str], CheckRun]
) -> None:
    """What PostgreSQL received aggregates there and sends one row; its own plan says so."""
    with psycopg.connect(dsn, autocommit=True) as connection:  # ADBC cannot COPY an EXPLAIN
        for (product, expectation), run in runs.items():
            assert len(run.source_sql) == 1, (expectation, run.source_sql)
            assert run.source_rows == 1, (product, expectation)
            lines = connection.execute(f"EXPLAIN {run.source_sql[0]}").fetchall()
            plan = [str(line[0]) for line in lines]
            assert plan[0].lstrip().startswith("Aggregate"), (expectation, plan)
            assert any("Seq Scan on items_" in line for line in plan), plan
    not_null = runs[("shop.bad", "not_null(id)")].source_sql[0]
    assert "COUNT(*) - COUNT(" in not_null
    assert "items_bad" in not_null


def test_health_from_postgres_checks_over_flight_sql(
    service: QueryService, runs: dict[tuple[str, str], CheckRun]
) -> None:
    with running_server(service) as server, flightsql.connect(
        f"grpc://127.0.0.1:{server.port}",
        db_kwargs={"username": "reader", "password": "reader"}, autocommit=True,
    ) as connection, connection.cursor() as cursor:  # fmt: skip
        cursor.execute("SELECT product, quality_status, freshness_ok, row_count_estimate "
                       "FROM meshgate.products ORDER BY product")  # fmt: skip
        products = cursor.fetch_arrow_table().to_pylist()
        cursor.execute("SELECT DISTINCT domain FROM meshgate.quality_results")
        domains = cursor.fetch_arrow_table().to_pylist()
    # row_count_estimate is PostgreSQL's own statistics (ANALYZE), not a count of the rows.
    assert products == [
        {"product": "bad", "quality_status": "fail", "freshness_ok": False,
         "row_count_estimate": 5},
        {"product": "good", "quality_status": "pass", "freshness_ok": True,
         "row_count_estimate": 3},
    ]  # fmt: skip
    assert domains == [{"domain": "shop"}]


def test_results_of_both_runs_are_kept(service: QueryService, tmp_path: Path) -> None:
    before = len(service.quality_store.results(["shop.good"]))
    run_checks(service, [service.catalog.products[("shop", "good")]])
    assert len(service.quality_store.results(["shop.good"])) == before + len(mesh.KINDS) + 1
