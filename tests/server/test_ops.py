"""The operators' HTTP port and JSON logs of a real `meshgate serve`, seen from outside.

One server for the module, with `server.http_port: 0` and `server.log_format: json`, over
the demo mesh plus a PostgreSQL source reached through a proxy the tests cut and restore.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import adbc_driver_flightsql.dbapi as flightsql
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from meshgate.catalog.config import ServerConfig
from tests.conftest import fresh_pg_database
from tests.faults.proxy import FaultProxy
from tests.server.served import (
    EVENTS,
    Served,
    create_warehouse,
    eventually,
    http_get,
    serve,
    through,
    write_config,
)

ADMIN = {"username": "admin", "password": "admin"}
ANALYST = {"username": "analyst", "password": "analyst"}
SERVER_YAML = "server: {http_port: 0, log_format: json, reload_poll_seconds: null}\n"


@pytest.fixture(scope="module")
def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        create_warehouse(dsn)
        yield dsn


@pytest.fixture(scope="module")
def proxy(pg_dsn: str) -> Iterator[FaultProxy]:
    parts = urlsplit(pg_dsn)
    running = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    yield running
    running.close()


@pytest.fixture(autouse=True)
def healthy_proxy(proxy: FaultProxy) -> Iterator[None]:
    proxy.resume()
    yield
    proxy.resume()


@pytest.fixture(scope="module")
def served(pg_dsn: str, proxy: FaultProxy, demo_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:  # fmt: skip
    directory = tmp_path_factory.mktemp("ops") / "config"
    write_config(directory, demo_dir, through(pg_dsn, proxy), SERVER_YAML)
    with serve(directory, http_port=0) as running:
        yield running


def readyz(served: Served) -> tuple[int, dict[str, object]]:
    status, body = http_get(f"{served.http}/readyz")
    return status, json.loads(body)


def metrics(served: Served) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels, parsed by Prometheus' own parser."""
    status, body = http_get(f"{served.http}/metrics")
    assert status == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}  # fmt: skip


def query(served: Served, sql: str, credentials: dict[str, str]) -> list[tuple[object, ...]]:
    with flightsql.connect(served.uri, db_kwargs=credentials) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def test_healthz_answers_while_the_process_is_up(served: Served) -> None:
    assert http_get(f"{served.http}/healthz") == (200, b"ok\n")
    status, body = http_get(f"{served.http}/nothing-here")
    assert status == 404
    assert b"/healthz, /readyz and /metrics" in body


def test_readyz_names_the_source_that_is_down_and_recovers_with_it(
    served: Served, proxy: FaultProxy
) -> None:
    status, body = readyz(served)
    assert status == 200
    assert body["status"] == "ready"
    assert body["sources"] == {
        "finance_lake": {"kind": "files", "status": "up"},
        "hr_db": {"kind": "sqlite", "status": "up"},
        "sales_db": {"kind": "duckdb", "status": "up"},
        "warehouse": {"kind": "postgres", "status": "up"},
    }
    proxy.refuse()
    status, body = readyz(served)
    assert status == 503
    assert body["status"] == "not ready"
    sources = body["sources"]
    assert isinstance(sources, dict)
    assert sources["warehouse"]["status"] == "down"
    assert "PostgreSQL source failed" in sources["warehouse"]["error"]
    assert str(proxy.port) not in json.dumps(body)  # no address, even for operators' eyes
    assert all(s["status"] == "up" for name, s in sources.items() if name != "warehouse")
    proxy.resume()
    eventually(lambda: readyz(served)[0] == 200)
    served.wait_for_log("readiness: source 'warehouse' is up again")


