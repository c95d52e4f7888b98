"""A plain scan split into page ranges for several result endpoints, all read from one snapshot.

A client fetching a result from several endpoints reads each part as its own DoGet, possibly
later, possibly from another replica. So the split cannot be the in-process `partitions.py`
(one call, one set of threads): planning the endpoints exports a snapshot from a transaction
held open on a pooled connection (a `SnapshotLease`), and each part's token names that snapshot
and a page range. A part joins the snapshot (`SET TRANSACTION SNAPSHOT`, REPEATABLE READ READ
ONLY) before it reads `ctid` in its range, so the parts together are exactly the table as of
the one instant the snapshot was taken: rows updated, inserted or deleted between the parts'
reads are seen by none of them, and a row version moved to another page is read once, where it
was. The ranges cover pages 0 to infinity (the last is open-ended), so a stale page count only
unbalances them. The lease ends once every part has joined it or after `hold_seconds` (the
tickets' time to live); a part that comes later fails with a clear error, never reads a newer
snapshot, because that could lose or repeat rows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import adbc_driver_manager
import pyarrow as pa

from meshgate.errors import QueryCancelled, StatementOutdated
from meshgate.spi import CancelToken, SourceTable

from .failures import source_error
from .partitions import end_transaction, page_ranges, read_in_transaction
from .pool import ConnectionPool
from .stream import in_slices
from .typemap import BoundaryCast

_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


@dataclass(frozen=True)
class PageSlice:
    """What a part's token says: the snapshot, the table and the pages [low, high) it reads."""

    snapshot: str
    table: SourceTable
    low: int
    high: int | None

    def token(self) -> str:
        return json.dumps([self.snapshot, self.table.schema, self.table.name, self.low,
                           self.high])  # fmt: skip

    @staticmethod
    def parse(token: str) -> PageSlice | None:
        try:
            snapshot, schema, name, low, high = json.loads(token)
        except (ValueError, TypeError):
            return None
        return PageSlice(str(snapshot), SourceTable(schema, str(name)), int(low),
                         None if high is None else int(high))  # fmt: skip


class SnapshotLeases:
    """The snapshots exported for split results, each kept alive until its parts joined it."""

    def __init__(self, pool: ConnectionPool, most: int) -> None:
        self.pool = pool
        # Snapshots held at once: tickets nobody fetches hold theirs for their whole time to
        # live, and must not take every connection from the other queries.
        self.most = most
        self._lock = threading.Lock()
        # snapshot -> (the connection holding it, parts yet to join, the timer that ends it)
        self._held: dict[str, tuple[Any, int, threading.Timer]] = {}

    def slices(self, table: SourceTable, pages: int, parts: int,
               hold_seconds: float) -> list[PageSlice] | None:  # fmt: skip
        """`parts` page ranges of `table` on a snapshot exported now; None when `most`
        snapshots are held already or no pooled connection is free to hold one (the result
        is then split by key instead)."""
        with self._lock:
            if len(self._held) >= self.most:
                return None
        conn = self.pool.try_acquire()
        if conn is None:
            return None
        try:
            with conn.cursor() as cursor:
                cursor.execute(_BEGIN)
                cursor.execute("SELECT pg_export_snapshot()")
                row = cursor.fetchone()
        except adbc_driver_manager.Error as exc:
            self.pool.release(conn, healthy=False)
            raise source_error(self.pool, exc, "exporting a snapshot") from None
        snapshot = str(row[0]) if row else ""
        timer = threading.Timer(hold_seconds, self._end, (snapshot,))
        timer.daemon = True
        with self._lock:
            self._held[snapshot] = (conn, parts, timer)
        timer.start()
        return [PageSlice(snapshot, table, low, high) for low, high in page_ranges(pages, parts)]

    def joined(self, snapshot: str) -> None:
        """A part has joined `snapshot` (one exported by another replica: nothing to do)."""
        with self._lock:
            held = self._held.get(snapshot)
            if held is None:
                return
            conn, waiting, timer = held
            self._held[snapshot] = (conn, waiting - 1, timer)
        if waiting <= 1:
            self._end(snapshot)

    def _end(self, snapshot: str) -> None:
        with self._lock:
            held = self._held.pop(snapshot, None)
        if held is None:
            return
        conn, _, timer = held
        timer.cancel()
        self.pool.release(conn, healthy=end_transaction(conn))

    def close(self) -> None:
        with self._lock:
            snapshots = list(self._held)
        for snapshot in snapshots:
            self._end(snapshot)


def stream_slice(
    pool: ConnectionPool,
    leases: SnapshotLeases,
    part: PageSlice,
    sql: str,
    parameters: Sequence[Any],
    cast: BoundaryCast,
    batch_rows: int,
    cancel: CancelToken,
) -> Iterator[pa.RecordBatch]:
    """Join the part's snapshot, then stream `sql` (the scan within the part's pages)."""
    conn = pool.acquire()
    try:
        if cancel.cancelled:
            raise QueryCancelled("the query was cancelled")
        _join(pool, conn, part.snapshot)
    except BaseException:
        pool.release(conn, healthy=end_transaction(conn))
        raise
    leases.joined(part.snapshot)
    yield from in_slices(read_in_transaction(pool, conn, sql, parameters, cast, cancel),
                         batch_rows)  # fmt: skip


def _join(pool: ConnectionPool, conn: Any, snapshot: str) -> None:
    try:
        with conn.cursor() as cursor:
            cursor.execute(_BEGIN)
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot.replace(chr(39), '')}'")
    except adbc_driver_manager.Error as exc:
        if "invalid snapshot identifier" in str(exc) or "does not exist" in str(exc):
            raise StatementOutdated(
                "this part of a result split into several endpoints was fetched after its "
                "snapshot ended (every part must be fetched within the tickets' time to "
                "live, `server.ticket_ttl_seconds`); run the query again",
                detail=f"{pool.label}: {exc}",
            ) from None
        raise source_error(pool, exc, "joining a snapshot") from None

