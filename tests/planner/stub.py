"""A PostgreSQL source for planner goldens that needs no PostgreSQL (datafusion-federation's
stub executor): the real connector's capability table, collation handling and rendering over
a declared catalog, statistics included; asked to run anything, it refuses.

The catalog is what PostgreSQL 15 reports for the crm tables of tests/planner/mesh.py (as
read by the connector's own catalog queries, database collation C.UTF-8) after an ANALYZE,
so the stub plans exactly what the real connector plans; test_golden.py's PostgreSQL test
holds the real connector to the same goldens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
from meshgate_postgres import (
    _COLLATION_SQL,
    _COLUMNS_SQL,
    _PAGES_SQL,
    _STATISTICS_SQL,
    PostgresConnector,
)

from meshgate.spi import CancelToken

STUB_DSN = "postgresql://planner-stub@127.0.0.1:1/crm"

# (attname, typname, typmod, element, nullable, uses the default collation, bytewise)
COLUMNS: dict[str, list[tuple[Any, ...]]] = {
    "contacts": [
        ("contact_id", "int8", -1, None, False, False, True),
        ("customer_id", "int8", -1, None, True, False, True),
        ("email", "text", -1, None, True, True, False),
        ("name", "text", -1, None, True, False, False),  # COLLATE "en-US-x-icu"
        ("created", "date", -1, None, True, False, True),
    ],
    "tickets": [
        ("ticket_id", "int8", -1, None, False, False, True),
        ("contact_id", "int8", -1, None, True, False, True),
        ("priority", "int4", -1, None, True, False, True),
        ("subject", "text", -1, None, True, True, False),
        ("opened_at", "timestamptz", -1, None, True, False, True),
    ],
}
# (reltuples, attname, null_frac, n_distinct, histogram_bounds, most_common_vals)
STATISTICS: dict[str, list[tuple[Any, ...]]] = {
    "contacts": [
        (60.0, "contact_id", 0.0, -1.0, "{1,15,30,45,60}", None),
        (60.0, "customer_id", 0.05, 34.0, "{1,11,22,33,44}", None),
        (60.0, "email", 0.13, -0.87, None, None),
        (60.0, "name", 0.0, -1.0, None, None),
        (60.0, "created", 0.0, -1.0, "{2023-01-06,2023-06-05,2023-11-02}", None),
    ],
    "tickets": [
        (150.0, "ticket_id", 0.0, -1.0, "{1,50,100,150}", None),
        (150.0, "contact_id", 0.02, 58.0, "{1,16,32,48,64}", None),
        (150.0, "priority", 0.25, 3.0, None, "{1,2,3}"),
        (150.0, "subject", 0.0, 4.0, None, None),
        (150.0, "opened_at", 0.0, -1.0, None, None),
    ],
}
CATALOG: dict[str, Callable[[str], list[tuple[Any, ...]]]] = {
    _COLLATION_SQL: lambda table: [("C.UTF-8",)],
    _COLUMNS_SQL: lambda table: COLUMNS.get(table, []),
    _STATISTICS_SQL: lambda table: STATISTICS.get(table, []),
    _PAGES_SQL: lambda table: [(1,)] if table in COLUMNS else [],
}


class PlanOnlyPostgres(PostgresConnector):
    """`PostgresConnector` answering its catalog queries from CATALOG; executes nothing."""

    def _metadata(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        table = str(parameters[1]) if len(parameters) > 1 else ""
        return list(CATALOG[sql](table))

    def _estimate(self, sql: str) -> int | None:
        return None  # PostgreSQL's planner is not here; plain scans still get reltuples

    def _stream(
        self, sql: str, parameters: Sequence[Any], schema: pa.Schema, cancel: CancelToken
    ) -> Iterator[pa.RecordBatch]:
        raise AssertionError(f"the planner stub never executes; it was sent {sql}")
