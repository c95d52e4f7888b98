"""The plan cache never serves one caller's or one session's plan for another.

A plan depends on the SQL text, who asks (name, roles, attributes: ``current_user``, grants and
policies), the session's default domain and strict mode, and, at execution, the parameters'
values and types. Each test varies one of these alone with the cache warm for the other value,
in both orders, and checks the answer against the data written here (Python, not meshgate).
The property test then runs random sequences of requests on one long-lived service and holds
every answer to a service that has never seen them, so a component missing from the key
shows up as a stale plan whatever it is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshgate.errors import MeshgateError, ParameterError, ProductNotFound, PushdownRequired
from meshgate.planner.cache import PlanCache
from meshgate.planner.plan import FederatedPlan
from meshgate.principal import Principal, hash_password
from meshgate.service import QueryService

EMPLOYEES = [(1, "Ann", "EU"), (2, "Bo", "US"), (3, "Cy", "EU"), (4, "Di", "APAC")]
HR_TEAM = [(1, "people"), (2, "payroll")]
SALES_TEAM = [(1, "north"), (2, "south"), (3, "east")]
ORDERS = [(10, 1, 5.0), (11, 1, 7.0), (12, 2, 1.0), (13, 4, 2.0)]


def build(directory: Path) -> Path:
    """Write the data and a config: hr.employees is filtered by region for analysts."""
    data = directory / "data"
    data.mkdir()
    with duckdb.connect(str(data / "org.duckdb")) as connection:
        connection.execute("CREATE TABLE employees (id BIGINT, name VARCHAR, region VARCHAR)")
        connection.executemany("INSERT INTO employees VALUES (?, ?, ?)", EMPLOYEES)
        for table, rows in (("hr_team", HR_TEAM), ("sales_team", SALES_TEAM)):
            connection.execute(f"CREATE TABLE {table} (id BIGINT, name VARCHAR)")
            connection.executemany(f"INSERT INTO {table} VALUES (?, ?)", rows)
    with sqlite3.connect(data / "orders.sqlite") as lite:
        lite.execute("CREATE TABLE orders (id INTEGER, employee_id INTEGER, amount REAL)")
        lite.executemany("INSERT INTO orders VALUES (?, ?, ?)", ORDERS)
    config = directory / "config"
    config.mkdir()
    team = "columns: [{name: id, type: BIGINT}, {name: name, type: VARCHAR}]"
    users = "\n".join(
        f"  - {{name: {name}, password_hash: '{hash_password(name)}', roles: [{role}], "
        f"attributes: {{region: EU}}}}"
        for name, role in (("analyst", "analyst"), ("ann", "analyst"), ("viewer", "viewer"))
    )
    (config / "mesh.yaml").write_text(
        f"""
mesh: {{name: org}}
sources:
  - {{name: org_db, kind: duckdb, options: {{path: {data / "org.duckdb"}}}}}
  - {{name: orders_db, kind: sqlite, options: {{path: {data / "orders.sqlite"}}}}}
domains:
  - {{name: hr, owner: hr@example.com}}
  - {{name: sales, owner: sales@example.com}}
products:
  - domain: hr
    name: employees
    table: {{source: org_db, table: employees}}
    columns:
      - {{name: id, type: BIGINT}}
      - {{name: name, type: VARCHAR}}
      - {{name: region, type: VARCHAR}}
  - {{domain: hr, name: team, table: {{source: org_db, table: hr_team}}, {team}}}
  - {{domain: sales, name: team, table: {{source: org_db, table: sales_team}}, {team}}}
  - domain: sales
    name: orders
    table: {{source: orders_db, table: orders}}
    columns:
      - {{name: id, type: BIGINT}}
      - {{name: employee_id, type: BIGINT}}
      - {{name: amount, type: DOUBLE}}
roles:
  - {{name: analyst, grants: ["hr.*", "sales.*"]}}
  - {{name: viewer, grants: ["hr.*", "sales.*"]}}
users:
{users}
policies:
  - product: hr.employees
    role: analyst
    row_filter: region = user_attribute('region')
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("plan_cache"))


