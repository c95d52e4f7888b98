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
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from meshgate.errors import MeshgateError, Status

audit_log = logging.getLogger("meshgate.audit")
# Statuses whose details only the server log has: the client gets the id to quote.
LOGGED_STATUSES = (Status.UNAVAILABLE, Status.INTERNAL)


@dataclass(frozen=True)
class SourceCall:
    """What one fragment sent to one source and what came back."""

    source: str
    sql: str
    rows: int


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
    sources: tuple[SourceCall, ...] = ()
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), default=str)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def new_query_id() -> str:
    return secrets.token_hex(8)


def error_id_of(error: BaseException) -> str | None:
    """The id under which the server log holds an error's details; assigned once.

    Unexpected errors, sources' failures and errors with an operator-only `detail` get one;
    errors whose message says it all do not.
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
    error_id = secrets.token_hex(6)
    error.error_id = error_id  # type: ignore[attr-defined]
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
        audit_log.info(line)
        if self._file_log is not None:
            self._file_log.info(line)
        with self._lock:
            self._records.append(record)

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
