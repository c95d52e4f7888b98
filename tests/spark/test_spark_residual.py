"""The residual on Spark (Spark Connect, a real local cluster): TPC-H answers equal one
DuckDB's, the per-query choice, policies that hold on what Spark is given, cancel, and a
Spark server that is down."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyarrow import flight
from sqlglot import exp, parse_one

from benchmarks.spark_cluster import SparkCluster, free_port
from benchmarks.tpch import tpch_queries
from meshgate.errors import QueryCancelled, SourceUnavailable
from meshgate.execution.engine import DuckDBEngine
from meshgate.execution.spark import SparkEngine
from meshgate.execution.stream import Prefetch
from meshgate.server import running_server
from meshgate.server.proto import flight_pb2
from meshgate.server.proto import flight_sql_pb2 as sql
from meshgate.service import QueryService
from meshgate.spi import CancelToken, QueryContext
from tests.server.flightsql_clients import Session
from tests.spark.conftest import MIN_INPUT_ROWS, residual_config
from tests.tpch.test_differential import _orders, _rows

pytestmark = pytest.mark.postgres

QUERIES = tpch_queries()
BIG = ("SELECT o.o_orderpriority, count(*) AS n, sum(l.l_quantity) AS q FROM tpch.lineitem l "
       "JOIN tpch.orders o ON l.l_orderkey = o.o_orderkey GROUP BY 1 ORDER BY 1")  # fmt: skip
SMALL = ("SELECT s.s_nationkey, count(*) AS n FROM tpch.part p JOIN tpch.supplier s "
         "ON p.p_partkey % 100 = s.s_suppkey % 100 GROUP BY 1 ORDER BY 1")  # fmt: skip


def _merge_row(table: pa.Table) -> dict[str, Any]:
    rows: list[dict[str, Any]] = table.to_pylist()
    return next(r for r in rows if r["step"] == "merge")


@pytest.mark.parametrize("number", range(1, 23), ids=[f"q{n:02d}" for n in range(1, 23)])
def test_tpch_on_spark_matches_one_duckdb(
    number: int, service: QueryService, reference: duckdb.DuckDBPyConnection
) -> None:
    """Column names, Arrow types and every value, as tests/tpch compares DuckDB's residual."""
    query = QUERIES[number - 1]
    admin = service.principal("admin")
    plan = service.explain(query, admin, residual_engine="spark")
    if any(r["step"] == "merge" for r in plan.to_pylist()):
        assert _merge_row(plan)["source"] == "spark"
        assert not any("read by the merge itself" in r["detail"] for r in plan.to_pylist())
    got = service.query(query, admin, residual_engine="spark")
    want = reference.execute(query).to_arrow_table()
    assert got.column_names == want.column_names
    assert got.schema.types == want.schema.types
    got_rows, want_rows = _rows(got), _rows(want)
    if _orders(query):
        assert got_rows == want_rows
    else:
        assert sorted(got_rows, key=repr) == sorted(want_rows, key=repr)


def test_auto_picks_spark_above_min_input_rows_and_duckdb_below(service: QueryService) -> None:
    admin = service.principal("admin")
    big = _merge_row(service.explain(BIG, admin))
    assert big["source"] == "spark"
    assert f"at least server.residual.spark.min_input_rows ({MIN_INPUT_ROWS})" in big["detail"]
    small = _merge_row(service.explain(SMALL, admin))
    assert small["source"] == "duckdb"
    assert f"below server.residual.spark.min_input_rows ({MIN_INPUT_ROWS})" in small["detail"]
    # The estimates are shown to admins only; an analyst is told the engine and `auto`.
    analyst = _merge_row(service.explain(SMALL, service.principal("analyst")))
    assert analyst["source"] == "duckdb"
    assert analyst["detail"] == "merge of the fragments; residual on duckdb (auto)"
    # Either way the answer is the same, in the same order.
    assert service.query(BIG, admin).equals(service.query(BIG, admin, residual_engine="duckdb"))


