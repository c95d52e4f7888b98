"""Parallel ctid-range reads of one large table, all under one exported snapshot.

A plain scan (one table, no ORDER BY, LIMIT, grouping or DISTINCT) is cut into page ranges
(`ctid >= '(lo,0)' AND ctid < '(hi,0)'`, a TID range scan since PostgreSQL 14) read on several
pooled connections at once. Every reader joins the first one's snapshot
(`pg_export_snapshot` / `SET TRANSACTION SNAPSHOT`), so the ranges together are exactly the
table at one instant: an UPDATE moving a row version between ranges mid-scan can neither
duplicate nor drop it. Batches arrive interleaved; order was not promised without ORDER BY.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import adbc_driver_manager
import pyarrow as pa
from sqlglot import exp

from meshgate.spi import CancelToken, PushedQuery
from meshgate.spi.threads import start_task

from .failures import source_error
from .pool import ConnectionPool, connection_survives
from .stream import read_batches, stream_batches
from .typemap import BoundaryCast

# Ranges smaller than this (~40 MB of heap) are not worth a connection and two transactions.
MIN_PAGES_PER_PARTITION = 5_000
# The default's ceiling: DuckDB's postgres scanner, the peer, also reads on up to 4.
DEFAULT_MAX_PARTITIONS = 4
_QUEUE_DEPTH = 2  # batches buffered per reader: memory stays bounded
_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


def default_partitions(pool_size: int) -> int:
    """Ranges per plain scan unless configured: all connections but one, which stays for the
    other queries (a scan takes its extra connections only if idle, never waits for them)."""
    return max(1, min(DEFAULT_MAX_PARTITIONS, pool_size - 1))


def is_plain_scan(handle: PushedQuery) -> bool:
    """One table read row by row (perhaps through row-wise derived tables, such as a policy's
    filter and masks): splitting it by pages cannot change the answer."""
    return len(handle.inputs) == 1 and table_select(handle.select) is not None


def table_select(select: exp.Select) -> exp.Select | None:
    """The SELECT that reads the table itself, if `select` and every derived table between
    them are row-wise (no join, grouping, aggregate, window, DISTINCT, ORDER BY or LIMIT)."""
    source = select.args.get("from_") or select.args.get("from")
    row_wise = (
        isinstance(source, exp.From)
        and not select.args.get("joins")
        and not any(
            select.args.get(k) for k in ("group", "having", "order", "limit", "offset", "distinct")
        )
        and not any(e.find(exp.AggFunc, exp.Window) for e in select.expressions)
        and not any(e.find(exp.Subquery, exp.Exists) for e in select.expressions)
    )
    if not row_wise:
        return None
    assert isinstance(source, exp.From)
    if isinstance(source.this, exp.Table):
        return select
    if isinstance(source.this, exp.Subquery) and isinstance(source.this.this, exp.Select):
        return table_select(source.this.this)
    return None


def within_pages(handle: PushedQuery, low: int, high: int | None) -> exp.Select:
    """The handle's SELECT reading only pages [low, high) of its table (a plain scan)."""
    select = handle.select.copy()
    reading = table_select(select)
    assert reading is not None, "within_pages needs a plain scan"
    reading.where(ctid_range(handle.inputs[0].alias, low, high), copy=False)
    return select


def ctid_range(alias: str, low: int, high: int | None) -> exp.Expr:
    """`alias.ctid` within pages [low, high); the last range is open-ended (the table may
    have grown since its pages were counted)."""
    ctid = exp.column("ctid", table=alias, quoted=True)

    def tid(page: int) -> exp.Expr:
        return exp.cast(exp.Literal.string(f"({page},0)"), exp.DataType.build("tid", udt=True))

    lower = exp.GTE(this=ctid, expression=tid(low))
    if high is None:
        return lower
    return exp.and_(lower, exp.LT(this=ctid.copy(), expression=tid(high)))


