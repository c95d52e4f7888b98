"""Many clients at once against one `meshgate serve`, every answer checked, PostgreSQL cut midway.

    python -m benchmarks.load --clients 16 --seconds 60 --pg-dsn DSN \\
        [--cut-postgres-at 20 --restore-at 35]

Builds the mesh of `load_mesh` (PostgreSQL in a database of its own, Parquet, DuckDB; an admin
and a masked analyst), computes every expected answer from the reference DuckDBs, starts a
real `meshgate serve`, and runs `--clients` client processes (half admin, half analyst) over
ADBC Flight SQL for `--seconds`, each drawing queries from the mix of `load_queries` at random
and comparing every result with its expected answer. It prints qps, latency percentiles per
query kind, errors by gRPC code, wrong results and the server's memory (VmRSS sampled from
/proc, and VmHWM), and exits 1 on any wrong result or unexpected error, or when the server's
RSS kept growing.

With `--cut-postgres-at`, meshgate reaches PostgreSQL through a TCP proxy (tests/faults/proxy.py)
and the proxy is cut then (new connections refused, established ones dropped) and restored at
`--restore-at`: the shared PostgreSQL itself is never stopped. Queries that read PostgreSQL and
overlap the outage (or the `--recovery-seconds` after it) may fail, and only with UNAVAILABLE
or DEADLINE_EXCEEDED; every other query must answer right throughout, and after the restore
PostgreSQL queries must answer again without restarting meshgate.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from urllib.parse import urlsplit

import adbc_driver_flightsql.dbapi as flightsql

from benchmarks.load_client import CLIENT_TIMEOUT_SECONDS, ClientSpec, Outcome, query, run_client
from benchmarks.load_mesh import (
    ADMIN,
    ANALYST,
    PG_POOL_SIZE,
    PG_SOURCE,
    LoadMesh,
    backends,
    load_mesh,
    reference_connections,
)
from benchmarks.load_queries import KINDS, Expected, draw, expected_answers, lookup_keys
from benchmarks.served import meshgate_server
from tests.faults.proxy import FaultProxy

OUTAGE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


@dataclass(frozen=True)
class Outage:
    cut: float  # seconds since the run's start
    restored: float
    recovery_seconds: float

    def covers(self, outcome: Outcome) -> bool:
        """The query overlapped the outage or the recovery after it."""
        return outcome.ended >= self.cut and outcome.started <= self.restored + \
            self.recovery_seconds  # fmt: skip


@dataclass
class LoadReport:
    clients: int
    seconds: float
    outcomes: list[Outcome]
    rss_kib: list[tuple[float, int]]  # (seconds since the start, VmRSS) samples
    peak_kib: int  # VmHWM at the end
    outage: Outage | None = None
    reads_postgres: frozenset[str] = field(default_factory=frozenset)
    seed: int = 0  # of the lookup keys and of every client's choices
    hidden: tuple[str, ...] = ()  # what no analyst's error may mention (source, database, ...)
    server_cpu_seconds: float = 0.0  # user + system time of the server during the run
    phases: dict[str, float] = field(default_factory=dict)  # wall seconds of each step
    backends_after: tuple[int, int] = (0, 0)  # PostgreSQL's active and all, once clients stop

    @property
    def wrong(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result == "wrong"]

    def expected_failure(self, outcome: Outcome) -> bool:
        return (self.outage is not None and outcome.kind in self.reads_postgres
                and outcome.result in OUTAGE_CODES and self.outage.covers(outcome))  # fmt: skip

    @property
    def unexpected(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result not in ("ok", "wrong")
                and not self.expected_failure(o)]  # fmt: skip

    @property
    def leaks(self) -> list[Outcome]:
        """Analysts' errors that mention what only admins may be told."""
        return [o for o in self.outcomes if o.role == ANALYST and o.result != "ok"
                and any(word in o.detail for word in self.hidden)]  # fmt: skip

    @property
    def outage_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if self.expected_failure(o)]

    def rss_growth_kib(self) -> int:
        """VmRSS at the end minus its highest sample in the run's first half (warm-up done)."""
        first = [kib for at, kib in self.rss_kib if at <= self.seconds / 2]
        last = [kib for at, kib in self.rss_kib if at >= self.seconds * 0.9]
        if not first or not last:
            return 0
        return max(last) - max(first)

    def recovered_after(self) -> float | None:
        """Seconds from the restore to the end of the first PostgreSQL query answered after it."""
        if self.outage is None:
            return None
        restored = self.outage.restored
        after = [o.ended - restored for o in self.outcomes if o.kind in self.reads_postgres
                 and o.result == "ok" and o.started >= restored]  # fmt: skip
        return min(after) if after else None


