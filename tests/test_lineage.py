"""Lineage and usage: meshgate.lineage through chains of SQL-defined products, per caller;
one OpenLineage run event per query; meshgate.usage from the audit trail."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import adbc_driver_flightsql.dbapi as adbc
import duckdb
import pytest
from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    error_message_run,
    job_type_job,
    processing_engine_run,
    sql_job,
    tags_run,
)
from openlineage.client.serde import Serde

from meshgate.errors import ConfigError, ProductNotFound
from meshgate.principal import hash_password
from meshgate.run_events import MeshgateRunFacet, job_name
from meshgate.server import running_server
from meshgate.service import QueryService, load_definition

T = TypeVar("T")
LINEAGE = ("SELECT product, column_name, upstream_domain, upstream_product, upstream_column, "
           "depth, source, source_table, source_column FROM meshgate.lineage "
           "ORDER BY product, column_name, depth, upstream_product")  # fmt: skip


def rows(service: QueryService, sql: str, user: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = service.query(sql, service.principal(user)).to_pylist()
    return found


def copy_demo(demo_dir: Path, target: Path, server_yaml: str) -> Path:
    """The demo mesh's config in `target` (reading the demo's data) plus a server file."""
    target.mkdir()
    for source in demo_dir.iterdir():
        if source.suffix == ".yaml":
            text = source.read_text(encoding="utf-8")
            text = text.replace("path: data/", f"path: {demo_dir}/data/")
            (target / source.name).write_text(text, encoding="utf-8")
    (target / "server.yaml").write_text(server_yaml, encoding="utf-8")
    return target


# --- the demo ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_dir: Path) -> Iterator[QueryService]:
    service = QueryService.from_config(demo_dir)
    yield service
    service.close()


def test_revenue_by_region_derives_region_and_revenue_from_their_source_columns(
    demo: QueryService,
) -> None:
    assert rows(demo, LINEAGE, "admin") == [
        {"product": "revenue_by_region", "column_name": "region", "upstream_domain": "hr",
         "upstream_product": "employees", "upstream_column": "region", "depth": 1,
         "source": "hr_db", "source_table": "employees", "source_column": "region"},
        {"product": "revenue_by_region", "column_name": "revenue", "upstream_domain": "sales",
         "upstream_product": "orders", "upstream_column": "amount", "depth": 1,
         "source": "sales_db", "source_table": "orders", "source_column": "amount"},
    ]  # fmt: skip
    # order_count is COUNT(*): computed from no column, so it has no lineage row.


def test_lineage_over_flight_sql_shows_analyst_no_finance_and_no_physical_name(
    demo: QueryService,
) -> None:
    with running_server(demo) as server:
        uri = f"grpc://127.0.0.1:{server.port}"
        seen = {}
        for user in ("admin", "analyst"):
            with adbc.connect(uri, db_kwargs={"username": user, "password": user},
                              autocommit=True) as conn, conn.cursor() as cursor:  # fmt: skip
                cursor.execute("SELECT * FROM meshgate.lineage")
                seen[user] = cursor.fetch_arrow_table().to_pylist()
    assert {(r["domain"], r["product"], r["column_name"]) for r in seen["admin"]} == {
        ("finance", "revenue_by_region", "region"),
        ("finance", "revenue_by_region", "revenue"),
    }
    assert {r["source"] for r in seen["admin"]} == {"hr_db", "sales_db"}
    # analyst may read sales and hr, not finance: its only SQL product stays invisible.
    assert seen["analyst"] == []


# --- a three-level chain -------------------------------------------------------------------

CHAIN_MESH = """
mesh: {name: chain}
server:
  audit: {file: audit/audit.jsonl}
sources:
  - {name: chain_db, kind: duckdb, options: {path: chain.duckdb}}
domains:
  - {name: base, owner: keeper@example.com}
  - {name: mid, owner: mid-team@example.com}
  - {name: top, owner: top-team@example.com}
