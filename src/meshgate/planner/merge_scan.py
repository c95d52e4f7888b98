"""Tables the merge DuckDB reads itself instead of receiving them as a fragment's stream.

A connector that offers a `LocalScan` (Parquet, CSV) lets the merge run its own parallel
scanner over the files, with DuckDB's filter and projection pushdown and the min/max and
bloom join filters of the query's hash joins, and no Arrow batches crossing Python. The
planner inlines only *base* scans, a table on its own under its alias, never a pre-joined
fragment, so DuckDB orders the joins with the files' real cardinalities. A key join of files
tables is inlined table by table too, unless as a fragment its keys may restrict a table
elsewhere at its source (a key set, a narrowing range: `federate._inline_join_group`); a
whole subquery the files source runs alone stays a fragment (it runs beside the other sources).
Only where the engine's sandbox may read every directory the scan reads; strict pushdown
never inlines (work in the merge is what it refuses).
"""

from __future__ import annotations

from sqlglot import exp

from meshgate.planner.plan import MergeScan
from meshgate.planner.schema import LocalFileReader, ResultDescriber
from meshgate.query.names import PhysicalTable
from meshgate.spi import CANONICAL_DIALECT, Connector


def merge_relation(
    connector: Connector,
    physical: PhysicalTable,
    alias: str,
    engine: ResultDescriber,
) -> exp.Expr | None:
    """`physical` as a FROM item under `alias` the merge evaluates, or None (a fragment)."""
    if not isinstance(engine, LocalFileReader):
        return None
    scan = connector.local_scan(physical.table, physical.columns)
    if scan is None or not scan.directories or not engine.can_read(scan.directories):
        return None
    relation = scan.relation.copy()
    relation.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    return relation


def merge_scan(name: str, source: str, relation: exp.Expr) -> MergeScan:
    """The EXPLAIN record of an inlined relation (its SQL without the alias)."""
    shown = relation.copy()
    shown.set("alias", None)
    return MergeScan(name, source, shown.sql(CANONICAL_DIALECT))
