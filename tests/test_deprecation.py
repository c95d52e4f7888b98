"""Deprecated products: queries still run; the caller, the audit and the catalog are told.

The mesh is the demo with `sales.orders` deprecated in favour of `finance.orders_ledger`, a
product only admins may read: the successor is named to them and to nobody else.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import psycopg
import pytest
import yaml
from pyarrow import flight
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client
from werkzeug.wrappers import Response

from meshgate.cli import main
from meshgate.server import running_server
from meshgate.server.catalog_web import Connection, catalog_app
from meshgate.server.postgres import PostgresFrontEnd
from meshgate.server.proto import flight_sql_pb2 as pb
from meshgate.service import QueryService
from tests.server.flightsql_clients import descriptor

REASON = "the ledger adds the currency of each order \N{EN DASH} see the data wiki"


def deprecated_mesh(demo_dir: Path, target: Path, **deprecation: Any) -> Path:
    """A copy of the demo whose sales.orders is deprecated as given (default: to the ledger)."""
    shutil.copytree(demo_dir, target, ignore=shutil.ignore_patterns("data"))
    (target / "data").symlink_to(demo_dir / "data")
    sales = yaml.safe_load((target / "sales.yaml").read_text())
    finance = yaml.safe_load((target / "finance.yaml").read_text())
    orders = next(p for p in sales["products"] if p["name"] == "orders")
    finance["products"].append({**orders, "domain": "finance", "name": "orders_ledger"})
    orders["deprecated"] = deprecation or {
        "successor": "finance.orders_ledger", "sunset": dt.date(2027, 1, 31), "reason": REASON}
    (target / "sales.yaml").write_text(yaml.safe_dump(sales, sort_keys=False))
    (target / "finance.yaml").write_text(yaml.safe_dump(finance, sort_keys=False))
    return target


@pytest.fixture(scope="module")
def service(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    mesh = deprecated_mesh(demo_dir, tmp_path_factory.mktemp("deprecated") / "mesh")
    svc = QueryService.from_config(mesh)
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def uri(service: QueryService) -> Iterator[str]:
    with running_server(service) as server:
        yield f"grpc://127.0.0.1:{server.port}"


class Headers(flight.ClientMiddlewareFactory):  # type: ignore[misc]
    """Keeps the response headers (and trailers) of every call, by method, as a pyarrow.flight
    user would read them."""

    def __init__(self) -> None:
        self.received: list[tuple[flight.FlightMethod, dict[str, list[str]]]] = []

    def start_call(self, info: flight.CallInfo) -> flight.ClientMiddleware:
        call: dict[str, list[str]] = {}
        self.received.append((info.method, call))

        class Received(flight.ClientMiddleware):  # type: ignore[misc]
            def received_headers(self, headers: dict[str, list[str]]) -> None:
                for key, values in headers.items():
                    call.setdefault(key, []).extend(values)

        return Received()


def warnings_of(uri: str, user: str, sql: str) -> tuple[int, list[list[str]]]:
    """Rows of `sql` run with GetFlightInfo + DoGet, and the warnings each of the two got."""
    headers = Headers()
    client = flight.connect(uri, middleware=[headers])
    try:
        name, value = client.authenticate_basic_token(user.encode(), user.encode())
        options = flight.FlightCallOptions(headers=[(name, value)])
        headers.received.clear()
        info = client.get_flight_info(descriptor(pb.CommandStatementQuery(query=sql)), options)
        rows = client.do_get(info.endpoints[0].ticket, options).read_all().num_rows
    finally:
        client.close()
    assert [method for method, _ in headers.received] == [
        flight.FlightMethod.GET_FLIGHT_INFO, flight.FlightMethod.DO_GET]
    return rows, [call.get("x-meshgate-warning", []) for _, call in headers.received]


EXPECTED = ("sales.orders is deprecated and may be removed after 2027-01-31{successor} "
            "(the ledger adds the currency of each order \\u2013 see the data wiki)")


def test_a_pyarrow_flight_client_is_warned_on_get_flight_info_and_do_get(uri: str) -> None:
    rows, warnings = warnings_of(uri, "admin", "SELECT order_id FROM sales.orders")
    assert rows > 0
    warning = EXPECTED.format(successor="; use finance.orders_ledger instead")
    assert warnings == [[warning], [warning]]


def test_the_successor_is_named_only_to_callers_who_may_read_it(uri: str) -> None:
    rows, warnings = warnings_of(uri, "partner", "SELECT o.order_id FROM sales.orders AS o")
    assert rows > 0
    assert warnings == [[EXPECTED.format(successor="")]] * 2
    assert "finance" not in str(warnings)


def test_a_query_on_current_products_has_no_warning(uri: str) -> None:
    rows, warnings = warnings_of(uri, "partner", "SELECT * FROM sales.order_items")
    assert rows > 0
    assert warnings == [[], []]


def test_adbc_still_runs_the_query_and_the_audit_record_lists_the_product(
    uri: str, service: QueryService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meshgate.service")
    with flightsql.connect(uri, db_kwargs={"username": "partner", "password": "partner"},
                           autocommit=True) as conn, conn.cursor() as cursor:  # fmt: skip
        cursor.execute("SELECT count(*) FROM sales.orders JOIN sales.order_items "
                       "USING (order_id)")
        assert cursor.fetchone()[0] > 0  # type: ignore[index]
    record = [r for r in service.audit.records("partner") if "JOIN sales.order_items" in r.sql][-1]
    assert (record.outcome, record.products, record.deprecated) == (
        "ok", ("sales.orders", "sales.order_items"), ("sales.orders",))
    assert '"deprecated":["sales.orders"]' in record.json()
    logged = [r.getMessage() for r in caplog.records if r.name == "meshgate.service"]
    assert f"query {record.query_id} by partner: {EXPECTED.format(successor='')}".replace(
        "\\u2013", "\N{EN DASH}") in logged


def test_postgres_wire_clients_get_a_warning_notice(service: QueryService) -> None:
    front_end = PostgresFrontEnd(service).start()
    dsn = f"postgresql://partner:partner@127.0.0.1:{front_end.port}/meshgate"
    try:
        notices: list[tuple[str | None, str | None, str | None]] = []
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.add_notice_handler(
                lambda d: notices.append((d.severity, d.sqlstate, d.message_primary)))
            rows = connection.execute("SELECT order_id FROM sales.orders").fetchall()
            connection.execute("SELECT sku FROM sales.order_items").fetchall()
        psql = subprocess.run(["psql", "-X", "-A", "-t", dsn, "-c",
                               "SELECT count(*) FROM sales.orders"],
                              env={**os.environ, "PGCONNECT_TIMEOUT": "10"}, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
    finally:
        front_end.shutdown()
    assert rows
    warning = EXPECTED.format(successor="").replace("\\u2013", "\N{EN DASH}")
    assert notices == [("WARNING", "01P01", warning)]  # one, for the deprecated product only
    assert psql.returncode == 0, psql.stderr
    assert psql.stderr == f"WARNING:  {warning}\n"
    assert int(psql.stdout) == len(rows)


def test_meshgate_products_shows_the_deprecation_as_the_caller_may_see_it(
    service: QueryService,
) -> None:
    sql = ("SELECT product, deprecated, successor, sunset FROM meshgate.products "
           "WHERE domain = 'sales' ORDER BY product")
    expected = [("customers", False, None, None), ("order_items", False, None, None),
                ("orders", True, "finance.orders_ledger", dt.date(2027, 1, 31))]
    admin = service.query(sql, service.principal("admin")).to_pylist()
    assert [tuple(r.values()) for r in admin] == expected
    partner = service.query(sql, service.principal("partner")).to_pylist()
    assert [tuple(r.values()) for r in partner] == [*expected[:2], ("orders", True, None,
                                                                     dt.date(2027, 1, 31))]


def catalog_page(service: QueryService, user: str, path: str) -> str:
    """A catalog web page as `user` sees it (the app itself, through Flask's test client)."""
    app = catalog_app(lambda: service, Connection("127.0.0.1", 8815))
    client = Client(DispatcherMiddleware(Response("not here", status=404), {"/catalog": app}))
    signed_in = client.post("/catalog/signin", data={"user": user, "password": user,
                                                     "next": "/catalog/"})  # fmt: skip
    assert signed_in.status_code == 303
    page = client.get(f"/catalog{path}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_the_catalog_page_shows_the_deprecation(service: QueryService) -> None:
    admin = catalog_page(service, "admin", "/products/sales/orders")
    assert ('<span class="badge deprecated">deprecated</span> may be removed after 2027-01-31; '
            'use <a href="/catalog/products/finance/orders_ledger">finance.orders_ledger</a> '
            "instead (the ledger adds the currency of each order \N{EN DASH} see the data wiki)"
            ) in admin
    partner = catalog_page(service, "partner", "/products/sales/orders")
    assert "may be removed after 2027-01-31 (the ledger adds" in partner
    assert "orders_ledger" not in partner
    assert 'id="deprecated"' not in catalog_page(service, "partner", "/products/sales/customers")


def test_meshgate_catalog_lists_the_deprecation(
    service: QueryService, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(service.definition.directory)
    listed = "sales.orders [table, v1.0.0, deprecated until 2027-01-31{}]: One row per"
    assert main(["catalog", "--config", config]) == 0
    assert listed.format(" -> finance.orders_ledger") in capsys.readouterr().out
    assert main(["catalog", "--config", config, "--user", "partner"]) == 0
    out = capsys.readouterr().out
    assert listed.format("") in out
    assert "orders_ledger" not in out


def test_meshgate_check_tells_the_owners_of_products_defined_over_it(
    service: QueryService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--config", str(service.definition.directory)]) == 0
    assert ("product finance.revenue_by_region: SQL definition plans over the declared products;"
            " it reads a deprecated product: sales.orders is deprecated and may be removed after "
            "2027-01-31; use finance.orders_ledger instead") in capsys.readouterr().out


@pytest.mark.parametrize(("deprecation", "message"), [
    ({"successor": "sales.order_itemz", "sunset": "2027-01-31"},
     "deprecated.successor: product 'sales.order_itemz' is not declared under `products:`; "
     "did you mean 'sales.order_items'?"),
    ({"successor": "sales.orders", "sunset": "2027-01-31"},
     "deprecated.successor: a product cannot succeed itself"),
    ({"sunset": "31/01/2027"},
     "deprecated.sunset: '31/01/2027' is not a date: write it as YYYY-MM-DD, e.g. 2027-01-31"),
    ({"sunset": 1800000000}, "deprecated.sunset: 1800000000 is not a date"),
    ({"successor": "sales.order_items"}, "deprecated.sunset: "),
])  # fmt: skip
def test_a_bad_deprecation_is_a_config_error(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    deprecation: dict[str, Any], message: str,
) -> None:  # fmt: skip
    mesh = deprecated_mesh(demo_dir, tmp_path / "mesh", **deprecation)
    assert main(["check", "--config", str(mesh)]) == 2
    err = capsys.readouterr().err
    assert "sales.yaml:" in err
    assert f"products[0].{message}" in err
