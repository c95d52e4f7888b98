"""What governance costs: the same queries as a restricted role and as admin, over TPC-H.

The restricted role reads `tpch.customer` (PostgreSQL) through a row filter keeping about half
the customers and masks PostgreSQL can render; admin reads it raw. Every workload runs as
both, in interleaved rounds against one `meshgate serve` process, queried over ADBC Flight
SQL. Rows that left PostgreSQL come from the server's audit lines (rows per fragment), and
are set beside what the row filter admits, counted in PostgreSQL itself.
"""

from __future__ import annotations

import math
import re
import shutil
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_postgresql.dbapi as pg
import yaml

from benchmarks.served import AuditLog, meshgate_server
from benchmarks.tpch import DOMAIN, FILES_SOURCE, PG_SOURCE, tpch_queries

PRODUCT = f"{DOMAIN}.customer"
ADMIN = "admin"
RESTRICTED = "restricted"
ROW_FILTER = "c_nationkey < 13"  # nations 0-12 of 25: about 52% of the customers
MASKS: dict[str, Any] = {
    "c_phone": "redact",
    "c_acctbal": "null",
    "c_address": {"expression": "left(c_address, 3) || '...'"},
}
HEADER = "# Written by `python -m benchmarks.run policy`; regenerated on every run.\n"
TIMING_SECONDS = 0.2  # a timing of a short workload repeats it to about this much work
MAX_REPETITIONS = 20
POLICY_SUFFIX = "-policy"  # the copy sits beside DIR: config loading reads DIR recursively


@dataclass(frozen=True)
class Workload:
    name: str
    sql: str


def workloads() -> tuple[Workload, ...]:
    """Scans, a filter, a group by and joins over the customer product."""
    return (
        Workload("scan", f"SELECT * FROM {PRODUCT}"),
        Workload(
            "filter",
            f"SELECT c_custkey, c_name, c_phone, c_acctbal FROM {PRODUCT} "
            "WHERE c_custkey BETWEEN 50000 AND 50999",
        ),
        Workload(
            "group_by",
            f"SELECT c_mktsegment, count(*) AS customers, count(c_acctbal) AS with_balance, "
            f"max(c_phone) AS phone FROM {PRODUCT} GROUP BY c_mktsegment",
        ),
        Workload(
            "join_orders",
            f"SELECT c.c_name, o.o_orderkey, o.o_orderdate, o.o_totalprice "
            f"FROM {PRODUCT} c JOIN {DOMAIN}.orders o ON c.c_custkey = o.o_custkey "
            "WHERE c.c_mktsegment = 'BUILDING' AND o.o_orderdate < DATE '1995-03-15'",
        ),
        # TPC-H Q3: customer and orders (PostgreSQL) joined with lineitem (Parquet).
        Workload("q3_lineitem", tpch_queries()[2]),
    )


@dataclass(frozen=True)
class FragmentRows:
    source: str
    rows: int
    reads_customer: bool
    sql: str


@dataclass
class RoleRun:
    """One role's runs of one workload."""

    seconds: list[float] = field(default_factory=list)
    rows: int = 0
    fragments: tuple[FragmentRows, ...] = ()

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def postgres_rows(self) -> int:
        return sum(f.rows for f in self.fragments if f.source == PG_SOURCE)

    @property
    def customer_rows(self) -> int:
        """Rows of the PostgreSQL fragments that read the customer table."""
        return sum(f.rows for f in self.fragments if f.source == PG_SOURCE and f.reads_customer)


@dataclass(frozen=True)
class PolicyTiming:
    workload: Workload
    admin: RoleRun
    restricted: RoleRun
    admitted: int  # customers the row filter admits, counted in PostgreSQL

    @property
    def ratio(self) -> float:
        """restricted / admin median time: the cost of the policy."""
        return self.restricted.median / self.admin.median

    @property
    def within_filter(self) -> bool:
        """No restricted PostgreSQL fragment reading customer sent more than the filter admits.

        A fragment reading customer alone sends filtered customers; one that joins the fenced
        barrier with orders (join_orders, q3_lineitem) sends join rows, where the bound is only
        a sanity check: tests/postgres/test_policy_fence.py proves the fence itself.
        """
        return all(
            f.rows <= self.admitted
            for f in self.restricted.fragments
            if f.source == PG_SOURCE and f.reads_customer
        )


