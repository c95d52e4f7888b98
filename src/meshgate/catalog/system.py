"""The `meshgate` system schema: discovery tables filtered to what the caller may see.

`meshgate.domains`, `meshgate.products`, `meshgate.columns`, `meshgate.lineage` and
`meshgate.usage` are built per query from the caller's `CatalogView`, so an ungranted product
is absent here exactly as in GetTables.
Columns are declared nullable because query results are (a merge does not keep NOT NULL),
and metadata must describe what a `SELECT *` returns.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from meshgate.catalog.catalog import CatalogView, DataProduct, QueryDefinition
from meshgate.catalog.deprecation import visible_successor
from meshgate.catalog.lineage import mesh_lineage
from meshgate.catalog.quality import ProductHealth, health
from meshgate.catalog.usage import ProductUsage, product_usage
from meshgate.principal import Principal
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

# One row per (product column, upstream product column) it derives from, at any depth;
# rows whose chain holds a product the caller may not read are left out, and the physical
# origin (source, source_table, source_column) is shown to admins only.
LINEAGE = pa.schema(
    [
        pa.field("domain", pa.string()),
        pa.field("product", pa.string()),
        pa.field("column_name", pa.string()),
        pa.field("upstream_domain", pa.string()),
        pa.field("upstream_product", pa.string()),
        pa.field("upstream_column", pa.string()),
        pa.field("depth", pa.int32()),  # 1: read by the definition itself; 2: one product down
        pa.field("source", pa.string()),  # admins only; set when upstream is table-backed
        pa.field("source_table", pa.string()),
        pa.field("source_column", pa.string()),
    ]
)
# Per readable product: queries over the last 7/30 days for every reader; distinct users only
# for admins and the product's owner (NULL for everyone else).
USAGE = pa.schema(
    [
        pa.field("domain", pa.string()),
        pa.field("product", pa.string()),
        pa.field("queries_7d", pa.int64()),
        pa.field("queries_30d", pa.int64()),
        pa.field("users_7d", pa.int64()),
        pa.field("users_30d", pa.int64()),
        pa.field("last_queried", pa.string()),
    ]
)

SYSTEM_TABLES = ("domains", "products", "columns", "query_history", "quality_results", "lineage",
                 "usage")
# Each one's columns, for the surfaces that list them before any query (Flight SQL GetTables).
SYSTEM_TABLE_SCHEMAS: dict[str, pa.Schema] = dict(zip(
    SYSTEM_TABLES, (DOMAINS, PRODUCTS, COLUMNS, QUERY_HISTORY, QUALITY_RESULTS, LINEAGE, USAGE),
    strict=True))


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
    if name == "lineage":
        return _lineage(view)
    if name == "usage":
        return _usage(view)
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


def _lineage(view: CatalogView) -> pa.Table:
    readable = {p.qualified_name for p in view.products()}
    admin = view.catalog.is_admin(view.principal)
    rows = []
    for entry in mesh_lineage(view.catalog):
        if not readable.issuperset(entry.path):
            continue
        domain, product = entry.product.split(".", 1)
        upstream_domain, upstream_product = entry.upstream_product.split(".", 1)
        rows.append({
            "domain": domain, "product": product, "column_name": entry.column,
            "upstream_domain": upstream_domain, "upstream_product": upstream_product,
            "upstream_column": entry.upstream_column, "depth": entry.depth,
            "source": entry.source if admin else None,
            "source_table": entry.source_table if admin else None,
            "source_column": entry.source_column if admin else None,
        })  # fmt: skip
    return pa.Table.from_pylist(rows, schema=LINEAGE)


def _usage(view: CatalogView) -> pa.Table:
    figures = product_usage(view.uses(), dt.datetime.now(dt.UTC))
    admin = view.catalog.is_admin(view.principal)
    rows = []
    for p in view.products():
        usage = figures.get(p.qualified_name, ProductUsage())
        counts_users = admin or owns(view.principal, p)
        rows.append({
            "domain": p.domain, "product": p.name,
            "queries_7d": usage.queries_7d, "queries_30d": usage.queries_30d,
            "users_7d": usage.users_7d if counts_users else None,
            "users_30d": usage.users_30d if counts_users else None,
            "last_queried": usage.last_queried,
        })  # fmt: skip
    return pa.Table.from_pylist(rows, schema=USAGE)


def owns(principal: Principal, product: DataProduct) -> bool:
    """Whether `principal` is `product`'s owner: its user name, or its `email` attribute."""
    return product.owner in (principal.name, principal.attributes.get("email"))
