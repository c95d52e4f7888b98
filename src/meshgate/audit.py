"""The audit trail: one record per query, allowed or refused, and per failed login.

Each record is one JSON line on the `meshgate.audit` logger (stderr under `meshgate serve`)
and, when configured, in a size-rotated file; the last records stay in memory for
`meshgate.query_history` (ARCHITECTURE.md §4.7). Records carry the SQL each source received,
which admins may read and the caller's own history shows only to the caller.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from pathlib import Path

import pyarrow as pa

from meshgate.errors import MeshgateError, Status

audit_log = logging.getLogger("meshgate.audit")
# Statuses whose details only the server log has: the client gets the id to quote.
LOGGED_STATUSES = (Status.UNAVAILABLE, Status.INTERNAL)


@dataclass(frozen=True)
class SourceCall:
    """What one fragment sent to one source and what came back, or what the merge read of a
    source's files itself (`read_by` "merge": a merge scan, whose rows DuckDB does not count,
    so `rows` and `bytes` are None rather than a made-up zero)."""

    source: str
    sql: str
    rows: int | None
    bytes: int | None = 0  # the Arrow size of those rows
    read_by: str = "source"  # source | merge


@dataclass(frozen=True)
class AuditRecord:
    """Who asked what, what it touched, what it returned, and how it ended."""

    time: str  # UTC, ISO 8601, when the query arrived
    query_id: str
    user: str
    roles: tuple[str, ...]
    client: str | None
    sql: str
    outcome: str  # ok | denied | error | cancelled | login_failed
    status: str | None = None  # the gRPC status family of a refusal or error
    error_id: str | None = None
    message: str | None = None  # the message the caller received
    products: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    deprecated: tuple[str, ...] = ()  # the deprecated products among `products`
    sources: tuple[SourceCall, ...] = ()
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def json(self) -> str:
        """One line of JSON, the fields in declaration order. Built field by field, not by
        `dataclasses.asdict`, whose deep copy was a tenth of a served point lookup's CPU."""
        fields = {name: getattr(self, name) for name in _RECORD_FIELDS}
        fields["sources"] = [
            {name: getattr(call, name) for name in _SOURCE_FIELDS} for call in self.sources
        ]
        return json.dumps(fields, separators=(",", ":"), default=str)


_RECORD_FIELDS = tuple(f.name for f in dataclass_fields(AuditRecord))
_SOURCE_FIELDS = tuple(f.name for f in dataclass_fields(SourceCall))


_DENIALS = (Status.INVALID_ARGUMENT, Status.NOT_FOUND, Status.PERMISSION_DENIED,
            Status.UNAUTHENTICATED)  # fmt: skip


def failure_record(
    arrived: str,
    user: str,
    roles: tuple[str, ...],
    client: str | None,
    sql: str,
    error: Exception,
    outcome: str | None = None,
) -> AuditRecord:
    """The record of a query (or login) that ended before streaming: "denied" for the
    caller's mistakes, "error" otherwise; an unexpected exception is an INTERNAL "error"
    with the id the caller is told."""
    status = error.status if isinstance(error, MeshgateError) else Status.INTERNAL
    message = error.message if isinstance(error, MeshgateError) else None
    query_id = new_query_id()
    return AuditRecord(
        arrived, query_id, user, roles, client, sql,
        outcome or ("denied" if status in _DENIALS else "error"), status.value,
        error_id_of(error, query_id), message,
    )  # fmt: skip


def audited_stream(
    reader: pa.RecordBatchReader,
    trail: AuditTrail,
    opened: AuditRecord,
    sources: Callable[[], tuple[SourceCall, ...]],
) -> pa.RecordBatchReader:
    """`reader` unchanged; when it ends (exhausted, failed or closed early) `opened`, with
    its outcome, the rows and bytes returned, what each source did and the time, is written.
    `sources` is read then, once the fragments have reported."""

    def batches() -> Iterator[pa.RecordBatch]:
        started = time.monotonic()
        rows = nbytes = 0
        outcome, status, error_id, message = "ok", None, None, None
        try:
            for batch in reader:
                rows += batch.num_rows
                nbytes += batch.nbytes
                yield batch
        except MeshgateError as exc:
            outcome, status = "error", exc.status.value
            error_id, message = error_id_of(exc, opened.query_id), exc.message
            raise
        except GeneratorExit:
            outcome = "cancelled"
            raise
        except Exception as exc:
            outcome, status = "error", Status.INTERNAL.value
            error_id = error_id_of(exc, opened.query_id)
            raise
        finally:
            reader.close()
            trail.write(replace(
                opened, outcome=outcome, status=status, error_id=error_id, message=message,
                sources=sources(), rows=rows, bytes=nbytes,
                seconds=round(time.monotonic() - started, 6),
            ))  # fmt: skip

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def new_query_id() -> str:
    return secrets.token_hex(8)


def error_id_of(error: BaseException, query_id: str | None = None) -> str | None:
    """The id under which the server log holds an error's details; assigned once.

    Unexpected errors, sources' failures and errors with an operator-only `detail` get one;
    errors whose message says it all do not. An error of a query gets the query's id
    (`query_id`, also set as the error's `query_id`): the caller's message, the audit record
    and the log lines then quote one id.
    """
    if (
        isinstance(error, MeshgateError)
        and error.status not in LOGGED_STATUSES
        and error.detail is None
    ):
        return None
    existing = getattr(error, "error_id", None)
    if isinstance(existing, str):
        return existing
    error_id = query_id if query_id is not None else secrets.token_hex(6)
    error.error_id = error_id  # type: ignore[attr-defined]
    if query_id is not None:
        error.query_id = query_id  # type: ignore[attr-defined]
    return error_id


@dataclass
class AuditTrail:
    """Writes records and keeps the last `history` of them; thread-safe."""

    history: int = 1000
    file: Path | None = None
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5
    _records: deque[AuditRecord] = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _file_log: logging.Logger | None = field(init=False, default=None)
    # Called with every record written (metrics, OpenLineage run events); must not block or
    # raise.
    listeners: list[Callable[[AuditRecord], None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._records = deque(maxlen=self.history)
        if self.file is not None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                self.file, maxBytes=self.max_bytes, backupCount=self.backups, encoding="utf-8"
            )
            handler.setFormatter(logging.Formatter("%(message)s"))
            # A logger of its own per trail: records reach the file whatever the root config.
            self._file_log = logging.getLogger(f"meshgate.audit.file.{id(self)}")
            self._file_log.propagate = False
            self._file_log.setLevel(logging.INFO)
            self._file_log.addHandler(handler)

    def write(self, record: AuditRecord) -> None:
        line = record.json()
        audit_log.info(line, extra={"query_id": record.query_id})
        if self._file_log is not None:
            self._file_log.info(line)
        with self._lock:
            self._records.append(record)
        for listener in self.listeners:
            listener(record)

    def records(self, user: str | None = None) -> Sequence[AuditRecord]:
        """The kept records, oldest first; only `user`'s when given."""
        with self._lock:
            kept = list(self._records)
        return kept if user is None else [r for r in kept if r.user == user]

    def close(self) -> None:
        if self._file_log is not None:
            for handler in list(self._file_log.handlers):
                handler.close()
                self._file_log.removeHandler(handler)