# --- the mesh with a policy -----------------------------------------------------------------
def write_policy_mesh(directory: Path) -> Path:
    """A copy of the TPC-H mesh in `<directory>-policy` with a restricted role on customer.

    The product and source files are copied (the Parquet path made absolute); access.yaml
    declares `admin` (everything, raw) and `restricted` (every TPC-H product, customer under
    the row filter and masks); users of the same names and passwords.
    """
    from meshgate.principal import hash_password

    directory = directory.resolve()
    target = directory.with_name(directory.name + POLICY_SUFFIX)
    if target.exists():
        access_file = target / "access.yaml"
        if not access_file.is_file() or not access_file.read_text().startswith(HEADER):
            raise SystemExit(f"{target} exists and was not written by this benchmark; move it")
        shutil.rmtree(target)
    target.mkdir()
    mesh = yaml.safe_load((directory / "mesh.yaml").read_text(encoding="utf-8"))
    for source in mesh["sources"]:
        if source["name"] == FILES_SOURCE:
            source["options"]["path"] = str(directory / source["options"]["path"])
    shutil.copy(directory / "products.yaml", target / "products.yaml")
    access = {
        "roles": [
            {"name": ADMIN, "description": "Reads everything, raw.", "grants": ["*"]},
            {"name": RESTRICTED, "description": "Reads tpch, customer filtered and masked.",
             "grants": [f"{DOMAIN}.*"]},
        ],
        "users": [
            {"name": ADMIN, "password_hash": hash_password(ADMIN), "roles": [ADMIN]},
            {"name": RESTRICTED, "password_hash": hash_password(RESTRICTED),
             "roles": [RESTRICTED]},
        ],
        "policies": [
            {"product": PRODUCT, "role": RESTRICTED, "row_filter": ROW_FILTER, "masks": MASKS},
        ],
    }  # fmt: skip
    for name, content in (("mesh.yaml", mesh), ("access.yaml", access)):
        text = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100)
        (target / name).write_text(HEADER + text, encoding="utf-8")
    return target


