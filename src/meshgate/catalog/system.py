"""The `meshgate` system schema: discovery tables filtered to what the caller may see.

`meshgate.domains`, `meshgate.products` and `meshgate.columns` are built per query from the
caller's `CatalogView`, so an ungranted product is absent here exactly as in GetTables.
Columns are declared nullable because query results are (a merge does not keep NOT NULL),
and metadata must describe what a `SELECT *` returns.
"""

from __future__ import annotations

import pyarrow as pa

from meshgate.catalog.catalog import CatalogView, QueryDefinition
from meshgate.catalog.deprecation import visible_successor
from meshgate.catalog.quality import ProductHealth, health
from meshgate.types import sql_type_name

SYSTEM_SCHEMA = "meshgate"

DOMAINS = pa.schema(
    [
        pa.field("domain", pa.string()),
        pa.field("owner", pa.string()),
        pa.field("description", pa.string()),
        pa.field("products", pa.int64()),
    ]
)
PRODUCTS = pa.schema(
    [
        pa.field("domain", pa.string()),
        pa.field("product", pa.string()),
        pa.field("description", pa.string()),
        pa.field("owner", pa.string()),
        pa.field("version", pa.string()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("kind", pa.string()),
        pa.field("deprecated", pa.bool_()),
        pa.field("successor", pa.string()),  # only one the caller may read
        pa.field("sunset", pa.date32()),  # the day after which a deprecated product may go
        # Health from the latest quality checks (meshgate check --quality); numbers only for
        # callers the product's policies do not restrict (they would count hidden rows).
        pa.field("last_checked_at", pa.timestamp("us", tz="UTC")),
        pa.field("quality_status", pa.string()),
        pa.field("failed_expectations", pa.list_(pa.string())),
        pa.field("freshness_age_seconds", pa.float64()),
        pa.field("freshness_ok", pa.bool_()),
        pa.field("row_count_estimate", pa.int64()),
    ]
)
QUALITY_RESULTS = pa.schema(
    [
        pa.field("domain", pa.string()),
        pa.field("product", pa.string()),
        pa.field("expectation", pa.string()),
        pa.field("outcome", pa.string()),
        pa.field("observed", pa.float64()),  # NULL for callers the product's policies restrict
        pa.field("checked_at", pa.timestamp("us", tz="UTC")),
        pa.field("duration_seconds", pa.float64()),
        pa.field("detail", pa.string()),
    ]
)
COLUMNS = pa.schema(
    [
        pa.field("domain", pa.string()),
        pa.field("product", pa.string()),
        pa.field("column_name", pa.string()),
        pa.field("ordinal", pa.int32()),
        pa.field("data_type", pa.string()),
        pa.field("nullable", pa.bool_()),
        pa.field("classification", pa.string()),
        pa.field("description", pa.string()),
        pa.field("masked", pa.bool_()),  # whether the caller's policies mask this column
    ]
)

QUERY_HISTORY = pa.schema(
    [
        pa.field("time", pa.string()),
        pa.field("query_id", pa.string()),
        pa.field("user", pa.string()),
        pa.field("client", pa.string()),
        pa.field("sql", pa.string()),
        pa.field("outcome", pa.string()),
        pa.field("status", pa.string()),
        pa.field("error_id", pa.string()),
        pa.field("products", pa.list_(pa.string())),
        pa.field("policies", pa.list_(pa.string())),
        pa.field("rows", pa.int64()),
        pa.field("bytes", pa.int64()),
        pa.field("seconds", pa.float64()),
        pa.field("source_sql", pa.list_(pa.string())),  # admins only: physical SQL
    ]
)

SYSTEM_TABLES = ("domains", "products", "columns", "query_history", "quality_results")


def system_table(name: str, view: CatalogView) -> pa.Table:
    """One discovery table as the caller may see it."""
    products = view.products()
    if name == "domains":
        return pa.Table.from_pylist(
            [
                {
                    "domain": d.name,
                    "owner": d.owner,
                    "description": d.description,
                    "products": sum(1 for p in products if p.domain == d.name),
                }
                for d in view.domains()
            ],
            schema=DOMAINS,
        )
    if name == "products":
        healths = _health(view)
        return pa.Table.from_pylist(
            [
                {
                    "domain": p.domain,
                    "product": p.name,
                    "description": p.description,
                    "owner": p.owner,
                    "version": p.version,
                    "tags": list(p.tags),
                    "kind": "query" if isinstance(p.definition, QueryDefinition) else "table",
                    "deprecated": p.deprecated is not None,
                    "successor": visible_successor(p, view),
                    "sunset": p.deprecated.sunset if p.deprecated is not None else None,
                    **_health_row(healths[p.qualified_name], numbers=not view.restricted(p)),
                }
                for p in products
            ],
            schema=PRODUCTS,
        )
    if name == "quality_results":
        log = view.quality
        by_name = {p.qualified_name: p for p in products}
        found = [] if log is None else log.results(sorted(by_name))
        return pa.Table.from_pylist(
            [
                {
                    "domain": r.product.split(".", 1)[0],
                    "product": r.product.split(".", 1)[1],
                    "expectation": r.expectation, "outcome": r.outcome,
                    "observed": None if view.restricted(by_name[r.product]) else r.observed,
                    "checked_at": r.checked_at, "duration_seconds": r.duration_seconds,
                    "detail": r.detail,
                }
                for r in found if r.product in by_name
            ],
            schema=QUALITY_RESULTS,
        )  # fmt: skip
    if name == "columns":
        return pa.Table.from_pylist(
            [
                {
                    "domain": p.domain,
                    "product": p.name,
                    "column_name": c.name,
                    "ordinal": i,
                    "data_type": sql_type_name(c.arrow_type),
                    "nullable": c.nullable,
                    "classification": c.classification,
                    "description": c.description,
                    "masked": c.name in masked,
                }
                for p in products
                for masked in (view.masked_columns(p),)
                for i, c in enumerate(p.columns, start=1)
            ],
            schema=COLUMNS,
        )
    if name == "query_history":
        admin = view.catalog.is_admin(view.principal)
        return pa.Table.from_pylist(
            [
                {
                    "time": r.time, "query_id": r.query_id, "user": r.user, "client": r.client,
                    "sql": r.sql, "outcome": r.outcome, "status": r.status,
                    "error_id": r.error_id, "products": list(r.products),
                    "policies": list(r.policies), "rows": r.rows, "bytes": r.bytes,
                    "seconds": r.seconds,
                    "source_sql": [s.sql for s in r.sources] if admin else None,
                }
                for r in view.history()
            ],
            schema=QUERY_HISTORY,
        )  # fmt: skip
    raise KeyError(name)


def _health(view: CatalogView) -> dict[str, ProductHealth]:
    """Each visible product's health from the results store (read once per table)."""
    products = view.products()
    log = view.quality
    names = [p.qualified_name for p in products]
    results = [] if log is None else log.latest(names)
    estimates = {} if log is None else log.row_count_estimates()
    configs = view.catalog.definition.products
    return {
        p.qualified_name: health(p, configs[(p.domain, p.name)].quality, results,
                                 estimates.get(p.qualified_name))
        for p in products
    }  # fmt: skip


def _health_row(found: ProductHealth, *, numbers: bool) -> dict[str, object]:
    return {
        "last_checked_at": found.last_checked_at,
        "quality_status": found.status,
        "failed_expectations": list(found.failed),
        "freshness_age_seconds": found.freshness_age_seconds if numbers else None,
        "freshness_ok": found.freshness_ok,
        "row_count_estimate": found.row_count_estimate if numbers else None,
    }