roles:
  - {name: admin, grants: ["*"]}
  - {name: viewer, grants: ["top.*", "base.*"]}
  - {name: mid_reader, grants: ["mid.*", "base.*"]}
"""
CHAIN_PRODUCTS = """
products:
  - domain: base
    name: events
    table:
      source: chain_db
      table: raw_events
      columns: {id: ev_id, amount: amt, category: cat, day: ts}
    columns:
      - {name: id, type: BIGINT}
      - {name: amount, type: DOUBLE}
      - {name: category, type: VARCHAR}
      - {name: day, type: DATE}
  - domain: base
    name: categories
    table: {source: chain_db, table: category_codes, columns: {label: lbl}}
    columns:
      - {name: code, type: VARCHAR}
      - {name: label, type: VARCHAR}
  - domain: mid
    name: daily
    query: |
      SELECT day, category, SUM(amount) AS total, COUNT(*) AS n
      FROM base.events GROUP BY day, category
    columns:
      - {name: day, type: DATE}
      - {name: category, type: VARCHAR}
      - {name: total, type: DOUBLE}
      - {name: n, type: BIGINT}
  - domain: mid
    name: labelled
    query: |
      WITH d AS (SELECT * FROM mid.daily)
      SELECT d.day, upper(c.label) AS category_label, d.total * 2 AS doubled
      FROM d JOIN base.categories AS c ON d.category = c.code
    columns:
      - {name: day, type: DATE}
      - {name: category_label, type: VARCHAR}
      - {name: doubled, type: DOUBLE}
  - domain: top
    name: report
    query: |
      SELECT category_label AS label, SUM(doubled) AS grand_total, MAX(day) AS last_day
      FROM mid.labelled GROUP BY category_label
    columns:
      - {name: label, type: VARCHAR}
      - {name: grand_total, type: DOUBLE}
      - {name: last_day, type: DATE}
