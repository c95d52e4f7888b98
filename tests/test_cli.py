"""The `meshgate` command as a user runs it: a separate process, its output and exit code."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import adbc_driver_flightsql.dbapi as flightsql
import pytest
import yaml
from pyarrow import flight

from meshgate.demo.generate import demo_config_dir
from meshgate.principal import verify_password

MESHGATE = Path(sys.executable).with_name("meshgate")


def meshgate(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MESHGATE_TEST_UNSET")}
    environment.update(env or {})
    return subprocess.run(
        [str(MESHGATE), *args], input=stdin, capture_output=True, text=True, timeout=300,
        env=environment, check=False,
    )


def copy_mesh(demo_dir: Path, target: Path) -> Path:
    """A writable copy of the prepared demo (YAML and data) to break on purpose."""
    shutil.copytree(demo_dir, target)
    return target


def edit_yaml(path: Path, document_path: tuple[str | int, ...], value: object) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    node = document
    for part in document_path[:-1]:
        node = node[part]
    node[document_path[-1]] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


BROKEN = {
    "unknown key": ("mesh.yaml", ("sources", 0, "colour"), "blue",
                    "sources[0].colour: unknown key 'colour'"),
    "wrong type": ("mesh.yaml", ("mesh", "name"), ["demo"],
                   "mesh.name: expected text, got a list"),
    "missing source": ("hr.yaml", ("products", 0, "table", "source"), "payroll",
                       "products[0].table.source: source 'payroll' is not declared"),
    "undefined env var": ("mesh.yaml", ("sources", 1, "options", "path"),
                          "${MESHGATE_TEST_UNSET_HR_PATH}",
                          "sources[1].options.path: environment variable "
                          "${MESHGATE_TEST_UNSET_HR_PATH} is not set"),
    "zero token lifetime": ("mesh.yaml", ("server",), {"token_ttl_seconds": 0},
                            "server.token_ttl_seconds: must be greater than 0, got 0"),
    "negative token lifetime": ("mesh.yaml", ("server",), {"token_ttl_seconds": -5},
                                "server.token_ttl_seconds: must be greater than 0, got -5"),
}


@pytest.mark.parametrize("command", ["check", "serve"])
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config_stops_with_file_and_problem(
    command: str, case: str, demo_dir: Path, tmp_path: Path
) -> None:
    file_name, where, value, problem = BROKEN[case]
    mesh = copy_mesh(demo_dir, tmp_path / "mesh")
    edit_yaml(mesh / file_name, where, value)
    extra = ("--port", "0") if command == "serve" else ()
    result = meshgate(command, "--config", str(mesh), *extra)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: invalid configuration in {mesh} (1 problem):\n  ")
    assert re.search(rf"\n  {re.escape(file_name)}:\d+:\d+: {re.escape(problem)}", result.stderr)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["check", "serve"])
def test_check_reports_every_problem_at_once(
    command: str, demo_dir: Path, tmp_path: Path
) -> None:
    """An unknown key, an undeclared source and domain, a bad grant, a bad column type and a
    row filter on an unknown column in one run, sorted by file and line."""
    mesh = copy_mesh(demo_dir, tmp_path / "mesh")
    edit_yaml(mesh / "mesh.yaml", ("sources", 0, "colour"), "blue")
    edit_yaml(mesh / "sales.yaml", ("products", 0, "table", "source"), "sales_dbb")
    edit_yaml(mesh / "sales.yaml", ("products", 0, "columns", 3, "type"), "MONEY")
    edit_yaml(mesh / "finance.yaml", ("products", 0, "domain"), "financ")
    edit_yaml(mesh / "access.yaml", ("roles", 1, "grants"), ["sales"])
    edit_yaml(mesh / "access.yaml", ("policies", 0, "row_filter"),
              "regionx = user_attribute('region')")
    extra = ("--port", "0") if command == "serve" else ()
    result = meshgate(command, "--config", str(mesh), *extra)
    assert result.returncode == 2
    found = [re.sub(r":\d+:\d+:", ":L:C:", line) for line in result.stderr.splitlines()[1:]]
    assert found == [
        "  access.yaml:L:C: roles[1].grants[0]: grant 'sales' must be '*', 'domain.*' or "
        "'domain.product'; did you mean 'sales.*'?",
        "  access.yaml:L:C: policies[0].row_filter: unknown column 'regionx' of hr.employees; "
        "did you mean 'region'?",
        "  finance.yaml:L:C: products[0].domain: domain 'financ' is not declared under "
        "`domains:`; did you mean 'finance'?",
        "  mesh.yaml:L:C: sources[0].colour: unknown key 'colour' (allowed here: name, kind, "
        "options, description)",
        "  sales.yaml:L:C: products[0].table.source: source 'sales_dbb' is not declared under "
        "`sources:`; did you mean 'sales_db'?",
        "  sales.yaml:L:C: products[0].columns[3].type: unknown column type 'MONEY'; supported "
        "types: BOOLEAN, TINYINT, SMALLINT, INTEGER, BIGINT, UTINYINT, USMALLINT, UINTEGER, "
        "UBIGINT, FLOAT, DOUBLE, DECIMAL(p,s), VARCHAR, BLOB, DATE, TIME, TIMESTAMP, "
        "TIMESTAMPTZ, INTERVAL, UUID, JSON, <type>[], STRUCT(name type, ...)",
    ]
    assert result.stderr.startswith(f"error: invalid configuration in {mesh} (6 problems):\n")


def test_missing_config_directory_is_explained(tmp_path: Path) -> None:
    result = meshgate("check", "--config", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "nowhere does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_catalog_lists_domains_and_products(demo_dir: Path) -> None:
    result = meshgate("catalog", "--config", str(demo_dir), "--columns")
    assert result.returncode == 0, result.stderr
    for domain in ("sales", "hr", "finance"):
        assert f"\n{domain} (owner " in result.stdout
    assert "sales.orders [table, v1.0.0]: One row per customer order" in result.stdout
    assert "finance.revenue_by_region [query" in result.stdout
    assert "ssn VARCHAR [pii]: Social security number" in result.stdout
    assert "amount DECIMAL(12,2): Order total in USD." in result.stdout


def test_catalog_for_a_user_shows_only_granted_products(demo_dir: Path) -> None:
    result = meshgate("catalog", "--config", str(demo_dir), "--user", "analyst")
    assert result.returncode == 0, result.stderr
    assert "hr.employees" in result.stdout
    assert "sales.orders" in result.stdout
    assert "\nfinance (owner" not in result.stdout
    assert "finance." not in result.stdout


def test_unknown_user_is_an_error_not_a_traceback(demo_dir: Path) -> None:
    result = meshgate("catalog", "--config", str(demo_dir), "--user", "mallory")
    assert result.returncode == 2
    assert result.stderr == "error: unknown user 'mallory'\n"


def test_check_reports_type_drift_and_missing_columns(demo_dir: Path, tmp_path: Path) -> None:
    mesh = copy_mesh(demo_dir, tmp_path / "mesh")
    edit_yaml(mesh / "sales.yaml", ("products", 0, "columns", 3, "type"), "DECIMAL(10,2)")
    edit_yaml(mesh / "sales.yaml", ("products", 2, "table", "columns", "email"), "e_mail")
    result = meshgate("check", "--config", str(mesh))
    assert result.returncode == 1
    assert "product sales.orders: drift against sales_db.orders" in result.stdout
    assert "column amount: declared DECIMAL(10,2), source has DECIMAL(12,2)" in result.stdout
    assert "product sales.customers: drift against sales_db.customer_master" in result.stdout
    assert "column email (<- e_mail): missing at the source" in result.stdout
    assert "product sales.order_items: matches sales_db.order_items" in result.stdout


def test_unreachable_source_is_reported(demo_dir: Path, tmp_path: Path) -> None:
    mesh = copy_mesh(demo_dir, tmp_path / "mesh")
    (mesh / "data" / "sales.duckdb").unlink()
    result = meshgate("check", "--config", str(mesh))
    assert result.returncode == 1
    assert "source sales_db (duckdb): unreachable" in result.stdout
    assert "product sales.orders: not checked: source sales_db is unreachable" in result.stdout


def test_hash_password_reads_stdin() -> None:
    result = meshgate("hash-password", stdin="s3cret\n")
    assert result.returncode == 0, result.stderr
    stored = result.stdout.strip()
    assert stored.startswith("scrypt$")
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret\n", stored)


def test_hash_password_scram_prints_a_postgresql_verifier_flight_sql_accepts_too() -> None:
    result = meshgate("hash-password", "--scram", "--iterations", "5000", stdin="s3cret\n")
    assert result.returncode == 0, result.stderr
    stored = result.stdout.strip()
    assert stored.startswith("SCRAM-SHA-256$5000:")
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cre", stored)
    cheap = meshgate("hash-password", "--scram", "--iterations", "100", stdin="s3cret\n")
    assert cheap.stderr == "error: --iterations must be at least 4096 (RFC 7677)\n"


def test_hash_password_refuses_empty_input() -> None:
    result = meshgate("hash-password", stdin="")
    assert result.returncode == 2
    assert result.stderr.startswith("error: empty password")


def test_check_passes_on_the_demo(demo_dir: Path) -> None:
    result = meshgate("check", "--config", str(demo_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    for source in ("sales_db (duckdb)", "hr_db (sqlite)", "finance_lake (files)"):
        assert f"source {source}: reachable" in result.stdout
    assert "product sales.customers: matches sales_db.customer_master" in result.stdout
    assert "product finance.revenue_by_region: SQL definition plans" in result.stdout
    assert result.stdout.endswith("\nok\n")


def test_check_plans_products_defined_by_sql(demo_dir: Path, tmp_path: Path) -> None:
    mesh = copy_mesh(demo_dir, tmp_path / "mesh")
    edit_yaml(mesh / "finance.yaml", ("products", 2, "query"),
              "SELECT region, count(*) AS order_count, sum(amount) AS revenue "
              "FROM sales.invoices GROUP BY region")
    result = meshgate("check", "--config", str(mesh))
    assert result.returncode == 1
    assert ("product finance.revenue_by_region: its SQL definition does not plan: "
            "data product 'sales.invoices' does not exist") in result.stdout


def test_query_prints_a_table_with_exact_row_count(demo_dir: Path) -> None:
    result = meshgate("query", "SELECT order_id, amount, ts FROM sales.orders ORDER BY order_id",
                      "--user", "admin", "--config", str(demo_dir), "--max-rows", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split(" | ") == ["order_id", "amount  ", "ts"]
    assert lines[2].startswith("       1 | ")
    assert len(lines) == 5
    assert lines[-1] == "(20000 rows, first 2 shown)"


def test_query_joins_products_of_one_source_and_a_query_product(demo_dir: Path) -> None:
    join = meshgate(
        "query", "SELECT count(*) AS n FROM sales.orders AS o "
        "JOIN sales.customers AS c ON o.customer_id = c.customer_id WHERE c.is_vip",
        "--user", "admin", "--config", str(demo_dir))
    assert join.returncode == 0, join.stderr
    vip_orders = int(join.stdout.splitlines()[2])
    assert 0 < vip_orders < 20_000
    regions = meshgate("query", "SELECT region, order_count FROM finance.revenue_by_region "
                       "ORDER BY region", "--user", "admin", "--config", str(demo_dir))
    assert regions.returncode == 0, regions.stderr
    rows = [line.split(" | ") for line in regions.stdout.splitlines()[2:-1]]
    assert [r[0].strip() for r in rows] == ["APAC", "EU", "US"]
    assert sum(int(r[1]) for r in rows) == 20_000


def test_ungranted_product_answers_like_a_missing_one(demo_dir: Path) -> None:
    hidden = meshgate("query", "SELECT * FROM finance.budgets", "--user", "analyst",
                      "--config", str(demo_dir))
    missing = meshgate("query", "SELECT * FROM finance.forecasts", "--user", "analyst",
                       "--config", str(demo_dir))
    assert hidden.returncode == missing.returncode == 2
    assert hidden.stderr.replace("budgets", "forecasts") == missing.stderr
    assert "Traceback" not in hidden.stderr


def test_query_rejects_writes_without_traceback(demo_dir: Path) -> None:
    result = meshgate("query", "DROP TABLE sales.orders", "--user", "admin",
                      "--config", str(demo_dir))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_explain_shows_the_sql_sent_to_the_source(demo_dir: Path) -> None:
    result = meshgate("explain", "SELECT order_id FROM sales.orders WHERE amount > 1000",
                      "--user", "admin", "--config", str(demo_dir))
    assert result.returncode == 0, result.stderr
    assert re.search(r"source\s*: sales_db", result.stdout)
    assert '"amount" > 1000' in result.stdout
    assert re.search(r"estimated_rows\s*: NULL$", result.stdout, re.MULTILINE), (
        "no statistic supports an estimate of the filter: unknown, not DuckDB's 20% guess"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_serving(uri: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "meshgate serve exited early"
        client = flight.FlightClient(uri)
        try:
            client.authenticate_basic_token("admin", "admin")
            return
        except flight.FlightError:
            time.sleep(0.2)
        finally:
            client.close()
    raise AssertionError(f"nothing answered on {uri} within 60 s")


@pytest.fixture
def served_demo(demo_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [str(MESHGATE), "serve", "--config", str(demo_dir), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    uri = f"grpc://127.0.0.1:{port}"
    try:
        wait_until_serving(uri, process)
        yield uri, process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_serve_answers_adbc_and_stops_cleanly_on_sigterm(
    served_demo: tuple[str, subprocess.Popen[str]],
) -> None:
    uri, process = served_demo
    credentials = {"username": "admin", "password": "admin"}
    with flightsql.connect(uri, db_kwargs=credentials) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) AS n FROM sales.orders")
        assert cursor.fetchone() == (20_000,)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert f"serving mesh 'demo' on {uri}" in stderr
    assert stderr.endswith("meshgate: stopped\n")
    assert "Traceback" not in stderr
    audit = [json.loads(line.split("meshgate.audit: ", 1)[1])
             for line in stderr.splitlines() if "meshgate.audit: " in line]
    assert any(record["user"] == "admin" and record["products"] == ["sales.orders"]
               and record["rows"] == 1 and record["outcome"] == "ok" for record in audit)


def test_serve_on_a_taken_port_says_so(
    served_demo: tuple[str, subprocess.Popen[str]], demo_dir: Path
) -> None:
    uri, _ = served_demo
    result = meshgate("serve", "--config", str(demo_dir), "--port", uri.rsplit(":", 1)[1])
    assert result.returncode == 2
    assert "choose another with --port" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.postgres
def test_postgres_example_checks_and_serves_queries(pg_database: str) -> None:
    """The README's PostgreSQL example as a newcomer runs it: its SQL file through psql, the
    variables pointing at that database, `meshgate check`, then queries as a granted user."""
    example = demo_config_dir().parent / "examples" / "crm-postgres"
    loaded = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg_database, "-f",
         str(example / "crm.sql")], capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    parts = urlsplit(pg_database)
    env = {
        "CRM_PG_USER": parts.username or "",
        "CRM_PG_PASSWORD": parts.password or "",
        "CRM_PG_HOST": parts.netloc.rpartition("@")[2],
        "CRM_PG_DATABASE": parts.path.lstrip("/"),
    }
    check = meshgate("check", "--config", str(example), env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "product customers.accounts: matches crm.public.account" in check.stdout
    query = meshgate("query", "SELECT * FROM customers.accounts_per_country ORDER BY country",
                     "--user", "mo", "--config", str(example), env=env)
    assert query.returncode == 0, query.stderr
    assert query.stdout.splitlines()[2:] == ["DE      |        2", "US      |        1",
                                              "(2 rows)"]
    hidden = meshgate("query", "SELECT email FROM customers.contacts", "--user", "mo",
                      "--config", str(example), env=env)
    assert hidden.returncode == 2
    assert "does not exist or you are not allowed to read it" in hidden.stderr


def test_without_config_the_demo_mesh_is_used() -> None:
    """A fresh clone needs no flags: the demo's data is generated in place on first use."""
    result = meshgate("query", "SELECT count(*) AS n FROM hr.employees", "--user", "admin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].strip() == "1200"
    assert (demo_config_dir() / "data" / "hr.sqlite").is_file()


def test_config_schema_and_reference_print_the_committed_docs() -> None:
    docs = demo_config_dir().parents[1] / "docs"
    schema = meshgate("config", "schema")
    assert schema.returncode == 0, schema.stderr
    assert schema.stdout == (docs / "config.schema.json").read_text(encoding="utf-8")
    assert json.loads(schema.stdout)["title"] == "meshgate config file"
    reference = meshgate("config", "reference")
    assert reference.returncode == 0, reference.stderr
    assert reference.stdout == (docs / "config.md").read_text(encoding="utf-8")


def test_query_runs_a_values_list_with_duckdb_s_names(demo_dir: Path) -> None:
    result = meshgate("query", "VALUES (1, 'a'), (2, 'b')", "--user", "analyst",
                      "--config", str(demo_dir))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [cell.strip() for cell in lines[0].split(" | ")] == ["col0", "col1"]
    assert lines[-1] == "(2 rows)"


def test_an_unexpected_failure_is_one_line_and_exit_70() -> None:
    # A password that is not UTF-8 is a case nothing handles yet: it stands for any failure
    # meshgate did not foresee, which must not reach the user as a Python traceback.
    result = subprocess.run([str(MESHGATE), "hash-password"], input=b"\xff\xfe\n",
                            capture_output=True, timeout=60, check=False)  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == 70
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1
    assert stderr.startswith("error: internal error (UnicodeEncodeError: ")
    assert stderr.endswith("this is a meshgate bug: please report it with the command you ran "
                           "(MESHGATE_TRACEBACK=1 shows the traceback)\n")