def test_the_session_option_and_the_call_header_override(service: QueryService) -> None:
    with running_server(service) as server:
        session = Session(f"grpc://127.0.0.1:{server.port}", "admin", "admin")
        explain_small = sql.CommandStatementQuery(query=f"EXPLAIN {SMALL}")
        _, table = session.fetch(explain_small)
        assert _merge_row(table)["source"] == "duckdb"  # auto: below the threshold

        request = flight_pb2.SetSessionOptionsRequest()
        request.session_options["residual_engine"].string_value = "spark"
        [body] = session.action("SetSessionOptions", request.SerializeToString())
        assert dict(flight_pb2.SetSessionOptionsResult.FromString(body).errors) == {}
        _, table = session.fetch(explain_small)
        assert _merge_row(table)["source"] == "spark"
        assert "asked: spark" in _merge_row(table)["detail"]
        _, spark_answer = session.fetch(sql.CommandStatementQuery(query=SMALL))

        headers = [(n.encode(), v.encode()) for n, v in session.headers]
        with_header = flight.FlightCallOptions(
            headers=[*headers, (b"x-meshgate-residual-engine", b"duckdb")])
        command = flight.FlightDescriptor.for_command(_packed(explain_small))
        info = session.client.get_flight_info(command, with_header)
        table = session.client.do_get(info.endpoints[0].ticket, with_header).read_all()
        assert _merge_row(table)["source"] == "duckdb"  # the call's header wins
        assert "asked: duckdb" in _merge_row(table)["detail"]
        assert spark_answer.equals(service.query(SMALL, service.principal("admin")))

        wrong = flight_pb2.SetSessionOptionsRequest()
        wrong.session_options["residual_engine"].string_value = "ray"
        [body] = session.action("SetSessionOptions", wrong.SerializeToString())
        refused = flight_pb2.SetSessionOptionsResult.FromString(body).errors
        assert refused["residual_engine"].value == flight_pb2.SetSessionOptionsResult.INVALID_VALUE
        session.close()


def _packed(command: sql.CommandStatementQuery) -> bytes:
    from google.protobuf import any_pb2

    wrapped = any_pb2.Any()
    wrapped.Pack(command)
    return wrapped.SerializeToString()


POLICY_QUERY = ("SELECT c.c_phone, l.l_returnflag, l.l_comment, count(*) AS n "
                "FROM tpch.lineitem l JOIN tpch.orders o ON l.l_orderkey = o.o_orderkey "
                "JOIN tpch.customer c ON o.o_custkey = c.c_custkey "
                "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 3")  # fmt: skip


def test_the_analysts_filter_and_masks_hold_on_spark(service: QueryService) -> None:
    analyst = service.principal("analyst")
    on_spark = service.query(POLICY_QUERY, analyst, residual_engine="spark")
    on_duckdb = service.query(POLICY_QUERY, analyst, residual_engine="duckdb")
    assert on_spark.num_rows > 0
    assert on_spark.equals(on_duckdb)
    assert set(on_spark.column("l_returnflag").to_pylist()) == {"R"}
    assert all(p.startswith("***-") for p in on_spark.column("c_phone").to_pylist())
    comments = on_spark.column("l_comment").to_pylist()
    assert all(c.startswith("c") and c[1:].isdigit() for c in comments)