# --- the run ------------------------------------------------------------------------------
@contextmanager
def sampled_rss(pid: int, samples: list[tuple[float, int]], every: float = 0.25
                ) -> Iterator[threading.Event]:  # fmt: skip
    """Sample the process's VmRSS into `samples`, timed from when the event is set."""
    started = threading.Event()
    stop = threading.Event()
    origin = [time.monotonic()]

    def sample() -> None:
        while not stop.wait(every):
            if not started.is_set():
                origin[0] = time.monotonic()
                continue
            samples.append((time.monotonic() - origin[0], proc_status_kib(pid, "VmRSS")))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield started
    finally:
        stop.set()
        thread.join()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def run_load(pg_dsn: str, clients: int, seconds: float, cut_at: float | None = None,
             restore_at: float | None = None, recovery_seconds: float = 5.0,
             seed: int = 0) -> LoadReport:
    """Set up, serve, run the clients (and the outage), tear down; what they all saw."""
    cutting = cut_at is not None
    if cutting and (restore_at is None or not 0 < cut_at < restore_at < seconds):  # type: ignore[operator]
        raise SystemExit("--cut-postgres-at and --restore-at must satisfy "
                         "0 < cut < restore < --seconds")  # fmt: skip
    begun = time.monotonic()
    parts = urlsplit(pg_dsn)
    proxy = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) if cutting else None
    try:
        with tempfile.TemporaryDirectory(prefix="meshgate-load-") as tmp, \
                load_mesh(pg_dsn, Path(tmp), proxy.port if proxy else None) as mesh:  # fmt: skip
            references = reference_connections(mesh)
            keys = lookup_keys(seed)
            expected = {role: expected_answers(ref, keys) for role, ref in references.items()}
            for reference in references.values():
                reference.close()
            with meshgate_server(mesh.directory) as served:
                warm_up(served.uri, expected)
                ready = time.monotonic() - begun
                report = _run_clients(served.uri, served.pid, expected, clients, seconds, proxy,
                                      cut_at, restore_at, recovery_seconds, seed)  # fmt: skip
                report.phases = {"setup, serve and warm-up": ready, **report.phases}
                report.backends_after = settled_backends(mesh)
                stopping = time.monotonic()
            report.phases["server stop"] = time.monotonic() - stopping
            database = urlsplit(mesh.pg_dsn).path.lstrip("/")
            ports = [str(p.port) for p in (proxy,) if p is not None]
            report.hidden = (f"'{PG_SOURCE}'", database, "Traceback", *ports)
            return report
    finally:
        if proxy is not None:
            proxy.close()


def settled_backends(mesh: LoadMesh, seconds: float = 2.0) -> tuple[int, int]:
    """PostgreSQL's backends of the run's database once none is active (or `seconds` on)."""
    deadline = time.monotonic() + seconds
    while True:
        seen = backends(mesh)
        if seen[0] == 0 or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def warm_up(uri: str, expected: Mapping[str, Expected]) -> None:
    """Each kind once per role, checked: a broken setup fails here, before any load."""
    rng = random.Random(0)
    for role, answers in expected.items():
        with flightsql.connect(uri, db_kwargs={"username": role, "password": role},
                               autocommit=True) as conn:
            for kind in KINDS:
                sql, parameters, key = draw(kind, rng, answers)
                seen = query(conn, kind, role, sql, parameters, answers.answer(kind, key),
                             time.monotonic(), 0.0)  # fmt: skip
                if seen.result != "ok":
                    raise SystemExit(f"warm-up {kind.name} as {role}: {seen.result} {seen.detail}")