@pytest.fixture
def service(config_dir: Path) -> Iterator[QueryService]:
    """A service with a cold cache for each test."""
    svc = QueryService.from_config(config_dir)
    yield svc
    svc.close()


Answer = list[dict[str, Any]] | str


def answer(
    service: QueryService,
    sql: str,
    principal: Principal,
    parameters: Sequence[Any] = (),
    **options: Any,
) -> Answer:
    """The rows, or the refusal as ``<error type>: <message>``."""
    try:
        rows: list[dict[str, Any]] = service.query(
            sql, principal, parameters, **options
        ).to_pylist()
    except MeshgateError as error:
        return f"{type(error).__name__}: {error.message}"
    return rows


def both_orders(
    service: QueryService, first: dict[str, Any], second: dict[str, Any]
) -> tuple[Answer, Answer]:
    """Ask `first`, `second`, then both again: each must keep its own answer."""
    a, b = answer(service, **first), answer(service, **second)
    assert answer(service, **second) == b
    assert answer(service, **first) == a
    return a, b


def count(rows: object) -> list[dict[str, Any]]:
    return [{"n": rows}]


def test_user_name_alone(service: QueryService) -> None:
    sql = "SELECT current_user AS u, count(*) AS n FROM hr.employees"
    analyst, ann = service.principal("analyst"), service.principal("ann")
    assert (analyst.roles, analyst.attributes) == (ann.roles, ann.attributes)
    a, b = both_orders(service, {"sql": sql, "principal": analyst}, {"sql": sql, "principal": ann})
    assert a == [{"u": "analyst", "n": 2}]
    assert b == [{"u": "ann", "n": 2}]


def test_roles_alone(service: QueryService) -> None:
    """Same name and attributes, other roles (as an identity provider's token may carry)."""
    sql = "SELECT id FROM hr.employees ORDER BY id"
    analyst = service.principal("analyst")
    as_viewer = replace(analyst, roles=frozenset({"viewer"}))
    a, b = both_orders(
        service, {"sql": sql, "principal": analyst}, {"sql": sql, "principal": as_viewer}
    )
    assert a == [{"id": i} for i, _, region in EMPLOYEES if region == "EU"]
    assert b == [{"id": i} for i, _, _ in EMPLOYEES]


@pytest.mark.parametrize("region", ["US", "APAC"])
def test_attributes_alone(service: QueryService, region: str) -> None:
    sql = "SELECT name FROM hr.employees ORDER BY id"
    analyst = service.principal("analyst")
    elsewhere = replace(analyst, attributes={"region": region})
    a, b = both_orders(
        service, {"sql": sql, "principal": analyst}, {"sql": sql, "principal": elsewhere}
    )
    assert a == [{"name": n} for _, n, r in EMPLOYEES if r == "EU"]
    assert b == [{"name": n} for _, n, r in EMPLOYEES if r == region]


def test_default_domain_alone(service: QueryService) -> None:
    """The review's case: a session in `sales` must not reuse the plan made for `hr`."""
    analyst = service.principal("analyst")
    sql = "SELECT count(*) AS n FROM employees"
    in_hr, in_sales = both_orders(
        service,
        {"sql": sql, "principal": analyst, "default_domain": "hr"},
        {"sql": sql, "principal": analyst, "default_domain": "sales"},
    )
    assert in_hr == count(2)
    near = ["hr.employees"]
    assert in_sales == f"ProductNotFound: {ProductNotFound('sales.employees', near).message}"
    assert answer(service, sql, analyst) == (
        f"ProductNotFound: {ProductNotFound('employees', near).message}"
    )


def test_default_domain_picks_the_product_of_that_domain(service: QueryService) -> None:
    analyst = service.principal("analyst")
    sql = "SELECT name FROM team ORDER BY id"
    in_hr, in_sales = both_orders(
        service,
        {"sql": sql, "principal": analyst, "default_domain": "hr"},
        {"sql": sql, "principal": analyst, "default_domain": "sales"},
    )
    assert in_hr == [{"name": n} for _, n in HR_TEAM]
    assert in_sales == [{"name": n} for _, n in SALES_TEAM]


