"""Runs products' quality expectations through the QueryService, as each product's owner.

The owner is a principal named by the product's `owner` holding exactly the configured roles
that grant the product: it reads the product as its granted consumers together do (policies
add up across roles; a role without a policy on the product sees it whole), never more than
some configured role may read, and through the same binding, barrier, pushdown and audit as a
client's query. A product no role grants cannot be checked: grant it to a role.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa

from meshgate.catalog.catalog import DataProduct, TableDefinition
from meshgate.catalog.config import ExpectationConfig
from meshgate.catalog.quality import ERROR, QualityResult, check_query, judge
from meshgate.errors import ConfigError, MeshgateError
from meshgate.execution.run import ExecutionReport
from meshgate.principal import Principal
from meshgate.service import QueryService
from meshgate.spi import CANONICAL_DIALECT, SourceColumn

CLIENT = "meshgate quality check"  # the audit record's client of every check query


@dataclass(frozen=True)
class CheckRun:
    """One expectation's result and what its query made the sources do."""

    result: QualityResult
    sql: str  # the check query, as meshgate ran it
    source_sql: tuple[str, ...]  # the SQL each source received
    source_rows: int  # rows the sources sent back (1 for a pushed-down aggregate)


def owner_principal(service: QueryService, product: DataProduct) -> Principal:
    """The product's owner: its `owner` name with the configured roles that grant it."""
    roles = frozenset(
        name for name in service.definition.roles
        if service.catalog.granting_roles(Principal(product.owner, frozenset({name})), product)
    )  # fmt: skip
    if not roles:
        raise ConfigError(
            f"no role grants {product.qualified_name}, so nobody may read it: its quality "
            "checks run as its owner with the roles granting it; grant it to a role"
        )
    return Principal(product.owner, roles)


def checked_products(service: QueryService, only: str | None = None) -> list[DataProduct]:
    """Products declaring expectations, or the one named by `only` (domain.product)."""
    catalog = service.catalog
    if only is not None:
        domain, _, name = only.partition(".")
        product = catalog.products.get((domain, name))
        if product is None:
            known = ", ".join(sorted(p.qualified_name for p in catalog.products.values()))
            raise ConfigError(f"no product {only!r}; name one as domain.product ({known})")
        return [product]
    configs = service.definition.products
    return [p for key, p in sorted(catalog.products.items()) if configs[key].quality]


def run_checks(
    service: QueryService,
    products: Sequence[DataProduct],
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> list[CheckRun]:
    """Run every expectation of `products`, record the results, and return them."""
    runs: list[CheckRun] = []
    estimates: dict[str, int] = {}
    for product in products:
        expectations = service.definition.products[(product.domain, product.name)].quality
        if not expectations:
            continue
        principal = owner_principal(service, product)
        runs.extend(_run(service, product, e, principal, clock) for e in expectations)
        estimate = row_count_estimate(service, product)
        if estimate is not None:
            estimates[product.qualified_name] = estimate
    service.quality_store.record([r.result for r in runs], estimates)
    return runs


def row_count_estimate(service: QueryService, product: DataProduct) -> int | None:
    """The source's own estimate of a table product's rows (catalog statistics), if it keeps
    one; never a count of the rows."""
    definition = product.definition
    if not isinstance(definition, TableDefinition):
        return None
    connector = service.connectors[definition.source]
    columns = [SourceColumn(name, c.arrow_type)
               for name, c in zip(definition.source_columns, product.columns, strict=True)]
    try:
        return connector.estimate_rows(connector.scan(definition.table, "t", columns))
    except MeshgateError:
        return None


def _run(
    service: QueryService,
    product: DataProduct,
    expectation: ExpectationConfig,
    principal: Principal,
    clock: Callable[[], dt.datetime],
) -> CheckRun:
    sql = (expectation.sql.query if expectation.sql is not None
           else check_query(product, expectation).sql(CANONICAL_DIALECT))  # fmt: skip
    report = ExecutionReport()
    started = time.monotonic()
    checked_at = clock()
    try:
        prepared = service.prepare(sql, principal, client=CLIENT)
        value = _single_value(service.execute(prepared, report=report), expectation)
        outcome, observed, detail = judge(expectation, value, checked_at)
    except (MeshgateError, ValueError) as exc:
        message = exc.message if isinstance(exc, MeshgateError) else str(exc)
        outcome, observed, detail = ERROR, None, f"the check could not run: {message}"
    fragments = tuple(report.fragments.values())
    result = QualityResult(product.qualified_name, expectation.name, outcome, observed,
                           checked_at, time.monotonic() - started, detail)  # fmt: skip
    return CheckRun(result, sql, tuple(f.sql for f in fragments), sum(f.rows for f in fragments))


def _single_value(reader: pa.RecordBatchReader, expectation: ExpectationConfig) -> object:
    """The one value of a one-row, one-column answer; a custom query answering more stops
    at its second row instead of pulling its whole result."""
    rows: list[object] = []
    try:
        for batch in reader:
            if batch.num_columns != 1:
                break
            rows.extend(batch.column(0).slice(0, 2 - len(rows)).to_pylist())
            if len(rows) > 1:
                break
    finally:
        reader.close()
    if len(reader.schema.names) != 1 or len(rows) != 1:
        raise ConfigError(
            f"the check {expectation.name} does not answer one row of one column; a check "
            "query returns one number, the count of bad rows, e.g. SELECT count(*) FROM "
            "<domain.product> WHERE <a bad row>"
        )
    return rows[0]
