"""Which of a source's table statistics describe what a handle returns.

A table's catalog statistics (row count, per-column distinct count, null fraction, min/max)
describe a handle only when it reads that one table unchanged: no WHERE, grouping, DISTINCT,
LIMIT or join, and outputs that are bare columns. Any other handle gets the source planner's
row estimate, or nothing.
"""

from __future__ import annotations

from sqlglot import exp

from meshgate.spi import PushedQuery, ScanInput, TableStatistics


def unchanged_table(handle: PushedQuery) -> tuple[ScanInput, dict[str, str]] | None:
    """The one table `handle` reads as is, and output name -> column name; else None.

    e.g. `SELECT t.id AS id, t.name AS label FROM items AS t` -> (items, {id: id, label: name}).
    """
    select = handle.select
    clauses = ("where", "group", "having", "distinct", "order", "limit", "offset", "joins")
    if len(handle.inputs) != 1 or any(select.args.get(k) for k in clauses):
        return None
    item = handle.inputs[0]
    outputs: dict[str, str] = {}
    for projection in select.expressions:
        column = projection.this if isinstance(projection, exp.Alias) else projection
        if not isinstance(column, exp.Column) or column.table not in ("", item.alias):
            return None
        outputs[projection.alias_or_name] = column.name
    return item, outputs


def for_outputs(table: TableStatistics, outputs: dict[str, str]) -> TableStatistics:
    """The table's statistics keyed by the handle's output names."""
    columns = {out: table.columns[name] for out, name in outputs.items() if name in table.columns}
    return TableStatistics(table.row_count, columns)