def test_strict_mode_alone(service: QueryService) -> None:
    """SQLite cannot run regexp_matches, so the merge must: refused in strict mode only."""
    sql = (
        "SELECT sum(amount) AS total FROM sales.orders "
        "WHERE regexp_matches(CAST(id AS VARCHAR), '1[0-2]')"
    )
    viewer = service.principal("viewer")
    for order in ((False, True), (True, False)):
        fresh = QueryService(service.definition, service.connectors)
        answers = dict(
            zip(
                order,
                both_orders(
                    fresh,
                    {"sql": sql, "principal": viewer, "strict": order[0]},
                    {"sql": sql, "principal": viewer, "strict": order[1]},
                ),
                strict=True,
            )
        )
        assert answers[False] == [{"total": sum(a for i, _, a in ORDERS if 10 <= i <= 12)}]
        refused = answers[True]
        assert isinstance(refused, str)
        assert refused.startswith(f"{PushdownRequired.__name__}: strict pushdown: ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, ["Ann"]), (2, ["Bo"]), ("3", ["Cy"]), (2.5, []), (4.0, ["Di"]), (None, [])],
)
def test_parameter_values_and_types_alone(
    service: QueryService, value: object, expected: list[str]
) -> None:
    """One prepared (cached) statement, executed with values of several types in turn."""
    viewer = service.principal("viewer")
    sql = "SELECT name FROM hr.employees WHERE id = ? ORDER BY id"
    prepared = service.prepare(sql, viewer)
    for warm in (1, "2", 3.0):
        service.execute(prepared, [warm]).read_all()
    got = service.execute(service.prepare(sql, viewer), [value]).read_all().to_pylist()
    assert got == [{"name": n} for n in expected]


def test_a_parameter_whose_type_changes_the_schema_is_refused(service: QueryService) -> None:
    """The announced schema comes from the plan; a parameter may not silently change it."""
    viewer = service.principal("viewer")
    sql = "SELECT ? AS v FROM hr.team ORDER BY id"
    prepared = service.prepare(sql, viewer)
    with pytest.raises(ParameterError, match=r"^the parameter values give the result other"):
        service.execute(prepared, ["text"]).read_all()
    typed = service.prepare("SELECT CAST(? AS VARCHAR) AS v FROM hr.team ORDER BY id", viewer)
    for value in ("a", "b"):
        assert service.execute(typed, [value]).read_all().to_pylist() == [{"v": value}] * 2


@dataclass(frozen=True)
class Request:
    sql: str
    user: str
    roles: frozenset[str]
    region: str
    default_domain: str | None
    strict: bool

    def principal(self) -> Principal:
        return Principal(self.user, self.roles, {"region": self.region})


QUERIES = (
    "SELECT current_user AS u, count(*) AS n FROM hr.employees",
    "SELECT count(*) AS n FROM employees",
    "SELECT name FROM team ORDER BY id",
    "SELECT sum(amount) AS total FROM sales.orders "
    "WHERE regexp_matches(CAST(id AS VARCHAR), '1[0-2]')",
    "SELECT region, count(*) AS n FROM hr.employees GROUP BY region ORDER BY region",
)
CHOICES: dict[str, tuple[Any, ...]] = {
    "sql": QUERIES,
    "user": ("analyst", "ann"),
    "roles": (frozenset({"analyst"}), frozenset({"viewer"})),
    "region": ("EU", "US"),
    "default_domain": (None, "hr", "sales"),
    "strict": (False, True),
}
REQUESTS = st.builds(Request, **{name: st.sampled_from(values) for name, values in CHOICES.items()})


@st.composite
def request_sequences(draw: st.DrawFn) -> list[Request]:
    """A request and neighbours that differ from it in one component each, interleaved."""
    base = draw(REQUESTS)
    sequence = [base]
    for _ in range(draw(st.integers(1, 4))):
        component = draw(st.sampled_from([c for c in CHOICES if c != "sql"]))
        other = [v for v in CHOICES[component] if v != getattr(base, component)]
        sequence.append(replace(base, **{component: draw(st.sampled_from(other))}))
        sequence.append(draw(st.sampled_from(sequence)))
    return sequence


Plan = tuple[Any, ...]


