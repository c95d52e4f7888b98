"""A LEFT JOIN of a HAVING-filtered derived table the WHERE requires non-null becomes inner,
and nothing else does.

Each case is rewritten and both forms run on DuckDB over tables with NULL keys, unmatched rows
and duplicates: the answers must be the same rows, each as often.
"""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from meshgate.rewrite.outer_joins import inner_null_rejected

TABLES = """
CREATE TABLE a AS SELECT * FROM (VALUES (1, 10), (2, NULL), (3, 30), (3, 31), (NULL, 50)) t(x, v);
CREATE TABLE b AS SELECT * FROM (VALUES (1, 'p'), (1, 'q'), (3, NULL), (4, 's'), (NULL, 't'))
    t(x, w);
CREATE TABLE c AS SELECT * FROM (VALUES (10, 1), (30, 2), (99, 3)) t(v, z);
"""

B = "(SELECT x, MIN(w) AS w FROM b GROUP BY x HAVING COUNT(*) > 0)"
C = "(SELECT v, MAX(z) AS z FROM c GROUP BY v HAVING MAX(z) < 3)"

# (query, joins that must be inner afterwards, by alias)
CASES = [
    (f"SELECT a.x, u.w FROM a LEFT JOIN {B} AS u ON a.x = u.x WHERE NOT u.x IS NULL", {"u"}),
    (f"SELECT a.x, u.w FROM a LEFT JOIN {B} AS u ON a.x = u.x WHERE u.w = 'p'", {"u"}),
    (f"SELECT a.x FROM a LEFT JOIN {B} AS u ON a.x = u.x WHERE a.v > 0 AND u.w < 'r'", {"u"}),
    (f"SELECT a.x, t.z FROM a LEFT JOIN {B} AS u ON a.x = u.x LEFT JOIN {C} AS t "
     "ON t.v = a.v WHERE NOT t.z IS NULL", {"t"}),
    (f"SELECT a.x, u.w FROM a LEFT OUTER JOIN {B} AS u ON a.x = u.x AND u.w <> 'q' "
     "WHERE NOT u.x IS NULL", {"u"}),
    # not null-rejecting on u: stays LEFT
    (f"SELECT a.x, u.w FROM a LEFT JOIN {B} AS u ON a.x = u.x WHERE u.x IS NULL", set()),
    (f"SELECT a.x, u.w FROM a LEFT JOIN {B} AS u ON a.x = u.x "
     "WHERE COALESCE(u.w, 'z') = 'z'", set()),
    (f"SELECT a.x, u.w FROM a LEFT JOIN {B} AS u ON a.x = u.x WHERE u.w = 'p' OR a.v = 10",
     set()),
    (f"SELECT a.x, u.w FROM a LEFT JOIN {B} AS u ON a.x = u.x WHERE NOT a.x IS NULL", set()),
    # a RIGHT or FULL join in the same SELECT: left alone
    (f"SELECT a.x, u.w, c.z FROM a LEFT JOIN {B} AS u ON a.x = u.x FULL JOIN c ON c.v = a.v "
     "WHERE NOT u.x IS NULL", set()),
    # a table, or a derived table without HAVING: left alone
    ("SELECT a.x, b.w FROM a LEFT JOIN b ON a.x = b.x WHERE NOT b.x IS NULL", set()),
    ("SELECT a.x, u.x FROM a LEFT JOIN (SELECT x FROM b GROUP BY x) AS u ON a.x = u.x "
     "WHERE NOT u.x IS NULL", set()),
]


@pytest.fixture(scope="module")
def duck() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(TABLES)
    return connection


def inner_aliases(tree: exp.Expr) -> set[str]:
    return {
        j.this.alias_or_name
        for j in tree.find_all(exp.Join)
        if not j.args.get("side") and (j.args.get("kind") or "") in ("", "INNER")
    }


@pytest.mark.parametrize(("sql", "inner"), CASES)
def test_inner_only_where_the_where_rejects_null(
    duck: duckdb.DuckDBPyConnection, sql: str, inner: set[str]
) -> None:
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(tree, exp.Query)
    before = inner_aliases(tree)
    rewritten = inner_null_rejected(tree.copy())
    assert inner_aliases(rewritten) - before == inner
    want = sorted(duck.execute(sql).fetchall(), key=repr)
    got = sorted(duck.execute(rewritten.sql("duckdb")).fetchall(), key=repr)
    assert got == want
    assert want, "a case whose answer is empty would prove nothing"