"""


@pytest.fixture
def chain_dir(tmp_path: Path) -> Path:
    config = tmp_path / "chain"
    config.mkdir()
    with duckdb.connect(str(config / "chain.duckdb")) as db:
        db.execute("CREATE TABLE raw_events (ev_id BIGINT, amt DOUBLE, cat VARCHAR, ts DATE)")
        db.execute("INSERT INTO raw_events VALUES (1, 10, 'a', '2026-01-01'), "
                   "(2, 5, 'b', '2026-01-02'), (3, 1, 'a', '2026-01-03')")  # fmt: skip
        db.execute("CREATE TABLE category_codes (code VARCHAR, lbl VARCHAR)")
        db.execute("INSERT INTO category_codes VALUES ('a', 'apples'), ('b', 'bread')")
    users = "users:\n" + "".join(
        f"  - {{name: {name}, password_hash: \"{hash_password(name)}\", roles: [{role}]"
        f"{attributes}}}\n"
        for name, role, attributes in (
            ("admin", "admin", ""), ("viewer", "viewer", ""),
            ("keeper", "mid_reader", ", attributes: {email: keeper@example.com}"),
        )
    )  # fmt: skip
    (config / "mesh.yaml").write_text(CHAIN_MESH + users, encoding="utf-8")
    (config / "products.yaml").write_text(CHAIN_PRODUCTS, encoding="utf-8")
    return config


@pytest.fixture
def chain(chain_dir: Path) -> Iterator[QueryService]:
    service = QueryService.from_config(chain_dir)
    yield service
    service.close()


def entry(product: str, column: str, upstream: str, upstream_column: str, depth: int,
          source: tuple[str, str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    domain, name = upstream.split(".")
    origin = source or (None, None, None)
    return {"product": product, "column_name": column, "upstream_domain": domain,
            "upstream_product": name, "upstream_column": upstream_column, "depth": depth,
            "source": origin[0], "source_table": origin[1], "source_column": origin[2]}  # fmt: skip


EVENTS = ("chain_db", "raw_events")
CATEGORIES = ("chain_db", "category_codes")


def test_a_three_level_chain_traces_each_column_down_to_its_source_columns(
    chain: QueryService,
) -> None:
    assert rows(chain, "SELECT * FROM top.report ORDER BY label", "admin") == [
        {"label": "APPLES", "grand_total": 22.0, "last_day": dt.date(2026, 1, 3)},
        {"label": "BREAD", "grand_total": 10.0, "last_day": dt.date(2026, 1, 2)},
    ]
    assert rows(chain, LINEAGE, "admin") == [
        entry("daily", "category", "base.events", "category", 1, (*EVENTS, "cat")),
        entry("daily", "day", "base.events", "day", 1, (*EVENTS, "ts")),
        entry("daily", "total", "base.events", "amount", 1, (*EVENTS, "amt")),
        entry("labelled", "category_label", "base.categories", "label", 1,
              (*CATEGORIES, "lbl")),
        entry("labelled", "day", "mid.daily", "day", 1),
        entry("labelled", "day", "base.events", "day", 2, (*EVENTS, "ts")),
        entry("labelled", "doubled", "mid.daily", "total", 1),
        entry("labelled", "doubled", "base.events", "amount", 2, (*EVENTS, "amt")),
        entry("report", "grand_total", "mid.labelled", "doubled", 1),
        entry("report", "grand_total", "mid.daily", "total", 2),
        entry("report", "grand_total", "base.events", "amount", 3, (*EVENTS, "amt")),
        entry("report", "label", "mid.labelled", "category_label", 1),
        entry("report", "label", "base.categories", "label", 2, (*CATEGORIES, "lbl")),
        entry("report", "last_day", "mid.labelled", "day", 1),
        entry("report", "last_day", "mid.daily", "day", 2),
        entry("report", "last_day", "base.events", "day", 3, (*EVENTS, "ts")),
    ]  # fmt: skip


def test_lineage_through_an_ungranted_product_is_left_out_and_sources_are_for_admins(
    chain: QueryService,
) -> None:
    # viewer reads top.report and base.*, but the chain between them runs through mid.*.
    viewer = rows(chain, "SELECT * FROM meshgate.lineage", "viewer")
    assert viewer == []
    assert rows(chain, "SELECT count(*) AS n FROM top.report", "viewer") == [{"n": 2}]
    # keeper reads mid.* and base.*: their lineage, with no physical name.
    keeper = rows(chain, LINEAGE, "keeper")
    assert {r["product"] for r in keeper} == {"daily", "labelled"}
    assert len(keeper) == 8
    assert {(r["source"], r["source_table"], r["source_column"]) for r in keeper} == {
        (None, None, None)
    }
    assert "report" not in json.dumps(keeper)


# --- OpenLineage ---------------------------------------------------------------------------

RUN_FACETS: dict[str, Any] = {
    "meshgate": MeshgateRunFacet,
    "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
    "errorMessage": error_message_run.ErrorMessageRunFacet,
    "tags": tags_run.TagsRunFacet,
}
JOB_FACETS: dict[str, Any] = {"sql": sql_job.SQLJobFacet, "jobType": job_type_job.JobTypeJobFacet}


def typed_facet(classes: dict[str, Any], name: str, body: dict[str, Any]) -> Any:
    fields = {k: v for k, v in body.items() if not k.startswith("_")}
    if name == "tags":
        fields["tags"] = [tags_run.TagsRunFacetFields(**t) for t in fields["tags"]]
    return classes[name](**fields, producer=body["_producer"])


def typed_event(line: str) -> RunEvent:
    """`line` rebuilt with the client's typed classes (their validators check UUIDs, times and
    URIs), after checking it serialises back to exactly the same JSON.

    openlineage-python 1.54.0 ships no OpenLineage.json schema file (only the classes
    generated from it), so its typed classes are the schema checked against here.
    """
    body = json.loads(line)
    run, job = body["run"], body["job"]
    event = RunEvent(
        eventType=RunState(body["eventType"]),
        eventTime=body["eventTime"],
        producer=body["producer"],
        run=Run(runId=run["runId"],
                facets={k: typed_facet(RUN_FACETS, k, v) for k, v in run["facets"].items()}),
        job=Job(namespace=job["namespace"], name=job["name"],
                facets={k: typed_facet(JOB_FACETS, k, v) for k, v in job["facets"].items()}),
        inputs=[InputDataset(namespace=i["namespace"], name=i["name"]) for i in body["inputs"]],
        outputs=[],
    )  # fmt: skip
    assert Serde.to_dict(event) == body
    assert event.schemaURL == body["schemaURL"]
    return event


def facet(facets: Mapping[str, object] | None, name: str, kind: type[T]) -> T:
    found = (facets or {})[name]
    assert isinstance(found, kind)
    return found


def test_the_file_transport_receives_one_valid_event_per_query(
    demo_dir: Path, tmp_path: Path
) -> None:
    config = copy_demo(
        demo_dir,
        tmp_path / "config",
        "server:\n  openlineage: {transport: file, path: lineage/events.jsonl}\n",
    )
    service = QueryService.from_config(config)
    queries = [
        ("analyst", "SELECT count(*) FROM sales.orders"),
        ("analyst", "SELECT o.amount, e.region FROM sales.orders AS o "
                    "JOIN hr.employees AS e ON o.employee_id = e.id LIMIT 5"),
        ("admin", "SELECT * FROM finance.revenue_by_region"),
        ("analyst", "SELECT count(*) FROM sales.orders"),
        ("analyst", "SELECT * FROM finance.budgets"),  # refused: not granted
    ]  # fmt: skip
    try:
        for user, sql in queries:
            try:
                service.query(sql, service.principal(user))
            except ProductNotFound:
                assert user == "analyst"
    finally:
        service.close()  # sends what is queued
    lines = (config / "lineage" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [typed_event(line) for line in lines]
    assert len(events) == len(queries)
    assert [e.eventType for e in events] == [RunState.COMPLETE] * 4 + [RunState.FAIL]
    assert [[i.name for i in e.inputs or ()] for e in events] == [
        ["sales.orders"], ["sales.orders", "hr.employees"], ["finance.revenue_by_region"],
        ["sales.orders"], []]  # fmt: skip
    assert {i.namespace for e in events for i in e.inputs or ()} == {"demo"}
    assert [e.job.name for e in events] == [job_name(sql) for _, sql in queries]
    assert events[0].job.name == events[3].job.name  # the same SQL is the same job
    assert len({e.run.runId for e in events}) == len(queries)
    for event, (user, sql) in zip(events, queries, strict=True):
        assert event.job.namespace == "demo"
        assert facet(event.job.facets, "sql", sql_job.SQLJobFacet).query == sql
        assert facet(event.run.facets, "meshgate", MeshgateRunFacet).user == user
    failed = facet(events[-1].run.facets, "errorMessage", error_message_run.ErrorMessageRunFacet)
    assert failed.message.startswith("data product 'finance.budgets' does not exist")
    assert "hr_db" not in "".join(lines)  # no physical source name leaves in an event


class _Collector(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Collector.received.append({"path": self.path,
                                    "event": json.loads(self.rfile.read(length))})  # fmt: skip
        self.send_response(201)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def test_the_http_transport_posts_each_event_and_a_dead_endpoint_fails_no_query(
    demo_dir: Path, tmp_path: Path
) -> None:
    listener = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{listener.server_port}"
    config = copy_demo(demo_dir, tmp_path / "live", "server:\n  openlineage: "
                       f"{{transport: http, url: '{url}', namespace: lake}}\n")  # fmt: skip
    service = QueryService.from_config(config)
    try:
        service.query("SELECT count(*) FROM sales.customers", service.principal("partner"))
    finally:
        service.close()
        listener.shutdown()
    assert [r["path"] for r in _Collector.received] == ["/api/v1/lineage"]
    event = _Collector.received[0]["event"]
    assert [(i["namespace"], i["name"]) for i in event["inputs"]] == [("lake", "sales.customers")]
    assert event["run"]["facets"]["meshgate"]["user"] == "partner"
    # Nothing listens on the listener's port any more: queries still answer.
    dead = copy_demo(demo_dir, tmp_path / "dead", "server:\n  openlineage: "
                     f"{{transport: http, url: '{url}', timeout_seconds: 0.5}}\n")  # fmt: skip
    service = QueryService.from_config(dead)
    try:
        table = service.query("SELECT count(*) AS n FROM sales.orders", service.principal("admin"))
        assert table.column("n").to_pylist()[0] > 0
    finally:
        assert service.run_events is not None
        service.run_events.close(timeout=0.5)  # the event is lost; do not wait for retries
        service.close()


# --- usage ---------------------------------------------------------------------------------


def week(figures: dict[str, Any]) -> tuple[int | None, int | None]:
    """Queries and distinct users of the last 7 days."""
    return figures["queries_7d"], figures["users_7d"]


def test_usage_counts_queries_and_users_and_shows_users_to_admins_and_owners_only(
    chain: QueryService, chain_dir: Path
) -> None:
    for user, sql in (("keeper", "SELECT * FROM base.events"),
                      ("keeper", "SELECT * FROM base.events"),
                      ("viewer", "SELECT id FROM base.events"),
                      ("viewer", "SELECT * FROM top.report"),
                      ("admin", "SELECT * FROM mid.daily")):  # fmt: skip
        chain.query(sql, chain.principal(user))
    usage = "SELECT * FROM meshgate.usage ORDER BY domain, product"
    figures = {(r["domain"], r["product"]): r for r in rows(chain, usage, "admin")}
    assert {k: (r["queries_7d"], r["queries_30d"], r["users_7d"], r["users_30d"])
            for k, r in figures.items()} == {
        ("base", "categories"): (0, 0, 0, 0), ("base", "events"): (3, 3, 2, 2),
        ("mid", "daily"): (1, 1, 1, 1), ("mid", "labelled"): (0, 0, 0, 0),
        ("top", "report"): (1, 1, 1, 1)}  # fmt: skip
    # keeper owns base (its email) and reads mid: user counts for base only; no top at all.
    keeper = {(r["domain"], r["product"]): r for r in rows(chain, usage, "keeper")}
    assert set(keeper) == {("base", "categories"), ("base", "events"), ("mid", "daily"),
                           ("mid", "labelled")}  # fmt: skip
    assert week(keeper[("base", "events")]) == (3, 2)
    assert week(keeper[("mid", "daily")]) == (1, None)
    # The figures come from the audit file: a restarted server still has them, and a query
    # ten days old counts in the 30-day window only.
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).isoformat(timespec="milliseconds")
    with (chain_dir / "audit" / "audit.jsonl").open("a", encoding="utf-8") as audit:
        audit.write(json.dumps({"time": old, "user": "viewer", "outcome": "ok",
                                "products": ["base.categories"]}) + "\n")  # fmt: skip
    restarted = QueryService.from_config(chain_dir)
    try:
        again = {(r["domain"], r["product"]): r for r in rows(restarted, usage, "admin")}
    finally:
        restarted.close()
    assert week(again[("base", "events")]) == (3, 2)
    categories = again[("base", "categories")]
    assert (categories["queries_7d"], categories["queries_30d"], categories["users_30d"]) == (
        0,
        1,
        1,
    )
    assert categories["last_queried"] == old


def test_an_openlineage_transport_without_its_target_is_a_config_error(
    demo_dir: Path, tmp_path: Path
) -> None:
    config = copy_demo(demo_dir, tmp_path / "bad", "server:\n  openlineage: {transport: http}\n")
    with pytest.raises(ConfigError, match="`transport: http` needs `url`"):
        load_definition(config)