def plan_of(plan: FederatedPlan) -> Plan:
    """What a plan sends and runs, comparable between services."""
    return (
        plan.schema.to_string(),
        tuple((f.name, f.source, f.sql, f.pushed, f.policies) for f in plan.fragments),
        plan.residual_sql,
        plan.local_work,
        tuple((s.name, s.product, s.policies, plan_of(s.plan)) for s in plan.stages),
    )


def prepared(service: QueryService, request: Request) -> Plan | str:
    """The plan `service` serves for `request`, or its refusal."""
    try:
        result = service.prepare(
            request.sql,
            request.principal(),
            default_domain=request.default_domain,
            strict=request.strict,
        )
    except MeshgateError as error:
        return f"{type(error).__name__}: {error.message}"
    assert isinstance(result.plan, FederatedPlan)
    return (plan_of(result.plan), result.products, result.policies, result.schema.to_string())


@pytest.fixture(scope="module")
def long_lived(config_dir: Path) -> Iterator[QueryService]:
    """One service whose cache stays warm across every example."""
    svc = QueryService.from_config(config_dir)
    yield svc
    svc.close()


class ColdPlans(dict[Request, Plan | str]):
    """Each request's plan from a service that never planned anything before it."""

    def __repr__(self) -> str:
        return f"<{len(self)} cold plans>"


@pytest.fixture(scope="module")
def cold_plans() -> ColdPlans:
    return ColdPlans()


@settings(max_examples=30, deadline=None)
@given(requests=request_sequences())
def test_a_warm_cache_plans_like_a_cold_one(
    long_lived: QueryService, cold_plans: ColdPlans, requests: list[Request]
) -> None:
    for request in requests:
        if request not in cold_plans:
            fresh = QueryService(long_lived.definition, long_lived.connectors)
            cold_plans[request] = prepared(fresh, request)
        assert prepared(long_lived, request) == cold_plans[request], request


def test_the_cache_keeps_the_most_recently_used_plans() -> None:
    """A bounded LRU: a hit refreshes an entry, the least recently used one leaves first,
    capacity 0 keeps nothing, and hits/misses count lookups (misses are plans made)."""
    cache: PlanCache[str] = PlanCache(capacity=2)
    cache.put(("a",), "plan a")
    cache.put(("b",), "plan b")
    assert cache.get(("a",)) == "plan a"  # a is now the most recent
    cache.put(("c",), "plan c")
    assert cache.get(("b",)) is None
    assert (cache.get(("a",)), cache.get(("c",))) == ("plan a", "plan c")
    cache.put(("a",), "plan a2")
    assert cache.get(("a",)) == "plan a2"
    assert (cache.hits, cache.misses) == (4, 1)
    single: PlanCache[str] = PlanCache(capacity=1)
    single.put(("a",), "plan a")
    assert single.get(("a",)) == "plan a"
    empty: PlanCache[str] = PlanCache(capacity=0)
    empty.put(("a",), "plan a")
    assert (empty.get(("a",)), empty.get(("a",))) == (None, None)
    assert (empty.hits, empty.misses) == (0, 2)


def test_a_repeated_request_reuses_its_plan_but_the_history_is_live(
    service: QueryService,
) -> None:
    """The same request is planned once; a plan over meshgate.query_history holds a
    snapshot of it, so it is never reused and the second read sees the first."""
    analyst = service.principal("analyst")
    sql = "SELECT count(*) AS n FROM hr.employees"
    assert answer(service, sql, analyst) == count(2)
    made, served = service._plans.misses, service._plans.hits
    assert answer(service, sql, analyst) == count(2)
    assert (service._plans.misses, service._plans.hits) == (made, served + 1)
    history = "SELECT sql FROM meshgate.query_history"
    first = answer(service, history, analyst)
    second = answer(service, history, analyst)
    assert isinstance(first, list)
    assert isinstance(second, list)
    assert len(second) == len(first) + 1


def plan_lookups(service: QueryService) -> tuple[float, float]:
    """`meshgate_plan_cache_lookups_total` as /metrics reports it: (misses, hits)."""
    registry = service.metrics.registry
    name = "meshgate_plan_cache_lookups_total"
    counts = [registry.get_sample_value(name, {"result": r}) or 0.0 for r in ("miss", "hit")]
    return counts[0], counts[1]


