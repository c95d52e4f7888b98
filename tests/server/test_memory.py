"""The served process gives back what a sign-in borrows (scrypt's 16 MB working area) and
what a full scan's batches held, and keeps what start-up made out of the garbage
collector's walks, letting it go after a reload."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import pytest
from adbc_driver_flightsql import dbapi as flightsql
from pyarrow import flight

from meshgate.server.memory import YOUNG_GENERATION_THRESHOLD, collect_garbage_less_often
from tests.conftest import fresh_pg_database
from tests.fuzz.served import ServedDemo
from tests.server.served import create_warehouse, serve, write_config, write_warehouse

SIGN_INS = 30


def test_sign_ins_do_not_grow_the_server(tmp_path: Path) -> None:
    """Found by tests/fuzz: each password sign-in kept ~1 MB of the server's RSS."""
    with ServedDemo(tmp_path) as served:
        client = flight.connect(served.uri)
        try:
            for _ in range(3):
                client.authenticate_basic_token("partner", "partner")
            before = served.rss_bytes()
            for _ in range(SIGN_INS):
                client.authenticate_basic_token("partner", "partner")
            grown = served.rss_bytes() - before
        finally:
            client.close()
    assert grown < 10 * 1024 * 1024, f"{SIGN_INS} sign-ins grew the server {grown} bytes"


BIG_ROWS = 1_200_000  # ~26,000 pages: read in 4 ctid ranges (like SF 1 orders)
SCANS = 10


@pytest.fixture(scope="module")
def big_warehouse(pg_server_dsn: str) -> Iterator[str]:
    with fresh_pg_database(pg_server_dsn) as dsn:
        create_warehouse(dsn)
        with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE big AS SELECT g::bigint AS id, repeat(md5(g::text), 4) "
                           "AS kind, (g % 100000 / 100.0)::numeric(15,2) AS amount, "
                           "DATE '2020-01-01' + g % 2000 AS day "
                           f"FROM generate_series(1, {BIG_ROWS}) AS g")  # fmt: skip
            cursor.execute("ANALYZE big")
        yield dsn


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc status (is this Linux?)")


@pytest.mark.postgres
def test_repeated_full_scans_keep_the_server_at_one_scan_of_memory(
    tmp_path: Path, demo_dir: Path, big_warehouse: str
) -> None:
    """Each scan's ranges run on fresh threads; glibc gave each its own arena and the server
    grew ~15-50 MB per full scan, without end, until the arenas were capped (server/memory.py).
    """
    directory = tmp_path / "config"
    write_config(directory, demo_dir, big_warehouse, "server: {}\n", events_table="big")
    write_warehouse(directory, big_warehouse, "big",
                    "{name: amount, type: 'DECIMAL(15,2)'}, {name: day, type: DATE}")
    warehouse = directory / "warehouse.yaml"
    warehouse.write_text(warehouse.read_text().replace("pool_size: 2", "pool_size: 5"))
    with serve(directory) as served, flightsql.connect(
        served.uri, db_kwargs={"username": "admin", "password": "admin"}
    ) as client:
        pid = served.process.pid

        def scan() -> int:
            with client.cursor() as cursor:
                cursor.execute("SELECT * FROM ops.events")
                return sum(batch.num_rows for batch in cursor.fetch_record_batch())

        for _ in range(2):  # warm-up: plans, pools, the allocator's first arenas
            assert scan() == BIG_ROWS
        settled = _status_kib(pid, "VmHWM")
        for _ in range(SCANS):
            assert scan() == BIG_ROWS
        peak = _status_kib(pid, "VmHWM")
        grown_mib, peak_mib = (peak - settled) / 1024, peak / 1024
    assert grown_mib < 80, f"{SCANS} more full scans raised the server's peak {grown_mib:.0f} MiB"
    assert peak_mib < 1024, f"the server peaked at {peak_mib:.0f} MiB"


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Held:
    """A cycle, as sqlglot's nodes are (a child points at its parent)."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("restored")
def test_start_up_objects_are_frozen_and_released_at_the_next_call() -> None:
    held = Held()
    alive = weakref.ref(held)
    collect_garbage_less_often()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
    del held
    gc.collect()
    assert alive() is not None  # frozen: a full collection leaves it alone
    collect_garbage_less_often()  # as after a reload
    assert alive() is None