def _run_clients(uri: str, pid: int, expected: Mapping[str, Expected], clients: int,
                 seconds: float, proxy: FaultProxy | None, cut_at: float | None,
                 restore_at: float | None, recovery_seconds: float, seed: int
                 ) -> LoadReport:  # fmt: skip
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(clients + 1)
    results: multiprocessing.Queue[list[Outcome]] = context.Queue()
    roles = [ADMIN if i % 2 == 0 else ANALYST for i in range(clients)]
    processes = [context.Process(target=run_client, daemon=True, args=(
        ClientSpec(uri, role, seed * 1000 + number, seconds), expected[role], ready, results))
        for number, role in enumerate(roles)]  # fmt: skip
    spawned = time.monotonic()
    for process in processes:
        process.start()
    samples: list[tuple[float, int]] = []
    outage: Outage | None = None
    with sampled_rss(pid, samples) as started:
        ready.wait(timeout=120)
        start = time.monotonic()
        phases = {"client processes up and signed in": start - spawned}
        cpu_at_start = cpu_seconds(pid)
        started.set()
        if proxy is not None and cut_at is not None and restore_at is not None:
            time.sleep(max(0.0, cut_at - (time.monotonic() - start)))
            cut = time.monotonic() - start
            proxy.refuse()  # PostgreSQL "stops": its port refuses, open connections drop
            time.sleep(max(0.0, restore_at - (time.monotonic() - start)))
            restored = time.monotonic() - start
            proxy.resume()  # and "restarts" on the same port
            outage = Outage(cut, restored, recovery_seconds)
        outcomes: list[Outcome] = []
        for _ in processes:
            try:
                outcomes.extend(results.get(timeout=seconds + 2 * CLIENT_TIMEOUT_SECONDS + 60))
            except Empty:
                raise SystemExit("a client process sent no results") from None
        cpu = cpu_seconds(pid) - cpu_at_start
        phases["the run, to the last client's results"] = time.monotonic() - start
    for process in processes:
        process.join(timeout=10)
    reads_postgres = frozenset(kind.name for kind in KINDS if kind.reads_postgres)
    return LoadReport(clients, seconds, outcomes, samples, proc_status_kib(pid, "VmHWM"),
                      outage, reads_postgres, seed, server_cpu_seconds=cpu,
                      phases=phases)  # fmt: skip