def test_spark_is_given_only_post_policy_columns_and_values(
    service: QueryService, spark_mesh: Path, spark_cluster: SparkCluster
) -> None:
    """What is staged for Spark while the query runs: the analyst's rows and masked values,
    never a raw comment or phone, never a row the filter removed."""
    staging = spark_cluster.staging_directory
    earlier = set(staging.iterdir())
    prepared = service.prepare(POLICY_QUERY, service.principal("analyst"),
                               residual_engine="spark")  # fmt: skip
    reader = service.execute(prepared)
    first = reader.read_next_batch()  # Spark has answered; its inputs are still staged
    assert first.num_rows > 0
    (folder,) = [p for p in staging.iterdir() if p not in earlier]
    staged = [pq.read_table(path) for path in sorted((folder / "inputs").rglob("*.parquet"))]
    columns = {name for table in staged for name in table.column_names}
    values = {name: set(table.column(name).to_pylist()) for table in staged
              for name in table.column_names}  # fmt: skip
    raw_lineitem = pq.read_table(spark_mesh / "data" / "lineitem.parquet",
                                 columns=["l_comment", "l_returnflag"])  # fmt: skip
    comments = [v for name, vs in values.items() if "comment" in name for v in vs]
    phones = [v for name, vs in values.items() if "phone" in name for v in vs]
    flags = [v for name, vs in values.items() if "returnflag" in name for v in vs]
    assert comments, columns
    assert phones, columns
    assert flags, columns
    assert not set(comments) & set(raw_lineitem.column("l_comment").to_pylist())
    assert all(c.startswith("c") and c[1:].isdigit() for c in comments)
    assert all(p.startswith("***-") for p in phones)
    assert set(flags) == {"R"}
    reader.close()
    del reader  # pyarrow lets go of the batches' generator (and so of the run) here
    deadline = time.monotonic() + 30
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not folder.exists()  # removed when the query ends


# Twenty-two billion triples: the Spark job runs minutes, long enough to be cancelled in its
# midst (lineitem x orders alone, 900 million pairs, took Spark 3 s: too short to catch).
SLOW = ("SELECT count(*) AS n FROM tpch.lineitem l, tpch.orders o, tpch.nation n "
        "WHERE (l.l_orderkey * 7 + o.o_orderkey * 3 + n.n_nationkey) % 1000003 = 17")


def _jobs(cluster: SparkCluster) -> list[dict[str, Any]]:
    base = f"http://127.0.0.1:{cluster.driver_ui_port}/api/v1/applications"
    with urllib.request.urlopen(base, timeout=60) as answer:
        (application,) = json.load(answer)
    with urllib.request.urlopen(f"{base}/{application['id']}/jobs", timeout=60) as answer:
        jobs: list[dict[str, Any]] = json.load(answer)
    return jobs


def test_cancel_stops_the_spark_job_and_removes_the_staging_folder(
    service: QueryService, spark_cluster: SparkCluster
) -> None:
    staging = spark_cluster.staging_directory
    earlier = set(staging.iterdir())
    before = {job["jobId"] for job in _jobs(spark_cluster)}
    cancel = CancelToken()
    prepared = service.prepare(SLOW, service.principal("admin"), residual_engine="spark")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            service.execute(prepared, cancel=cancel).read_all()
        except BaseException as exc:  # the test reads it
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    running_since: dict[int, float] = {}
    long_job = None
    deadline = time.monotonic() + 180
    seen: list[dict[str, Any]] = []
    while long_job is None and thread.is_alive() and time.monotonic() < deadline:
        seen = [j for j in _jobs(spark_cluster) if j["jobId"] not in before]
        for job in seen:  # a job of it, running for 3 s
            if job["status"] == "RUNNING":
                since = running_since.setdefault(job["jobId"], time.monotonic())
                if time.monotonic() - since >= 3:
                    long_job = job["jobId"]
        time.sleep(0.2)
    if long_job is None:
        pytest.fail(f"the slow query's Spark job never ran 3 s: query ended {outcome}, "
                    f"still running {thread.is_alive()}, its jobs {seen}")
    assert thread.is_alive()
    cancel.cancel()
    thread.join(60)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], QueryCancelled), outcome
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ours = [j for j in _jobs(spark_cluster) if j["jobId"] not in before]
        if not any(j["status"] == "RUNNING" for j in ours):
            break
        time.sleep(0.2)
    assert ours
    assert not any(j["status"] == "RUNNING" for j in ours)
    # Interrupted, not finished: Spark's REST API calls a cancelled job FAILED. The query may
    # run more than one job (a broadcast's, then the join's): the job that ran 3 s can have
    # ended just before the cancel, so the check is on the last one the query started.
    last = max(ours, key=lambda j: int(j["jobId"]))
    assert int(last["jobId"]) >= int(long_job)
    assert last["status"] == "FAILED", ours
    assert set(staging.iterdir()) <= earlier  # its folder is gone


