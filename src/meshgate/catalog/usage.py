"""How much each product is used: queries and distinct users over the last 7 and 30 days.

Counted from the audit trail: the audit file and its rotated backups when one is configured
(so the figures survive a restart), else the records kept in memory. A query counts for every
product it names, whatever its outcome, once it got past binding (a refused query names none).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from meshgate.audit import AuditRecord, AuditTrail

log = logging.getLogger(__name__)

WINDOWS = (7, 30)  # days


@dataclass(frozen=True)
class ProductUse:
    """One query's use of one product, as the audit trail recorded it."""

    time: dt.datetime
    user: str
    product: str


@dataclass(frozen=True)
class ProductUsage:
    queries_7d: int = 0
    queries_30d: int = 0
    users_7d: int = 0
    users_30d: int = 0
    last_queried: str | None = None  # UTC, ISO 8601


def recorded_uses(trail: AuditTrail) -> list[ProductUse]:
    """Every product use the trail holds: from its file when it has one, else from memory."""
    if trail.file is None:
        return list(_uses(trail.records()))
    files = [trail.file.with_name(f"{trail.file.name}.{n}") for n in range(trail.backups, 0, -1)]
    return [use for path in (*files, trail.file) for use in _file_uses(path)]


def product_usage(uses: Iterable[ProductUse], now: dt.datetime) -> dict[str, ProductUsage]:
    """Per `domain.product`, the figures of the last 7 and 30 days before `now`."""
    since = {days: now - dt.timedelta(days=days) for days in WINDOWS}
    queries: dict[tuple[str, int], int] = {}
    users: dict[tuple[str, int], set[str]] = {}
    last: dict[str, dt.datetime] = {}
    for use in uses:
        for days, start in since.items():
            if start <= use.time <= now:
                queries[(use.product, days)] = queries.get((use.product, days), 0) + 1
                users.setdefault((use.product, days), set()).add(use.user)
        if use.time <= now and (use.product not in last or use.time > last[use.product]):
            last[use.product] = use.time
    return {
        product: ProductUsage(
            queries.get((product, 7), 0), queries.get((product, 30), 0),
            len(users.get((product, 7), ())), len(users.get((product, 30), ())),
            moment.isoformat(timespec="milliseconds"),
        )
        for product, moment in last.items()
    }  # fmt: skip


def _uses(records: Sequence[AuditRecord]) -> Iterator[ProductUse]:
    for record in records:
        yield from _record_uses(record.time, record.user, record.products)


def _record_uses(time: str, user: str, products: Iterable[str]) -> Iterator[ProductUse]:
    try:
        moment = dt.datetime.fromisoformat(time)
    except ValueError:
        return
    for product in products:
        yield ProductUse(moment, user, product)


def _file_uses(path: Path) -> Iterator[ProductUse]:
    try:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                    yield from _record_uses(record["time"], record["user"], record["products"])
                except (ValueError, KeyError, TypeError):
                    log.warning("skipped an unreadable line of the audit file %s", path)
    except FileNotFoundError:
        return