def admitted_rows(pg_dsn: str, pg_schema: str = "tpch") -> int:
    """Customers the row filter admits, counted by PostgreSQL (product columns = its columns)."""
    with pg.connect(pg_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{pg_schema}".customer WHERE {ROW_FILTER}')
        return int(cursor.fetchone()[0])


# --- measuring ------------------------------------------------------------------------------
def run_policy(
    directory: Path, pg_dsn: str, repeat: int, pg_schema: str = "tpch"
) -> list[PolicyTiming]:
    """One warm-up round, then `repeat` rounds of every workload as admin and as restricted."""
    mesh = write_policy_mesh(directory)
    admitted = admitted_rows(pg_dsn, pg_schema)
    customer_table = re.compile(rf'"?{re.escape(pg_schema)}"?\."?customer"?\b')
    chosen = workloads()
    runs = {(w.name, role): RoleRun() for w in chosen for role in (ADMIN, RESTRICTED)}
    with meshgate_server(mesh) as served:
        clients = {
            role: flightsql.connect(
                served.uri, db_kwargs={"username": role, "password": role}, autocommit=True
            )
            for role in (ADMIN, RESTRICTED)
        }
        try:
            repetitions = {w.name: 1 for w in chosen}
            for round_number in range(repeat + 1):
                for workload in chosen:
                    # Alternate who goes first, so neither role always meets a warm cache.
                    roles = (ADMIN, RESTRICTED) if round_number % 2 else (RESTRICTED, ADMIN)
                    totals = dict.fromkeys(roles, 0.0)
                    # A timing of a short workload is the mean of several runs, the roles
                    # alternating run by run, so that one scheduler hiccup does not decide it.
                    for _ in range(repetitions[workload.name]):
                        for role in roles:
                            seconds, rows, fragments = _run_once(
                                clients[role], served.audit, role, workload.sql, customer_table
                            )
                            totals[role] += seconds
                            run = runs[(workload.name, role)]
                            run.rows, run.fragments = rows, fragments
                    for role in roles:
                        mean = totals[role] / repetitions[workload.name]
                        if round_number > 0:
                            runs[(workload.name, role)].seconds.append(mean)
                        else:
                            repetitions[workload.name] = max(
                                repetitions[workload.name], _repetitions_for(mean)
                            )
                print(f"round {round_number or 'warm-up'} done", flush=True)
        finally:
            for client in clients.values():
                client.close()
    return [
        PolicyTiming(w, runs[(w.name, ADMIN)], runs[(w.name, RESTRICTED)], admitted) for w in chosen
    ]


def _repetitions_for(seconds: float) -> int:
    """How many runs make one timing of a workload that takes `seconds`: about 0.2 s of work."""
    return max(1, min(MAX_REPETITIONS, math.ceil(TIMING_SECONDS / max(seconds, 1e-3))))


def _run_once(
    client: Any, audit: AuditLog, user: str, sql: str, customer_table: re.Pattern[str]
) -> tuple[float, int, tuple[FragmentRows, ...]]:
    logged = len(audit)
    started = time.perf_counter()
    with client.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetch_arrow_table().num_rows
    seconds = time.perf_counter() - started
    record = audit.record_after(logged, user)
    if record.get("outcome") != "ok" or record.get("rows") != rows:
        raise SystemExit(f"audit line does not match the {user} run of {sql!r}: {record}")
    fragments = tuple(
        FragmentRows(f["source"], int(f["rows"]), bool(customer_table.search(f["sql"])), f["sql"])
        for f in record["sources"]
        if f.get("read_by", "source") == "source"  # a merge scan's rows are not counted
    )
    return seconds, rows, fragments


# --- reporting ------------------------------------------------------------------------------
def report(timings: Sequence[PolicyTiming], limit: float) -> str:
    admitted = timings[0].admitted if timings else 0
    lines = [
        f"row filter {ROW_FILTER!r} admits {admitted:,} customers (counted in PostgreSQL)",
        f"{'workload':<12} {'admin s':>8} {'restr. s':>8} {'ratio':>6}  {'rows adm/restr':>17}"
        f"  {'rows out of PG adm/restr':>24}  {'customer rows restr':>19}  within filter",
    ]
    for t in timings:
        lines.append(
            f"{t.workload.name:<12} {t.admin.median:8.3f} {t.restricted.median:8.3f} "
            f"{t.ratio:6.2f}  {t.admin.rows:>8,}/{t.restricted.rows:<8,}"
            f"  {t.admin.postgres_rows:>11,}/{t.restricted.postgres_rows:<12,}"
            f"  {t.restricted.customer_rows:>19,}  {'yes' if t.within_filter else 'NO'}"
        )
    over = [t.workload.name for t in timings if t.ratio > limit]
    geo = statistics.geometric_mean([t.ratio for t in timings]) if timings else 0.0
    lines.append(f"geometric mean ratio {geo:.2f}; above {limit:.2f}: {', '.join(over) or 'none'}")
    return "\n".join(lines)


def as_json(timings: Sequence[PolicyTiming]) -> dict[str, Any]:
    def role(run: RoleRun) -> dict[str, Any]:
        return {
            "median_seconds": run.median,
            "seconds": run.seconds,
            "rows": run.rows,
            "postgres_rows": run.postgres_rows,
            "customer_rows": run.customer_rows,
            "fragments": [vars(f) for f in run.fragments],
        }

    return {
        "row_filter": ROW_FILTER,
        "masks": MASKS,
        "admitted": timings[0].admitted if timings else None,
        "workloads": [
            {"name": t.workload.name, "sql": t.workload.sql, "ratio": t.ratio,
             "within_filter": t.within_filter, "admin": role(t.admin),
             "restricted": role(t.restricted)}
            for t in timings
        ],
    }  # fmt: skip
