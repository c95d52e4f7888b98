"""Whether a join goes down to its source whole or its tables are pulled and joined in DuckDB.

A source runs a join slower than DuckDB when its planner picks a plan it executes on one core
(TPC-H Q13 pushed whole: PostgreSQL 3.2 s; pulling customer and orders and joining in the
merge: 1.5 s). The gate compares, in the source planner's own cost units and from its own
statistics (so the decision is deterministic given them):

- push: the planner's total cost for the whole query;
- pull: its cost to scan each input table (no filters: never less than what the split plan
  reads), plus moving every value of the columns the query reads and the merge's work on
  every row, at `MOVE_COST_PER_VALUE` and `MERGE_COST_PER_ROW`.

The query goes down whole when it moves no more rows than pulling and costs no more; when the
source cannot estimate a part (no ANALYZE, a parameter in the SQL), or pulling would move
fewer than `MIN_PULLED_ROWS` rows, it goes down as before.
The constants are measured on PostgreSQL 15 with the ADBC driver (benchmarks/README.md): one
cost unit of Q13's plan takes about 20 us, decoding one value into Arrow about 0.17 us.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from meshgate.spi import ColumnStatistics, Connector, PlanCost, PushedQuery

MOVE_COST_PER_VALUE = 0.01
MERGE_COST_PER_ROW = 0.01
# Below this many pulled rows either plan takes milliseconds: the join goes down as before.
MIN_PULLED_ROWS = 100_000


@dataclass(frozen=True)
class Verdict:
    """The gate's answer, with the line EXPLAIN shows for it."""

    push: bool
    reason: str


def whole_query_verdict(connector: Connector, handle: PushedQuery) -> Verdict | None:
    """Push or pull a join of two or more tables; None when it is not a join or unknown."""
    if len(handle.inputs) < 2:
        return None
    whole = connector.estimate_cost(handle)
    if whole is None:
        return None
    pull = _pull_cost(connector, handle)
    if pull is None:
        return None
    rows, cost = pull
    if rows < MIN_PULLED_ROWS:
        return None
    figures = (
        f"source cost {whole.cost:.0f} for {whole.rows} rows pushed whole vs {cost:.0f} "
        f"to pull {rows} rows of its {len(handle.inputs)} tables"
    )
    if whole.rows <= rows and whole.cost <= cost:
        return Verdict(True, f"pushed whole: {figures}")
    return Verdict(False, f"pulled and joined in the merge: {figures}")


# A join of tables at one source inside a larger query goes down joined unless it keeps more
# than this share of the rows its tables' own (filtered) reads return.
JOIN_GROUP_KEEPS = 0.1


def join_group_verdict(
    connector: Connector, tables: Sequence[PushedQuery], reads: Sequence[PushedQuery | None],
    joined: str,
) -> Verdict | None:
    """Push or pull a join group: `tables` each table read whole, `reads` the same with its
    own conditions (None: it has none). None when the source cannot estimate a part or the
    reads return fewer than `MIN_PULLED_ROWS` rows (then it goes down as before).

    PostgreSQL runs the join on one core (TPC-H Q5's customer-orders hash join spills at the
    default work_mem); pulled, the tables are read in parallel ranges and joined by DuckDB
    on every core. Where the join drops most rows (a selective dimension), it stays below.
    The group joins by keys, so its result is about its largest table's filtered rows times
    the share of each other table its conditions keep: no EXPLAIN of the join is needed (the
    tables' row counts are their catalog statistics; a filtered read's is one EXPLAIN).
    """
    totals: list[int] = []
    for table in tables:
        rows = connector.estimate_rows(table)
        if rows is None:
            return None
        totals.append(rows)
    if sum(totals) < MIN_PULLED_ROWS:
        return None
    kept: list[int] = []
    for total, read in zip(totals, reads, strict=True):
        rows = total if read is None else connector.estimate_rows(read)
        if rows is None:
            return None
        kept.append(min(rows, total))
    pulled = sum(kept)
    if pulled < MIN_PULLED_ROWS:
        return None
    root = max(range(len(totals)), key=lambda i: totals[i])
    whole = float(kept[root])
    for i, total in enumerate(totals):
        if i != root and total:
            whole *= kept[i] / total
    figures = (f"the join keeps an estimated {whole:.0f} of the {pulled} rows its tables "
               "return")  # fmt: skip
    if whole <= JOIN_GROUP_KEEPS * pulled:
        return Verdict(True, f"join of {joined} pushed: {figures}")
    return Verdict(False, f"join of {joined} pulled and joined in the merge: {figures}")