def test_metrics_parse_and_move_as_queries_run(served: Served) -> None:
    before = metrics(served)
    ok = ("meshgate_queries_total", (("code", "OK"), ("outcome", "ok")))
    denied = ("meshgate_queries_total", (("code", "NOT_FOUND"), ("outcome", "denied")))
    returned = ("meshgate_returned_rows_total", ())
    from_warehouse = ("meshgate_source_rows_total", (("source", "warehouse"),))
    latency = ("meshgate_query_duration_seconds_count", (("outcome", "ok"),))

    assert query(served, "SELECT id FROM ops.events", ADMIN) == [(i,) for i in range(1, 1001)]
    with pytest.raises(flightsql.ProgrammingError, match="NOT_FOUND"):
        query(served, "SELECT * FROM ops.events", ANALYST)  # not granted to analysts
    after = metrics(served)

    assert after[ok] - before.get(ok, 0) == 1
    assert after[denied] - before.get(denied, 0) == 1
    assert after[returned] - before.get(returned, 0) == EVENTS
    assert after[from_warehouse] - before.get(from_warehouse, 0) == EVENTS
    assert after[latency] - before.get(latency, 0) == 1
    assert after[("meshgate_active_queries", ())] == 0
    assert after[("meshgate_source_pool_connections", (("source", "warehouse"),
                                                        ("state", "in_use")))] == 0  # fmt: skip
    assert after[("meshgate_source_pool_connections", (("source", "warehouse"),
                                                        ("state", "idle")))] >= 1  # fmt: skip
    misses = ("meshgate_plan_cache_lookups_total", (("result", "miss"),))
    assert after[misses] > before.get(misses, 0)


def test_json_logs_carry_the_query_id_that_the_clients_error_shows(
    served: Served, proxy: FaultProxy
) -> None:
    proxy.refuse()
    with pytest.raises(flightsql.Error) as raised:
        query(served, "SELECT count(*) FROM ops.events", ADMIN)
    message = str(raised.value)
    assert "source 'warehouse', which this query reads, is unavailable right now" in message
    found = re.search(r"error id ([0-9a-f]+)", message)
    assert found, message
    query_id = found.group(1)

    def logged() -> list[dict[str, object]]:
        return [r for r in served.log_records() if r.get("query_id") == query_id]

    eventually(lambda: len(logged()) >= 2)
    records = logged()
    assert all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    [audit] = [json.loads(str(r["message"])) for r in records if r["logger"] == "meshgate.audit"]
    assert audit["query_id"] == audit["error_id"] == query_id
    assert audit["outcome"] == "error"
    assert audit["status"] == "UNAVAILABLE"
    assert audit["products"] == ["ops.events"]
    [warning] = [r for r in records if r["logger"] == "meshgate.server.errors"]
    assert warning["level"] == "WARNING"
    assert f"error id {query_id}" in str(warning["message"])


def test_the_readmes_operations_example_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Operations"):]
    example = section[section.index("```yaml\n") + len("```yaml\n"):]
    server = ServerConfig.model_validate(yaml.safe_load(example[:example.index("```")])["server"])
    assert (server.http_port, server.log_format) == (9815, "json")
    assert (server.shutdown_grace_seconds, server.reload_poll_seconds) == (10, 2)


def test_the_catalog_page_is_served_on_the_http_port_behind_sign_in(served: Served) -> None:
    import http.cookiejar
    import urllib.error
    import urllib.parse
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    bare = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as refused:
        bare.open(f"{served.http}/catalog/products/hr/employees", timeout=10)
    assert refused.value.code == 303
    assert refused.value.headers["Location"].startswith("/catalog/signin")
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = urllib.parse.urlencode({"user": "analyst", "password": "analyst",
                                   "next": "/catalog/products/hr/employees"}).encode()
    with browser.open(f"{served.http}/catalog/signin", data=form, timeout=30) as page:
        html = page.read().decode()
    assert '<h1 id="product-name">hr.employees</h1>' in html
    assert served.uri in html  # the ADBC snippet names this server's own Flight SQL address
    with pytest.raises(urllib.error.HTTPError) as hidden:
        browser.open(f"{served.http}/catalog/products/finance/budgets", timeout=30)
    assert hidden.value.code == 404
