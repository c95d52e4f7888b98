"""Every rewrite rule treats a policy barrier as opaque; one rule moves only safe conjuncts."""

from __future__ import annotations

import pytest
from sqlglot import exp

from meshgate.policy.relation import secure
from meshgate.query.model import SecuredQuery
from meshgate.query.names import BARRIER_CATALOG, barrier_of, source_of
from meshgate.rewrite.barrier import rewrite
from meshgate.rewrite.rules import RULES, Rule, normalise, physical_schema, qualify_query
from meshgate.service import QueryService
from meshgate.spi import CANONICAL_DIALECT
from meshgate.sql.bind import bind
from meshgate.sql.parse import parse_statement

UNSAFE = "100 / (s.id - 7) < 0"
SAFE = "s.id > 1"
QUERIES = [
    f"SELECT s.name FROM hr.staff s WHERE {SAFE} AND {UNSAFE}",
    f"SELECT name FROM (SELECT * FROM hr.staff s WHERE {SAFE} AND {UNSAFE}) t",
    f"WITH c AS (SELECT * FROM hr.staff s WHERE {SAFE} AND {UNSAFE}) SELECT count(*) FROM c",
    f"SELECT d.name FROM hr.depts d WHERE d.id IN (SELECT s.dept_id FROM hr.staff s "
    f"WHERE {SAFE} AND {UNSAFE})",
    f"SELECT s.name FROM hr.staff s JOIN hr.depts d ON d.id = s.dept_id WHERE {SAFE} "
    f"AND {UNSAFE}",
    f"SELECT s.name FROM hr.staff s WHERE {SAFE} AND {UNSAFE} UNION ALL "
    "SELECT name FROM hr.depts",
]


def secured(service: QueryService, sql: str) -> SecuredQuery:
    principal = service.principal("analyst")
    view = service.catalog.view(principal)
    bound = bind(parse_statement(sql).tree, view, principal)
    return secure(bound, lambda text: bind(parse_statement(text).tree, view, principal), principal,
                  service.policies)  # fmt: skip


def _unsafe_in(tree: exp.Expr) -> bool:
    return any(isinstance(d, exp.Div) for d in tree.find_all(exp.Div))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
@pytest.mark.parametrize("sql", QUERIES)
def test_no_rule_opens_a_barrier(service: QueryService, sql: str, rule: Rule) -> None:
    query = secured(service, sql)
    schema = physical_schema(query.tables, query.local_tables, query.barriers)
    tree = normalise(qualify_query(query.tree, schema), rules=[rule])
    barriers = [t for t in tree.find_all(exp.Table) if barrier_of(t) is not None]
    assert barriers, tree.sql(CANONICAL_DIALECT)
    # The staff table is reachable only through its barrier, never as a physical table.
    assert all(t.name != "staff" for t in tree.find_all(exp.Table) if source_of(t) is not None)
    assert _unsafe_in(tree)


@pytest.mark.parametrize("sql", QUERIES)
def test_the_full_rewrite_moves_only_the_safe_conjunct(service: QueryService, sql: str) -> None:
    query = rewrite(secured(service, sql))
    (barrier,) = query.barriers.values()
    body = barrier.body.sql(CANONICAL_DIALECT)
    assert "'EU'" in body
    assert not _unsafe_in(barrier.body), body
    assert _unsafe_in(query.tree)
    assert BARRIER_CATALOG in query.tree.sql(CANONICAL_DIALECT)


def test_safe_conjunct_reaches_the_body_where_the_barrier_is_read_directly(
    service: QueryService,
) -> None:
    query = rewrite(secured(service, QUERIES[0]))
    (barrier,) = query.barriers.values()
    assert '"id" > 1' in barrier.body.sql(CANONICAL_DIALECT)
    assert '"id" > 1' not in query.tree.sql(CANONICAL_DIALECT)


@pytest.mark.parametrize(
    "predicate",
    ["s.name = 5", "s.ssn = '***-**-3331'", "s.name LIKE 'A%'", "CAST(s.name AS INT) = 1",
     "s.salary IS NULL", "s.name = s.region || ''", "abs(s.id) = 1"],
)  # fmt: skip
def test_conjuncts_that_could_fail_or_read_raw_masked_values_stay_above(
    service: QueryService, predicate: str
) -> None:
    query = rewrite(secured(service, f"SELECT s.id FROM hr.staff s WHERE {predicate}"))
    (barrier,) = query.barriers.values()
    assert barrier.body.args["where"].sql(CANONICAL_DIALECT).count("AND") == 0  # filter only
