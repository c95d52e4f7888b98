"""The results store: an SQLite file under the state directory, one row per check run.

SQLite because it ships with Python, takes one writer and many readers across threads and
processes (`meshgate check --quality` from cron beside a running `meshgate serve`), and a
missing file is simply "never checked". Each call opens its own connection: no connection is
shared between threads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from meshgate.catalog.loader import MeshDefinition
from meshgate.catalog.quality import QualityResult
from meshgate.errors import ConfigError

STATE_DIRECTORY = ".meshgate-state"
FILE_NAME = "quality.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quality_results (
    product TEXT NOT NULL,
    expectation TEXT NOT NULL,
    outcome TEXT NOT NULL,
    observed REAL,
    checked_at TEXT NOT NULL,
    duration REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS quality_results_product ON quality_results (product, checked_at);
CREATE TABLE IF NOT EXISTS product_versions (
    product TEXT NOT NULL,
    version TEXT NOT NULL,
    first_served TEXT NOT NULL,
    PRIMARY KEY (product, version)
);
CREATE TABLE IF NOT EXISTS row_count_estimates (
    product TEXT PRIMARY KEY,
    row_count INTEGER NOT NULL,
    estimated_at TEXT NOT NULL
);
"""


def state_directory(definition: MeshDefinition) -> Path:
    """`server.state_directory` (relative to the config directory), else
    `<config dir>/.meshgate-state`."""
    configured = definition.server.state_directory
    path = Path(configured).expanduser() if configured is not None else Path(STATE_DIRECTORY)
    return path if path.is_absolute() else definition.directory / path


class QualityStore:
    """Quality results of one deployment; thread-safe (a connection per call)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_definition(cls, definition: MeshDefinition) -> QualityStore:
        return cls(state_directory(definition) / FILE_NAME)

    def record(self, results: Sequence[QualityResult], estimates: dict[str, int]) -> None:
        """Keep one run's results and the row count estimates it read."""
        with self._connection(create=True) as connection:
            connection.executemany(
                "INSERT INTO quality_results VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(r.product, r.expectation, r.outcome, r.observed, r.checked_at.isoformat(),
                  r.duration_seconds, r.detail) for r in results],
            )  # fmt: skip
            connection.executemany(
                "INSERT OR REPLACE INTO row_count_estimates VALUES (?, ?, ?)",
                [(p, n, dt.datetime.now(dt.UTC).isoformat()) for p, n in estimates.items()],
            )

    def results(self, products: Sequence[str]) -> list[QualityResult]:
        return self._select(products, latest=False)

    def latest(self, products: Sequence[str]) -> list[QualityResult]:
        return self._select(products, latest=True)

    def _select(self, products: Sequence[str], *, latest: bool) -> list[QualityResult]:
        if not products or not self.path.exists():
            return []
        marks = ", ".join("?" for _ in products)
        newest = (" AND rowid IN (SELECT max(rowid) FROM quality_results "
                  "GROUP BY product, expectation)") if latest else ""  # fmt: skip
        with self._connection(create=False) as connection:
            rows = connection.execute(
                "SELECT product, expectation, outcome, observed, checked_at, duration, detail "
                f"FROM quality_results WHERE product IN ({marks}){newest} "
                "ORDER BY checked_at, rowid",
                list(products),
            ).fetchall()
        return [QualityResult(p, e, o, v, dt.datetime.fromisoformat(t), d, x)
                for p, e, o, v, t, d, x in rows]  # fmt: skip

    def record_versions(self, versions: dict[str, str]) -> None:
        """Note each product's contract version the first time a server serves it: the
        product's version history, as this deployment has served it."""
        with self._connection(create=True) as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO product_versions VALUES (?, ?, ?)",
                [(p, v, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
                 for p, v in versions.items()],
            )  # fmt: skip

    def version_history(self, product: str) -> list[tuple[str, str]]:
        """(version, first served) of one product, oldest first."""
        if not self.path.exists():
            return []
        with self._connection(create=True) as connection:
            rows = connection.execute(
                "SELECT version, first_served FROM product_versions WHERE product = ? "
                "ORDER BY first_served, rowid", (product,)).fetchall()
        return [(str(v), str(t)) for v, t in rows]

    def row_count_estimates(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        with self._connection(create=False) as connection:
            rows = connection.execute("SELECT product, row_count FROM row_count_estimates")
            return {str(p): int(n) for p, n in rows.fetchall()}

    @contextlib.contextmanager
    def _connection(self, *, create: bool) -> Iterator[sqlite3.Connection]:
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the quality results store {self.path}: {exc}; set "
                "server.state_directory to a directory meshgate may write"
            ) from None
        try:
            with connection:
                if create:
                    connection.executescript(_SCHEMA)
                yield connection
        finally:
            connection.close()