# --- the report ---------------------------------------------------------------------------
def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def describe(report: LoadReport) -> list[str]:
    """The figures a reader checks, line by line."""
    outcomes = report.outcomes
    admins = (report.clients + 1) // 2
    lines = [f"meshgate load: {report.clients} client processes ({admins} admin, "
             f"{report.clients - admins} analyst: filtered and masked), {report.seconds:.0f} s, "
             f"ADBC Flight SQL, seed {report.seed}"]  # fmt: skip
    if report.outage is not None:
        lines.append(f"fault: PostgreSQL cut at +{report.outage.cut:.1f} s and restored at "
                     f"+{report.outage.restored:.1f} s through a TCP proxy between meshgate and "
                     "PostgreSQL (tests/faults/proxy.py: new connections refused, established "
                     "ones dropped); the shared PostgreSQL itself is never stopped")  # fmt: skip
    ok = [o for o in outcomes if o.result == "ok"]
    lines.append(f"queries: {len(outcomes)} ({len(ok)} answered right) = "
                 f"{len(outcomes) / report.seconds:.1f} qps; wrong results: {len(report.wrong)}; "
                 f"unexpected errors: {len(report.unexpected)}")  # fmt: skip
    lines.append(f"{'kind':<22}{'source':>7}{'queries':>9}{'ok':>7}{'errors':>8}"
                 f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")  # fmt: skip
    for kind in KINDS:
        mine = [o for o in outcomes if o.kind == kind.name]
        right = [o.latency * 1000 for o in mine if o.result == "ok"]
        errors = sum(o.result not in ("ok", "wrong") for o in mine)
        figures = "".join(f"{percentile(right, q):>9.1f}" for q in (0.5, 0.95, 0.99)) \
            if right else f"{'-':>9}" * 3  # fmt: skip
        source = "pg" if kind.reads_postgres else "-"
        lines.append(f"{kind.name:<22}{source:>7}{len(mine):>9}{len(right):>7}{errors:>8}"
                     f"{figures}")  # fmt: skip
    every = [o.latency * 1000 for o in ok]
    if every:
        lines.append(f"{'all':<22}{'':>7}{len(outcomes):>9}{len(ok):>7}"
                     f"{len(outcomes) - len(ok) - len(report.wrong):>8}"
                     + "".join(f"{percentile(every, q):>9.1f}" for q in (0.5, 0.95, 0.99)))
    codes = Counter(o.result for o in outcomes if o.result not in ("ok", "wrong"))
    expected_codes = Counter(o.result for o in report.outage_failures)
    lines.append("errors by code: " + (", ".join(
        f"{code} {n} ({expected_codes[code]} expected: PostgreSQL queries during the outage)"
        for code, n in sorted(codes.items())) or "none"))  # fmt: skip
    if report.outage is not None:
        outage = report.outage
        during = [o for o in outcomes if o.kind not in report.reads_postgres
                  and o.started >= outage.cut and o.ended <= outage.restored]  # fmt: skip
        lines.append(f"during the outage: {sum(o.result == 'ok' for o in during)} of "
                     f"{len(during)} queries not reading PostgreSQL answered right")  # fmt: skip
        failed = report.outage_failures
        if failed:
            after = sum(o.started >= outage.restored for o in failed)
            lines.append(f"PostgreSQL queries failed from +{min(o.started for o in failed):.1f} s "
                         f"to +{max(o.ended for o in failed):.1f} s; {after} of them began "
                         "after the restore")  # fmt: skip
        for role in (ADMIN, ANALYST):
            told = next((o.detail for o in failed if o.role == role), None)
            if told is not None:
                lines.append(f"  as {role} a client is told: {told.splitlines()[0][:200]}")
        recovered = report.recovered_after()
        lines.append("after the restore: " + (
            f"the first PostgreSQL query answered {recovered:.2f} s later (no meshgate restart)"
            if recovered is not None else "no PostgreSQL query answered"))  # fmt: skip
    lines.append(f"server CPU: {report.server_cpu_seconds:.1f} s in {report.seconds:.0f} s "
                 f"({report.server_cpu_seconds / report.seconds:.2f} cores) on a host with "
                 f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    if report.rss_kib:
        rss = [kib for _, kib in report.rss_kib]
        lines.append(f"server memory: VmRSS first {rss[0] / 1024:.0f} MiB, last "
                     f"{rss[-1] / 1024:.0f} MiB, highest sample {max(rss) / 1024:.0f} MiB; "
                     f"peak VmHWM {report.peak_kib / 1024:.0f} MiB; growth from the first half's "
                     "highest to the last tenth's "
                     f"{report.rss_growth_kib() / 1024:+.0f} MiB")  # fmt: skip
        marks = [report.rss_kib[min(len(report.rss_kib) - 1, int(i * len(report.rss_kib) / 6))]
                 for i in range(7)]  # fmt: skip
        lines.append("VmRSS over the run: " + ", ".join(
            f"+{at:.0f}s {kib / 1024:.0f}" for at, kib in marks) + " MiB")  # fmt: skip
    active, connected = report.backends_after
    lines.append(f"PostgreSQL after the clients stopped: {active} active backends within 2 s, "
                 f"{connected} connections (pool_size {PG_POOL_SIZE})")
    lines.append("wall time: " + ", ".join(f"{name} {took:.1f} s"
                                           for name, took in report.phases.items()))
    for outcome in (report.wrong + report.unexpected)[:10]:
        lines.append(f"  {outcome.result} {outcome.kind} as {outcome.role} at "
                     f"+{outcome.started:.1f} s: {outcome.detail}")  # fmt: skip
    return lines


def problems(report: LoadReport, max_rss_growth_mib: float) -> list[str]:
    """Why the run failed (empty: it passed)."""
    found = []
    if report.wrong:
        found.append(f"{len(report.wrong)} wrong results")
    if report.unexpected:
        found.append(f"{len(report.unexpected)} unexpected errors")
    if not any(o.result == "ok" for o in report.outcomes):
        found.append("no query answered")
    active, connected = report.backends_after
    if active:
        found.append(f"{active} PostgreSQL backends still active 2 s after the clients stopped")
    if connected > PG_POOL_SIZE:
        found.append(f"{connected} PostgreSQL connections, more than pool_size {PG_POOL_SIZE}")
    if report.leaks:
        found.append(f"{len(report.leaks)} analyst errors name the source or its database")
    if report.rss_growth_kib() > max_rss_growth_mib * 1024:
        found.append(f"server RSS grew {report.rss_growth_kib() / 1024:.0f} MiB in the second "
                     f"half (more than {max_rss_growth_mib:.0f})")  # fmt: skip
    if report.outage is not None:
        if not report.outage_failures:
            found.append("no PostgreSQL query failed during the outage: the cut did not bite")
        if report.recovered_after() is None:
            found.append("no PostgreSQL query answered after the restore")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-dsn", required=True,
                        help="a PostgreSQL server where a role may CREATE DATABASE")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cut-postgres-at", type=float, default=None,
                        help="seconds into the run to cut the proxy to PostgreSQL")
    parser.add_argument("--restore-at", type=float, default=None)
    parser.add_argument("--recovery-seconds", type=float, default=5.0,
                        help="after the restore, PostgreSQL queries may still fail this long")
    parser.add_argument("--max-rss-growth-mib", type=float, default=64.0)
    parser.add_argument("--seed", type=int, default=None,
                        help="of the lookup keys and the clients' choices (default: random)")
    args = parser.parse_args(argv)  # fmt: skip
    if (args.cut_postgres_at is None) != (args.restore_at is None):
        parser.error("--cut-postgres-at and --restore-at go together")
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    report = run_load(args.pg_dsn, args.clients, args.seconds, args.cut_postgres_at,
                      args.restore_at, args.recovery_seconds, seed)  # fmt: skip
    for line in describe(report):
        print(line)
    failed = problems(report, args.max_rss_growth_mib)
    print("FAILED: " + "; ".join(failed) if failed else "passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
