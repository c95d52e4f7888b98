"""Which reader a statement's rows take, from how many rows it returned last time.

DuckDB's postgres extension decodes a large result at about half the ADBC driver's CPU
(bulk.py), but each of its reads costs five round trips and four DuckDB statements before
the first row (the transaction, a probe for the backend pid, a describe, the COPY, the
rollback), where the driver needs two. For a small result that set-up is the whole read: 1,000
rows took 3.1 ms through DuckDB and 1.4 ms through the driver; at 10,000 rows both took the
same. A statement whose last complete read returned at most `SMALL_READ_ROWS` rows is read
through the driver next time. The first read of a text, and any read after a larger one,
goes through DuckDB.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator

import pyarrow as pa

SMALL_READ_ROWS = 4096
REMEMBERED_STATEMENTS = 1024


class ReadSizes:
    """The row counts of the last complete read of recent statement texts (bounded)."""

    def __init__(self, kept: int = REMEMBERED_STATEMENTS) -> None:
        self._kept = kept
        self._rows: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def small(self, sql: str) -> bool:
        """Whether `sql`'s last complete read returned at most SMALL_READ_ROWS rows."""
        with self._lock:
            rows = self._rows.get(sql)
            if rows is not None:
                self._rows.move_to_end(sql)
        return rows is not None and rows <= SMALL_READ_ROWS

    def counted(self, sql: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """`batches`, their rows remembered for `sql` once they are all read."""
        rows = 0
        for batch in batches:
            rows += batch.num_rows
            yield batch
        with self._lock:
            self._rows[sql] = rows
            self._rows.move_to_end(sql)
            while len(self._rows) > self._kept:
                self._rows.popitem(last=False)