def page_ranges(pages: int, parts: int) -> list[tuple[int, int | None]]:
    bounds = [pages * i // parts for i in range(parts)]
    return [(low, bounds[i + 1] if i + 1 < parts else None) for i, low in enumerate(bounds)]


def stream_partitions(
    pool: ConnectionPool,
    parts: int,
    pages: int,
    render: Callable[[int | None, int | None], str],
    parameters: Sequence[Any],
    cast: BoundaryCast,
    batch_rows: int,
    cancel: CancelToken,
) -> Iterator[pa.RecordBatch]:
    """Read a table of `pages` pages in up to `parts` ranges; `render(low, high)` gives the
    SQL of one range (`render(None, None)`: the whole table, when no second connection is
    free and the scan runs on one connection after all)."""
    leader = pool.acquire()
    followers = [c for c in (pool.try_acquire() for _ in range(parts - 1)) if c is not None]
    if not followers:
        pool.release(leader)
        yield from stream_batches(pool, render(None, None), parameters, cast, batch_rows,
                                  cancel)
        return
    connections = [leader, *followers]
    sqls = [render(low, high) for low, high in page_ranges(pages, len(connections))]
    started: list[Any] = []
    try:
        _join_one_snapshot(connections, started)
    except adbc_driver_manager.Error as exc:
        for conn in connections:
            pool.release(conn, healthy=conn not in started)
        raise source_error(pool, exc, "starting a parallel scan") from None
    yield from interleave(
        [read_in_transaction(pool, conn, sql, parameters, cast, cancel)
         for conn, sql in zip(connections, sqls, strict=True)],
        batch_rows,
    )  # fmt: skip


def interleave(streams: Sequence[Generator[pa.RecordBatch, None, None]],
               batch_rows: int) -> Generator[pa.RecordBatch, None, None]:  # fmt: skip
    """The batches of all `streams`, each read on its own thread, in the order they arrive;
    the first failure of any is raised here and stops the others. Each stream is started
    (its body runs and its cleanup with it) and closed on its thread, whatever happens."""
    results: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(
        maxsize=_QUEUE_DEPTH * len(streams)
    )
    stop = threading.Event()
    workers = [start_task(_read_range, stream, results, stop, name=f"meshgate-pg-range-{i}")
               for i, stream in enumerate(streams)]  # fmt: skip
    running = len(workers)
    try:
        while running:
            item = results.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                for start in range(0, item.num_rows, batch_rows):
                    yield item.slice(start, batch_rows)
    finally:
        stop.set()
        while any(w.is_alive() for w in workers):
            with contextlib.suppress(queue.Empty):  # unblock readers blocked on a full queue
                results.get(timeout=0.05)
        for worker in workers:
            worker.join()


def _join_one_snapshot(connections: Sequence[Any], started: list[Any]) -> None:
    with connections[0].cursor() as cursor:
        cursor.execute(_BEGIN)
        started.append(connections[0])
        cursor.execute("SELECT pg_export_snapshot()")
        row = cursor.fetchone()
    snapshot = str(row[0]) if row else ""
    for conn in connections[1:]:
        with conn.cursor() as cursor:
            cursor.execute(_BEGIN)
            started.append(conn)
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot.replace(chr(39), '')}'")


def _read_range(
    stream: Generator[pa.RecordBatch, None, None],
    results: queue.Queue[pa.RecordBatch | BaseException | None],
    stop: threading.Event,
) -> None:
    """One reader thread: move its stream's batches into `results` until it ends or the
    consumer stops; a failure goes to the consumer, which raises it."""
    try:
        with contextlib.closing(stream) as batches:
            for batch in batches:
                while not stop.is_set():
                    try:
                        results.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
    except BaseException as exc:  # the consumer raises it and stops the other readers
        results.put(exc)
    finally:
        results.put(None)


def read_in_transaction(
    pool: ConnectionPool,
    conn: Any,
    sql: str,
    parameters: Sequence[Any],
    cast: BoundaryCast,
    cancel: CancelToken,
) -> Generator[pa.RecordBatch, None, None]:
    """Run `sql` on `conn`, which holds a read-only transaction (a joined snapshot), and
    yield its batches; then roll back and give the connection back. The rollback also
    proves the session sound after an SQL error, so such an error keeps the connection."""

    def release(healthy: bool) -> None:
        pool.release(conn, healthy=healthy and end_transaction(conn))

    cursor = conn.cursor()
    try:
        with cancel.stopping(cursor.adbc_cancel):
            cursor.execute(sql, tuple(parameters) if parameters else None)
            source = cursor.fetch_record_batch()
    except (adbc_driver_manager.Error, OSError) as exc:
        cursor.close()
        release(connection_survives(exc))
        raise source_error(pool, exc, "streaming rows") from None
    except BaseException:
        cursor.close()
        release(True)
        raise
    yield from read_batches(pool, cursor, source, cast, cancel, release, connection_survives)


def end_transaction(conn: Any) -> bool:
    try:
        with conn.cursor() as cursor:
            cursor.execute("ROLLBACK")  # read-only: nothing to commit, and it never fails late
        return True
    except adbc_driver_manager.Error:
        return False
