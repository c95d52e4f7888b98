"""Rows read through DuckDB's postgres extension, whose binary COPY decoder is the cheaper one.

The ADBC PostgreSQL driver on PyPI is built without optimisation: decoding `orders` costs its
wheel about twice the CPU DuckDB's postgres extension spends on the same COPY stream, and on a
small machine that CPU is the scan's time (benchmarks/README.md, "Full scan"). So a statement
whose result has plain column types streams through one embedded DuckDB per source, holding
nothing but the extension and one read-only ATTACH of the source's `dsn` (no file access, no
other database, settings locked); a large plain scan as several such reads at once, in page
ranges on one exported snapshot. Everything else stays on ADBC: metadata, statistics, bound
parameters, snapshots shared between endpoints, and every statement that fails before
its first batch, which runs again on ADBC so that its error (or its retry on a new connection)
is the one the ADBC path gives. Each read runs in its own DuckDB transaction, which pins one
PostgreSQL connection: its backend pid is read first, so a cancel, a deadline or a client that
stops reading cancels that very statement at PostgreSQL (`pg_cancel_backend`), which DuckDB's own
interrupt cannot reach while it waits in libpq.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import adbc_driver_manager
import duckdb
import pyarrow as pa

from meshgate.errors import QueryCancelled, SourceUnavailable, UnsupportedQuery
from meshgate.spi import CancelToken

from .failures import classify, source_error
from .partitions import interleave, page_ranges
from .pool import ConnectionPool, redacted, with_connect_timeout
from .typemap import BoundaryCast

# What the reader's PostgreSQL sessions must agree on with the ADBC pool's (pool.py).
_SESSION_OPTIONS = "-c TimeZone=UTC -c default_transaction_read_only=on"
_ATTACHED = "source"
_log = logging.getLogger(__name__)


def extension_file() -> Path | None:
    """The postgres extension of the installed `duckdb-extension-postgres` wheel, copied under
    the name DuckDB's loader expects; None when the wheel is missing or is for another DuckDB."""
    try:
        import duckdb_extension_postgres
    except ImportError:
        return None
    root = Path(duckdb_extension_postgres.__file__).parent
    found = sorted(root.rglob(f"v{duckdb.__version__}/*.duckdb_extension"))
    if not found:
        return None
    cache = Path(tempfile.gettempdir()) / f"meshgate-{os.getuid()}-duckdb-{duckdb.__version__}"
    target = cache / "postgres_scanner.duckdb_extension"
    if not target.exists() or target.stat().st_size != found[0].stat().st_size:
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        staging = cache / f".{os.getpid()}-{threading.get_ident()}"
        shutil.copyfile(found[0], staging)
        staging.replace(target)
    return target


def reader_dsn(dsn: str, connect_timeout: int) -> str | None:
    """`dsn` with the pool's session settings as libpq `options`; None if the dsn sets
    `options` itself (then every read stays on ADBC rather than merging the two)."""
    if "options" in dsn:
        return None
    dsn = with_connect_timeout(dsn, connect_timeout)
    if "://" not in dsn:
        return f"{dsn} options='{_SESSION_OPTIONS}'"
    parts = urlsplit(dsn)
    query = urlencode([*parse_qsl(parts.query), ("options", _SESSION_OPTIONS)], quote_via=quote)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def plain_types(schema: pa.Schema) -> bool:
    """Whether every result column has a type both readers produce alike."""
    return all(_plain(field.type) for field in schema)


def _plain(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_date32(kind)
        or pa.types.is_timestamp(kind)
    )