def test_texts_differing_only_in_condition_literals_share_one_plan(
    service: QueryService,
) -> None:
    """Point lookups with the key in the text: one plan per shape (and per literal type),
    every text bound with its own values, answers as the data says."""
    viewer = service.principal("viewer")
    made, served = plan_lookups(service)
    for key, name, _ in EMPLOYEES:
        sql = f"SELECT name FROM hr.employees WHERE id = {key}"
        assert answer(service, sql, viewer) == [{"name": name}]
    assert answer(service, "select name from hr.employees where id = 9", viewer) == []
    for region in ("EU", "US", "APAC", "XX"):
        sql = f"SELECT id FROM hr.employees WHERE region = '{region}' ORDER BY id"
        assert answer(service, sql, viewer) == [{"id": k} for k, _, r in EMPLOYEES if r == region]
    for low, high in ((1, 2), (2, 4), (3, 3)):
        sql = (f"SELECT name FROM hr.employees WHERE id BETWEEN {low} AND {high} "
               f"AND id IN ({low}, {high}) ORDER BY id")  # fmt: skip
        assert answer(service, sql, viewer) == [
            {"name": n} for k, n, _ in EMPLOYEES if k in (low, high)
        ]
    # Four shapes (the lower-case text is another one): the first text of each is planned
    # with its literals, the second plans the shape, the others reuse it.
    assert plan_lookups(service) == (made + 2 + 1 + 2 + 2, served + 2 + 0 + 2 + 1)
    assert service._plans.misses == 7


def test_a_literal_that_is_not_a_condition_value_stays_in_the_shape(
    service: QueryService,
) -> None:
    """LIMIT counts, select-list values and a string read as a number are planned with their
    literal: another value there is another plan, and the answer follows it."""
    viewer = service.principal("viewer")
    for limit in (1, 3, 2):
        sql = f"SELECT id FROM hr.employees ORDER BY id LIMIT {limit}"
        assert answer(service, sql, viewer) == [{"id": k} for k, _, _ in EMPLOYEES[:limit]]
    for value in (1, 2):
        sql = f"SELECT {value} AS v, name FROM hr.employees WHERE id = 1"
        assert answer(service, sql, viewer) == [{"v": value, "name": "Ann"}]
    assert service._plans.misses == 3 + 2
    assert answer(service, "SELECT name FROM hr.employees WHERE id = '3'", viewer) == [
        {"name": "Cy"}
    ]
    refused = answer(service, "SELECT name FROM hr.employees WHERE id = 'x'", viewer)
    assert isinstance(refused, str)
    assert refused.startswith("QueryValueError: ")


def test_callers_with_other_row_filters_never_share_a_shape(service: QueryService) -> None:
    """The analyst sees EU rows only; another analyst, region US, sees US rows: the same
    shape with differing literals, interleaved, keeps each caller's filter."""
    eu = service.principal("analyst")
    us = replace(eu, attributes={"region": "US"})
    for _ in range(2):
        for key, name, region in EMPLOYEES:
            sql = f"SELECT name FROM hr.employees WHERE id = {key}"
            assert answer(service, sql, eu) == ([{"name": name}] if region == "EU" else [])
            assert answer(service, sql, us) == ([{"name": name}] if region == "US" else [])
    assert service._plans.misses == 3  # the first text; then the shape, once per caller


def test_a_shape_over_a_source_that_takes_no_parameters_keeps_its_literals(
    service: QueryService,
) -> None:
    """SQLite takes `amount > 1.5` but not `amount > CAST($1 ...)`: planned with the
    literal, the filter still goes down."""
    viewer = service.principal("viewer")
    sql = "SELECT id FROM sales.orders WHERE amount > {} ORDER BY id"
    for bound in (1.5, 6.0):
        prepared = service.prepare(sql.format(bound), viewer)
        assert prepared.literals == ()
        assert isinstance(prepared.plan, FederatedPlan)
        (fragment,) = prepared.plan.fragments
        assert f"> {bound}" in fragment.sql
        rows = service.execute(prepared).read_all().to_pylist()
        assert rows == [{"id": k} for k, _, amount in ORDERS if amount > bound]