def test_spark_down_is_a_clear_error_and_duckdb_still_serves(
    spark_mesh: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "config"
    directory.mkdir()
    for path in spark_mesh.iterdir():
        if path.suffix == ".yaml" and path.name != "server.yaml":
            (directory / path.name).write_text(path.read_text(encoding="utf-8"),
                                               encoding="utf-8")  # fmt: skip
    (directory / "data").symlink_to(spark_mesh / "data")
    (directory / "server.yaml").write_text(
        residual_config(f"sc://127.0.0.1:{free_port()}", tmp_path / "staging"), encoding="utf-8")
    service = QueryService.from_config(directory)
    try:
        admin = service.principal("admin")
        started = time.monotonic()
        with pytest.raises(SourceUnavailable) as failure:
            service.query(BIG, admin, residual_engine="spark")
        assert time.monotonic() - started < 60
        message = failure.value.message
        assert "cannot be reached" in message
        assert "residual_engine=duckdb" in message
        assert "server.residual.spark.remote" in message
        assert "sc://" not in message  # the address is the operator's (detail)
        assert "sc://127.0.0.1" in (failure.value.detail or "")
        assert service.query(BIG, admin, residual_engine="duckdb").num_rows == 5
        assert service.query(SMALL, admin).num_rows > 0  # auto, below: DuckDB
        assert not [p for p in (tmp_path / "staging").glob("query-*")]
    finally:
        service.close()


def test_parameters_are_bound_on_spark(service: QueryService) -> None:
    """One parameter goes to the files source, the other (across sources) to Spark."""
    query = ("SELECT o.o_orderpriority, count(*) AS n FROM tpch.lineitem l JOIN tpch.orders o "
             "ON l.l_orderkey = o.o_orderkey WHERE l.l_quantity > ? "
             "AND l.l_linenumber + o.o_shippriority < ? GROUP BY 1 ORDER BY 1")  # fmt: skip
    admin = service.principal("admin")
    prepared = service.prepare(query, admin, residual_engine="spark")
    got = service.execute(prepared, [40, 4]).read_all()
    want = service.execute(service.prepare(query, admin, residual_engine="duckdb"),
                           [40, 4]).read_all()  # fmt: skip
    assert got.num_rows == 5
    assert got.equals(want)
    assert not got.equals(service.execute(prepared, [40, 3]).read_all())


def test_a_decimal_division_is_duckdbs_double_division_on_spark(service: QueryService) -> None:
    """DuckDB's `/` divides as DOUBLE; Spark's divides decimals as decimals rounded to six
    places (TPC-H Q8's market share read 0.039639 for 0.0396391428 at SF 3)."""
    admin = service.principal("admin")
    query = ("SELECT sum(l.l_discount) / sum(o.o_totalprice) AS share FROM tpch.lineitem l "
             "JOIN tpch.orders o ON l.l_orderkey = o.o_orderkey")  # fmt: skip
    assert _merge_row(service.explain(query, admin, residual_engine="spark"))["source"] == "spark"
    (spark,) = service.query(query, admin, residual_engine="spark").column("share").to_pylist()
    (duck,) = service.query(query, admin, residual_engine="duckdb").column("share").to_pylist()
    assert isinstance(spark, float)
    assert spark == pytest.approx(duck, rel=1e-12)
    assert round(spark, 6) != spark  # more than the six places a decimal division keeps


@pytest.mark.parametrize("number", [9, 18])
def test_sources_in_meshgates_process_only_stream_to_spark(
    number: int, service: QueryService
) -> None:
    """The Parquet source runs in meshgate's process: with Spark it scans and filters, and
    the join (Q9: lineitem with part) or aggregate (Q18: lineitem by order) it would hold
    in the server's memory runs on Spark, and EXPLAIN says why."""
    admin = service.principal("admin")
    rows = service.explain(QUERIES[number - 1], admin, residual_engine="spark").to_pylist()
    files = [r["sql"].upper() for r in rows if r["source"] == "tpch_files"]
    assert files
    assert not any(" JOIN " in s or "GROUP BY" in s for s in files), files
    assert "a source inside it only streams rows" in _merge_row(
        service.explain(QUERIES[number - 1], admin, residual_engine="spark"))["detail"]


# Staging for Spark streams: meshgate's memory stays its own plus a few batches, however
# large the residual's input or result (the process's own peak RSS). In this file, not one of
# its own: each test file may run in its own pytest-xdist worker, and two Spark clusters (ten
# JVMs) on a 2-core machine starved each other's jobs (the cancel test's never started).
COLUMNS = 8
BATCH_ROWS = 64 * 1024
BATCHES = 100  # 100 batches of 64Ki rows x 8 BIGINT columns: 400 MiB of Arrow data
INPUT_BYTES = BATCHES * BATCH_ROWS * COLUMNS * 8
BOUND_BYTES = 120 * 2**20  # what the process may grow by: under a third of the input
SCHEMA = pa.schema([(f"c{i}", pa.int64()) for i in range(COLUMNS)])


def _batches() -> Iterator[pa.RecordBatch]:
    """Made one at a time: the input never exists whole in this process."""
    for number in range(BATCHES):
        start = number * BATCH_ROWS
        values = pa.array(range(start, start + BATCH_ROWS), pa.int64())
        yield pa.RecordBatch.from_arrays([pc.add(values, i) for i in range(COLUMNS)],
                                         schema=SCHEMA)  # fmt: skip


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"/proc/self/status has no {key}")