class BulkReader:
    """One source's embedded DuckDB, attached on first use; reset after a connection failure."""

    def __init__(self, pool: ConnectionPool, dsn: str, connections: int) -> None:
        self.pool = pool
        self._dsn = dsn
        self._connections = connections
        self._lock = threading.Lock()
        self._database: duckdb.DuckDBPyConnection | None = None
        # Reads open per DuckDB (by id), and the retired ones still read: a DuckDB closes only
        # when no read uses it, as closing it ends its cursors under their threads.
        self._reads: dict[int, int] = {}
        self._retired: dict[int, duckdb.DuckDBPyConnection] = {}
        self._closed = False

    def stream(
        self,
        sql: str,
        cast: BoundaryCast,
        batch_rows: int,
        cancel: CancelToken,
        fallback: Callable[[], Iterator[pa.RecordBatch]],
    ) -> Iterator[pa.RecordBatch]:
        """`sql`'s batches through `cast`; before the first batch, any failure but a cancel
        hands the statement to `fallback` (the ADBC path) instead."""
        return self._stream_reads([sql], cast, batch_rows, cancel, fallback)

    def stream_ranges(
        self,
        pages: int,
        parts: int,
        render: Callable[[int | None, int | None], str],
        cast: BoundaryCast,
        batch_rows: int,
        cancel: CancelToken,
        fallback: Callable[[], Iterator[pa.RecordBatch]],
    ) -> Iterator[pa.RecordBatch]:
        """A plain scan of a table of `pages` pages read in up to `parts` page ranges at once,
        all on the first range's exported snapshot (partitions.py says why that is exact);
        extra ranges take only connections no other read holds, one is left for the others.
        `render(low, high)` is a range's SQL, `render(None, None)` the whole table's."""
        with self._lock:
            spare = self._connections - sum(self._reads.values()) - 1
        count = max(1, min(parts, spare))
        if count < 2:
            return self._stream_reads([render(None, None)], cast, batch_rows, cancel, fallback)
        sqls = [render(low, high) for low, high in page_ranges(pages, count)]
        return self._stream_reads(sqls, cast, batch_rows, cancel, fallback)

    def _stream_reads(
        self,
        sqls: Sequence[str],
        cast: BoundaryCast,
        batch_rows: int,
        cancel: CancelToken,
        fallback: Callable[[], Iterator[pa.RecordBatch]],
    ) -> Iterator[pa.RecordBatch]:
        """The batches of `sqls` read at once (one: in the caller's thread), on one snapshot;
        a failure before the first batch reaches the caller runs `fallback` instead."""
        reads = self._start_all(sqls, batch_rows, cancel)
        if reads is None:
            yield from fallback()
            return
        streams = [self._batches(read, cast, cancel) for read in reads]
        merged = streams[0] if len(streams) == 1 else interleave(streams, batch_rows)
        yielded = fall_back = False
        try:
            for batch in merged:
                yielded = True
                yield batch
        except (duckdb.Error, OSError, UnsupportedQuery, SourceUnavailable) as exc:
            if yielded:
                if isinstance(exc, duckdb.Error | OSError):
                    raise source_error(self.pool, exc, "streaming rows") from None
                raise
            fall_back = True
        finally:
            merged.close()
        if fall_back:
            yield from fallback()

    def _start_all(
        self, sqls: Sequence[str], batch_rows: int, cancel: CancelToken
    ) -> list[_Read] | None:
        """Start every read, the later ones on the first one's snapshot; None (and nothing
        left open) if any could not start."""
        first = self._start(sqls[0], batch_rows, cancel, export=len(sqls) > 1)
        if first is None:
            return None
        reads = [first]
        try:
            for sql in sqls[1:]:
                follower = self._start(sql, batch_rows, cancel, snapshot=first.snapshot)
                if follower is None:
                    break
                reads.append(follower)
        except BaseException:
            for read in reads:
                self._abandon(read)
            raise
        if len(reads) < len(sqls):
            for read in reads:
                self._abandon(read)
            return None
        return reads

    def _batches(
        self, read: _Read, cast: BoundaryCast, cancel: CancelToken
    ) -> Generator[pa.RecordBatch, None, None]:
        """One started read's statement run, its batches through `cast`, then its end. A
        failure is raised as it came (the DuckDB retired first if the connection failed); a
        cancel as QueryCancelled.

        The statement runs here, not in `_start`: DuckDB's execute returns only once the
        statement has filled its first result buffer, which for a filtered scan is most of
        its range, and the ranges then ran one after the other (TPC-H Q5's orders: 105 ms
        and 118 ms, in turn). Here each runs on its reader's thread, all at once."""
        finished = False
        source: pa.RecordBatchReader | None = None
        try:
            while True:
                try:
                    with cancel.stopping(lambda: self._cancel(read.cursor, read.pid)):
                        if source is None:
                            source = read.cursor.execute(
                                f"SELECT * FROM postgres_query('{_ATTACHED}', ?)", [read.sql]
                            ).to_arrow_reader(read.batch_rows)
                        batch = source.read_next_batch()
                    shaped = cast.apply(batch)
                except StopIteration:
                    finished = True
                    return
                except (duckdb.Error, OSError, UnsupportedQuery, SourceUnavailable) as exc:
                    finished = True
                    if cancel.cancelled or classify(exc) == "cancelled":
                        raise QueryCancelled("the query was cancelled while PostgreSQL ran it",
                                             detail=self.pool.label) from None  # fmt: skip
                    self._after_failure(exc, read.database)
                    raise
                yield shaped
        finally:
            if finished:
                _end(read.cursor, source)
                self._release(read.database)
            else:
                self._abandon(read, source)

    def _abandon(self, read: _Read, source: pa.RecordBatchReader | None = None) -> None:
        """Stop a read that did not run to its end: cancel it at PostgreSQL, end it, release."""
        self._cancel(read.cursor, read.pid)
        _end(read.cursor, source)
        self._release(read.database)

    @property
    def open_reads(self) -> int:
        """Reads started and not yet ended: each holds one PostgreSQL connection."""
        with self._lock:
            return sum(self._reads.values())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            database, self._database = self._database, None
            if database is not None:
                self._retired[id(database)] = database
            idle = [d for key, d in self._retired.items() if not self._reads.get(key)]
            for done in idle:
                del self._retired[id(done)]
        for done in idle:
            done.close()

    def _release(self, database: duckdb.DuckDBPyConnection) -> None:
        """One read of `database` ended; close it if it was retired and this was its last."""
        key = id(database)
        with self._lock:
            self._reads[key] -= 1
            if self._reads[key]:
                return
            del self._reads[key]
            retired = self._retired.pop(key, None)
        if retired is not None:
            with contextlib.suppress(duckdb.Error):
                retired.close()

    def _start(
        self,
        sql: str,
        batch_rows: int,
        cancel: CancelToken,
        *,
        export: bool = False,
        snapshot: str = "",
    ) -> _Read | None:
        """Open the read's transaction (on `snapshot` if given; exporting its own if `export`)
        and learn its backend, for `sql` to run in (`_batches`); None if it could not start
        (the ADBC path then runs it, and says why if it fails there too). A read started
        counts against its DuckDB until `_release`."""
        if cancel.cancelled:
            raise QueryCancelled("the query was cancelled")
        with self._lock:
            database = self._attach()
            if database is None:
                return None
            self._reads[id(database)] = self._reads.get(id(database), 0) + 1
        try:
            cursor = database.cursor()
        except duckdb.Error:
            self._release(database)
            return None
        pid = 0
        try:
            cursor.execute("BEGIN TRANSACTION")
            if snapshot:
                # The first statement of the PostgreSQL transaction, as PostgreSQL requires.
                joined = "SET TRANSACTION SNAPSHOT '" + snapshot.replace("'", "") + "'"
                cursor.execute(f"CALL postgres_execute('{_ATTACHED}', ?)", [joined])
            exported = "pg_export_snapshot()" if export else "''"
            probe = f"SELECT pg_backend_pid() AS pid, {exported} AS snapshot"
            row = cursor.execute(
                f"SELECT * FROM postgres_query('{_ATTACHED}', ?)", [probe]
            ).fetchone()
            pid = int(row[0]) if row else 0
        except duckdb.Error as exc:
            _end(cursor, None)
            self._after_failure(exc, database)
            self._release(database)
            if cancel.cancelled:
                raise QueryCancelled("the query was cancelled") from None
            if classify(exc) == "cancelled":  # pg_cancel_backend by an operator
                raise QueryCancelled("the query was cancelled while PostgreSQL ran it",
                                     detail=self.pool.label) from None  # fmt: skip
            return None
        return _Read(database, cursor, pid, sql, batch_rows,
                     str(row[1]) if row and row[1] else "")  # fmt: skip

    def _attach(self) -> duckdb.DuckDBPyConnection | None:
        """The current DuckDB, attached now if there is none; called under the lock."""
        if self._database is not None or self._closed:
            return self._database
        extension = extension_file()
        if extension is None:
            return None
        database = duckdb.connect(config={"autoinstall_known_extensions": "false",
                                          "autoload_known_extensions": "false"})  # fmt: skip
        try:
            database.execute(f"LOAD '{extension}'")
            # One thread per read: a COPY is one stream, and a failing read then reports
            # PostgreSQL's error, never another thread's "Interrupted".
            database.execute("SET threads = 1")
            database.execute(f"SET pg_pool_max_connections = {self._connections}")
            database.execute(f"SET pg_connection_limit = {self._connections}")
            quoted = self._dsn.replace("'", "''")
            database.execute(f"ATTACH '{quoted}' AS {_ATTACHED} (TYPE postgres, READ_ONLY)")
            database.execute("SET enable_external_access = false")
            database.execute("SET lock_configuration = true")
        except duckdb.Error as exc:
            database.close()
            _log.warning("%s: rows are read through the ADBC driver, DuckDB's postgres "
                         "extension did not attach: %s", self.pool.label,
                         redacted(str(exc), self._dsn))  # fmt: skip
            return None
        self._database = database
        return database

    def _after_failure(self, exc: BaseException, database: duckdb.DuckDBPyConnection) -> None:
        """A failure of the connection (not of the SQL) retires `database` and its pooled
        connections, closed once its last read ends; the next read attaches afresh."""
        if classify(exc) == "unavailable" and "ERROR:" not in str(exc):
            with self._lock:
                if self._database is database:
                    self._database = None
                    self._retired[id(database)] = database

    def _cancel(self, cursor: Any, pid: int) -> None:
        """Cancel the read's statement at PostgreSQL; its transaction still holds `pid`'s
        connection, so no other statement can be running there. (DuckDB's own interrupt
        would wait for the cursor, which waits in libpq for rows that may never come.)"""
        if pid <= 0:
            return
        try:
            with self.pool.spare() as conn, conn.cursor() as control:
                control.execute("SELECT pg_cancel_backend(CAST($1 AS integer))", (pid,))
                control.fetchall()
        except (adbc_driver_manager.Error, SourceUnavailable) as exc:
            # The statement then ends when PostgreSQL next writes to the dropped connection.
            _log.warning("%s: cancelling a read at PostgreSQL failed: %s", self.pool.label,
                         redacted(str(exc), self._dsn))  # fmt: skip


@dataclass(frozen=True)
class _Read:
    """One started read: its DuckDB, its cursor's open transaction, the PostgreSQL backend
    serving it, the statement it is to run and in batches of how many rows, and the snapshot
    it exported (empty if none)."""

    database: duckdb.DuckDBPyConnection
    cursor: Any
    pid: int
    sql: str
    batch_rows: int
    snapshot: str


def _end(cursor: Any, source: pa.RecordBatchReader | None) -> None:
    with contextlib.suppress(duckdb.Error, pa.ArrowException, OSError):
        if source is not None:
            source.close()
    with contextlib.suppress(duckdb.Error):
        cursor.execute("ROLLBACK")
    with contextlib.suppress(duckdb.Error):
        cursor.close()
