"""A large result as several Flight endpoints, which clients such as ADBC and JDBC fetch in
parallel (`server.result_endpoints`, the session option or call header `result_endpoints`).

A query is split only where the union of the parts is exactly its result whatever the data:
a plain SELECT (no grouping, aggregate, DISTINCT, window, ORDER BY, LIMIT or OFFSET at its top;
no set operation). Two ways, the first that applies:

- The whole query runs at one source as a plain scan of one table (a PostgreSQL table, with
  its policies' filters and masks in that scan): the source cuts the scan into slices of its
  own (`Connector.share_scan`; PostgreSQL: page ranges read from one exported snapshot, see
  meshgate_postgres/slices.py), and each part is the caller's own plan reading one slice, so
  the table is read once in all, and the parts are exactly the rows one stream would have
  returned at the snapshot's instant, whatever is updated between the parts' reads.
- Otherwise, with an integer output column: part i of n is the query as a derived table
  filtered on that column, `abs(k % n) = i`, with NULL keys in part 0: each row the query
  returns satisfies exactly one part's condition, so nothing is lost or duplicated, and the
  condition is planned like any other (pushed into the sources' fragments where they can run
  it). Each part reads what it reads at its own time: rows updated between the parts' reads
  may then be seen twice or not at all; and a table is scanned once per part where the
  condition cannot use an index.

Either way the parts are the caller's queries, so every grant, policy and limit applies to
each.

Clients that read only the first endpoint (flightsql-dbapi, many pyarrow scripts) must not be
sent several, so splitting is asked for by the client, or set as a deployment default only
where every client reads every endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
from sqlglot import exp

from meshgate.planner.plan import FederatedPlan
from meshgate.service import PreparedQuery
from meshgate.spi import Connector, ScanSlice

HEADER = "x-meshgate-result-endpoints"
OPTION = "result_endpoints"
ALIAS = "__meshgate_part"


def scan_slices(prepared: PreparedQuery, count: int, connectors: Mapping[str, Connector],
                hold_seconds: float) -> list[ScanSlice]:
    """`count` slices of the one source scan that is `prepared`'s whole plan, valid for at
    least `hold_seconds`; [] when the plan is not that or its source cannot slice it."""
    plan = prepared.plan
    if count < 2 or prepared.statement.explain or prepared.parameter_count:
        return []
    if not isinstance(plan, FederatedPlan) or plan.residual is not None or plan.stages or \
            len(plan.fragments) != 1:  # fmt: skip
        return []
    tree = prepared.statement.tree
    if not isinstance(tree, exp.Select) or not _row_wise(tree) or _volatile(tree):
        return []
    (fragment,) = plan.fragments
    tokens = connectors[fragment.source].share_scan(fragment.handle, count, hold_seconds)
    return [ScanSlice(fragment.source, token) for token in tokens or ()]


def split_queries(prepared: PreparedQuery, count: int) -> list[str]:
    """`count` SQL texts whose results together are exactly `prepared`'s, or [] when its
    result cannot be split that way."""
    if count < 2 or prepared.statement.explain:
        return []
    tree = prepared.statement.tree
    if not isinstance(tree, exp.Select) or not _row_wise(tree):
        return []
    key = _split_key(prepared.schema)
    if key is None or not _stored(tree, key) or _volatile(tree):
        return []
    inner = prepared.sql.rstrip().rstrip(";").rstrip()
    column = f'{ALIAS}.{exp.to_identifier(key, quoted=True).sql("duckdb")}'
    parts = []
    for part in range(count):
        condition = f"abs({column} % {count}) = {part}"
        if part == 0:
            condition = f"({column} IS NULL OR {condition})"
        # Newlines keep a trailing `--` comment of the client's text from swallowing the end.
        parts.append(f"SELECT * FROM (\n{inner}\n) AS {ALIAS} WHERE {condition}")
    return parts


# Functions whose value differs between the parts' evaluations: a row could then meet two
# parts' conditions, or none.
_VOLATILE_NODES = (exp.Rand, exp.Randn, exp.Randstr, exp.Uuid, exp.CurrentDate, exp.CurrentTime,
                   exp.CurrentTimestamp, exp.CurrentTimestampLTZ, exp.CurrentDatetime)
_VOLATILE_NAMES = frozenset({"now", "random", "setseed", "nextval", "gen_random_uuid",
                             "get_current_time", "get_current_timestamp", "current_localtime",
                             "current_localtimestamp", "transaction_timestamp", "today"})


def _row_wise(select: exp.Select) -> bool:
    """Whether each result row comes from one row of the FROM, independently of the others
    (then the parts' condition goes down to the sources and each part reads only its rows)."""
    clauses = ("group", "having", "distinct", "order", "limit", "offset", "qualify", "windows")
    if any(select.args.get(clause) for clause in clauses):
        return False
    return not any(_aggregates(projection) for projection in select.expressions)


def _aggregates(node: exp.Expr) -> bool:
    """An aggregate or window of this SELECT (a scalar subquery's own are its business)."""
    if isinstance(node, exp.AggFunc | exp.Window):
        return True
    return any(_aggregates(child) for child in node.iter_expressions()
               if not isinstance(child, exp.Subquery | exp.Select))


def _stored(select: exp.Select, key: str) -> bool:
    """Whether the key column is a column read as stored (through its policies), not computed."""
    for projection in select.expressions:
        if projection.alias_or_name == key and not isinstance(projection, exp.Star):
            return isinstance(projection.unalias(), exp.Column) and \
                not isinstance(projection.unalias().this, exp.Star)
    items = [select.args.get("from_"), *(select.args.get("joins") or [])]
    return all(item is not None and isinstance(item.this, exp.Table) for item in items)


def _volatile(tree: exp.Expr) -> bool:
    for node in tree.walk():
        if isinstance(node, _VOLATILE_NODES):
            return True
        if isinstance(node, exp.Anonymous) and str(node.name).lower() in _VOLATILE_NAMES:
            return True
    return False


def _split_key(schema: pa.Schema) -> str | None:
    """The first integer output column whose name is unique (the derived table needs it)."""
    names = schema.names
    for field in schema:
        if pa.types.is_integer(field.type) and names.count(field.name) == 1:
            return str(field.name)
    return None


def requested(text: str | None) -> int | None:
    """A positive endpoint count as a client wrote it, or None when absent or not one."""
    if text is None:
        return None
    try:
        number = int(text.strip())
    except ValueError:
        return None
    return number if number > 0 else None