def _run(engine: SparkEngine, sql: str, batches: Iterator[pa.RecordBatch]) -> tuple[int, int]:
    """(rows, sum of c0) of `sql` over `batches`, fed through a fragment's Prefetch as a
    query's are; the result is read batch by batch and let go."""
    context = QueryContext.standalone("memory")
    prefetch = Prefetch("input", lambda: pa.RecordBatchReader.from_batches(SCHEMA, batches),
                        SCHEMA, context.cancel)  # fmt: skip
    rows = total = 0
    try:
        query = parse_one(sql, dialect="duckdb")
        assert isinstance(query, exp.Query)
        for batch in engine.run(query, {"input": prefetch.reader()}, {}, context):
            rows += batch.num_rows
            total += pc.sum(batch.column(0)).as_py() or 0
    finally:
        prefetch.close()
    return rows, total


def test_a_large_input_and_result_cross_spark_in_bounded_memory(
    spark_cluster: SparkCluster,
) -> None:
    """400 MiB in, 200 MiB back (every other row): the peak RSS grows by less than 120 MiB.
    A warm-up query first, so the Spark Connect client's imports and channel are not
    counted."""
    engine = SparkEngine(spark_cluster.remote, spark_cluster.staging_directory, DuckDBEngine())
    assert _run(engine, "SELECT c0 FROM input", islice(_batches(), 1))[0] == BATCH_ROWS
    pa.default_memory_pool().release_unused()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_bytes("VmRSS")
    rows, total = _run(engine, "SELECT * FROM input WHERE c0 % 2 = 0", _batches())
    grown = _status_bytes("VmHWM") - before
    every = BATCHES * BATCH_ROWS
    assert (rows, total) == (every // 2, sum(range(0, every, 2)))
    assert grown < BOUND_BYTES, (
        f"staging {INPUT_BYTES >> 20} MiB and reading back half of it grew the process by "
        f"{grown >> 20} MiB")