def _pull_cost(connector: Connector, handle: PushedQuery) -> tuple[int, float] | None:
    """Rows and cost of scanning every input of `handle` and joining them in the merge."""
    rows = 0
    cost = 0.0
    for item in handle.inputs:
        used = _used_columns(handle.select, item.alias)
        columns = [c for c in item.columns if c.name in used] or list(item.columns[:1])
        scan: PlanCost | None = connector.estimate_cost(
            connector.scan(item.table, item.alias, columns)
        )
        if scan is None:
            return None
        rows += scan.rows
        cost += scan.cost + scan.rows * (len(columns) * MOVE_COST_PER_VALUE + MERGE_COST_PER_ROW)
    return rows, cost


def _used_columns(select: exp.Expr, alias: str) -> set[str]:
    return {c.name for c in select.find_all(exp.Column) if c.table == alias}


# A dynamic filter lists at most this many keys (`key IN (...)`); above, it is a min/max range.
MAX_LISTED_KEYS = 100
# A key set (`Capabilities.key_sets`) holds at most this many keys, and no more than one per
# KEY_SET_SHARE rows of the table it is looked up in: past that, PostgreSQL's index lookups
# (29k keys: 0.16-0.23 s on the 2-core machine) cost about what reading every row does.
MAX_KEY_SET = 50_000
KEY_SET_SHARE = 20
# A key set is planned only into a table at least this large: below, its scan is cheap.
MIN_KEY_SET_PROBE_ROWS = 100_000


def key_set_size(probe_rows: int) -> int | None:
    """How many keys a key set into a table of `probe_rows` rows may hold; None: not worth
    one (the table is small enough to read whole)."""
    if probe_rows < MIN_KEY_SET_PROBE_ROWS:
        return None
    return min(MAX_KEY_SET, probe_rows // KEY_SET_SHARE)
# A range passing at least this share of the probe's key range is not worth waiting for.
USELESS_RANGE = 0.9


def dynamic_filter_verdict(
    build_rows: int | None,
    build_key: ColumnStatistics | None,
    probe_key: ColumnStatistics | None,
) -> Verdict | None:
    """Skip a dynamic filter whose min/max range would pass (nearly) every probe row.

    Called for a build side whose filters do not restrict the key itself: its keys then span
    its table's key range (`build_key`, from the source's statistics), and a range over them
    covers that share of the probe column's range (`probe_key`; unknown: all of it, as the
    probe's keys of a key join lie in the build table's). None: keep the filter (few enough
    keys to list, or statistics missing); the probe would otherwise wait for the build side
    for nothing (TPC-H Q5: 0.4 s). A build side of unknown size whose range would be useless
    gets `Verdict(True, ...)`: the filter is worth only a list of keys, so the probe starts
    unfiltered as soon as the build side has shown more (`DynamicFilter.listed_only`).
    """
    if (build_rows is not None and build_rows <= MAX_LISTED_KEYS) or build_key is None:
        return None
    low, high = build_key.min, build_key.max
    if low is None or high is None:
        return None
    coverage = 1.0
    try:
        if probe_key is not None and probe_key.min is not None and probe_key.max is not None:
            span = probe_key.max - probe_key.min
            overlap = min(high, probe_key.max) - max(low, probe_key.min)
            coverage = 1.0 if not span else max(0.0, min(1.0, overlap / span))
    except TypeError:  # values of types that do not subtract: no estimate
        return None
    if coverage < USELESS_RANGE:
        return None
    if build_rows is None:
        return Verdict(
            True,
            f"listed keys only: the build side's size is unknown and its key range {low}..{high} "
            f"covers {coverage:.0%} of the probe column's, so the probe waits for at most "
            f"{MAX_LISTED_KEYS} keys",
        )
    return Verdict(
        False,
        f"no dynamic filter: the build side is estimated at {build_rows} rows (over "
        f"{MAX_LISTED_KEYS} keys, so a min/max range) and its key range {low}..{high} covers "
        f"{coverage:.0%} of the probe column's",
    )
