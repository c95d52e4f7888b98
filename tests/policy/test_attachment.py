"""Policy attachment at every product reference, over physical names that need quoting (§4).

A mesh of one source, a DuckDB file or a PostgreSQL database (in a schema named `Books Dept`),
whose table and column names need quotes (spaces, capitals, a keyword), mapped to products
(one column named by a keyword); two products over the same physical table with different
columns; SQL-defined products (definer's rights over a
restricted product, the caller's own policy on the definition's columns) and a chain of
definitions at the nesting limit. Expected rows are computed in Python from `LEDGER`, never
through meshgate. Before names were folded only where the user wrote them, a source table
named `"Ledger Entries"` could not be read at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pytest

from meshgate.errors import UnsupportedQuery
from meshgate.policy.policies import hmac_hex
from meshgate.policy.relation import MAX_DEFINITION_DEPTH
from meshgate.principal import hash_password
from meshgate.service import QueryService
from tests.conftest import fresh_pg_database

# entry_no, owner_name, region, select (an amount), note
LEDGER = [
    (1, "Ann", "EU", 10, "first"),
    (2, "Bo", "US", 20, "second"),
    (3, "Cy", "EU", 30, None),
    (4, "Di", "APAC", 40, "fourth"),
]
KEY = b"attachment-key"
CHAIN = MAX_DEFINITION_DEPTH  # definitions nested exactly at the limit still run


def _chain() -> str:
    """`books.level1` reads `books.ledger`; each `levelN` reads `level(N-1)`; one over the limit."""
    products = []
    for level in range(1, CHAIN + 2):
        below = "books.ledger" if level == 1 else f"books.level{level - 1}"
        products.append(
            f"  - domain: books\n    name: level{level}\n"
            f"    query: SELECT entry_no FROM {below}\n"
            "    columns: [{name: entry_no, type: BIGINT}]\n"
        )
    return "".join(products)


MESH = """
mesh: {name: quoted, hash_key: attachment-key}
sources:
  - SOURCE
domains:
  - {name: books, owner: books@example.com}
products:
  - domain: books
    name: ledger
    table:
      source: store
      SCHEMA
      table: Ledger Entries
      columns: {entry_no: ID Number, owner_name: Owner, region: Sales Region, select: order,
                note: Note Text}
    columns:
      - {name: entry_no, type: BIGINT, nullable: false}
      - {name: owner_name, type: VARCHAR}
      - {name: region, type: VARCHAR}
      - {name: select, type: BIGINT}
      - {name: note, type: VARCHAR}
  - domain: books
    name: notes
    table: {source: store, SCHEMA, table: Ledger Entries,
            columns: {entry: ID Number, text: Note Text}}
    columns:
      - {name: entry, type: BIGINT}
      - {name: text, type: VARCHAR}
  - domain: books
    name: totals
    query: |
      SELECT region, sum("select") AS total_amount, count(*) AS entries
      FROM books.ledger GROUP BY region
    columns:
      - {name: region, type: VARCHAR}
      - {name: total_amount, type: "DECIMAL(20,2)"}
      - {name: entries, type: BIGINT}
""" + _chain()

ACCESS = """
roles:
  - {name: admin, grants: ["*"]}
  - {name: clerk, grants: ["books.*"]}
users:
  - {name: admin, password_hash: 'ADMIN', roles: [admin]}
  - {name: clerk, password_hash: 'CLERK', roles: [clerk], attributes: {region: EU}}
policies:
  - product: books.ledger
    role: clerk
    row_filter: region = user_attribute('region')
    masks:
      owner_name: redact
      select: {expression: '"select" * 100'}
      note: hash
  - product: books.totals
    role: clerk
    masks:
      entries: "null"
"""


CREATE = (
    'CREATE TABLE {table} ("ID Number" BIGINT, "Owner" VARCHAR, "Sales Region" VARCHAR, '
    '"order" BIGINT, "Note Text" VARCHAR)'
)


def _duckdb_source(data: Path) -> tuple[str, str]:
    with duckdb.connect(str(data / "store.duckdb")) as connection:
        connection.execute(CREATE.format(table='"Ledger Entries"'))
        connection.executemany('INSERT INTO "Ledger Entries" VALUES (?, ?, ?, ?, ?)', LEDGER)
    return f"{{name: store, kind: duckdb, options: {{path: {data}/store.duckdb}}}}", ""


def _postgres_source(dsn: str) -> tuple[str, str]:
    table = '"Books Dept"."Ledger Entries"'
    with pg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "Books Dept"')
        cursor.execute(CREATE.format(table=table))
        for row in LEDGER:
            cursor.execute(f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5)", row)
    return f"{{name: store, kind: postgres, options: {{dsn: '{dsn}'}}}}", "schema: Books Dept,"


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QueryService]:
    directory = tmp_path_factory.mktemp("quoted")
    with contextlib.ExitStack() as stack:
        if request.param == "duckdb":
            data = directory / "data"
            data.mkdir()
            source, schema = _duckdb_source(data)
        else:
            dsn = stack.enter_context(fresh_pg_database(request.getfixturevalue("pg_server_dsn")))
            source, schema = _postgres_source(dsn)
        mesh = MESH.replace("SOURCE", source)
        # The block form takes the schema on its own line; the flow form before `table:`.
        mesh = mesh.replace("      SCHEMA\n", f"      {schema.rstrip(',')}\n" if schema else "")
        mesh = mesh.replace("SCHEMA, ", f"{schema} " if schema else "")
        config = directory / "config"
        config.mkdir()
        (config / "mesh.yaml").write_text(mesh, encoding="utf-8")
        access = ACCESS.replace("ADMIN", hash_password("admin"))
        (config / "access.yaml").write_text(access.replace("CLERK", hash_password("c")), "utf-8")
        svc = QueryService.from_config(config)
        yield svc
        svc.close()


def rows(service: QueryService, sql: str, user: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = service.query(sql, service.principal(user)).to_pylist()
    return result


def _ledger(restricted: bool) -> list[dict[str, Any]]:
    return [
        {"entry_no": n, "owner_name": "****" if restricted else owner, "region": region,
         "select": amount * 100 if restricted else amount,
         "note": hmac_hex(note, KEY) if restricted and note is not None else note}
        for n, owner, region, amount, note in LEDGER
        if not restricted or region == "EU"
    ]  # fmt: skip


@pytest.mark.parametrize("user", ["admin", "clerk"])
def test_quoted_names_are_read_through_the_policy(service: QueryService, user: str) -> None:
    got = rows(service, "SELECT * FROM books.ledger ORDER BY entry_no", user)
    assert got == _ledger(restricted=user == "clerk")


def test_a_user_predicate_on_a_masked_quoted_column_sees_the_masked_value(
    service: QueryService,
) -> None:
    got = rows(service, 'SELECT entry_no FROM books.ledger WHERE "select" >= 1000', "clerk")
    assert got == [{"entry_no": 1}, {"entry_no": 3}]  # 10*100, 30*100; US and APAC hidden


@pytest.mark.parametrize("user", ["admin", "clerk"])
def test_two_products_over_one_table_are_read_together(service: QueryService, user: str) -> None:
    """Each product names different columns of `Ledger Entries`; both sets are read."""
    got = rows(
        service,
        "SELECT l.entry_no, l.region, n.text FROM books.ledger AS l "
        "JOIN books.notes AS n ON n.entry = l.entry_no ORDER BY 1",
        user,
    )
    assert got == [
        {"entry_no": n, "region": region, "text": note}
        for n, _, region, _, note in LEDGER
        if user == "admin" or region == "EU"
    ]


def test_a_self_join_attaches_the_policy_at_both_references(service: QueryService) -> None:
    got = rows(
        service,
        "SELECT a.entry_no AS a, b.entry_no AS b FROM books.ledger a "
        "JOIN books.ledger b ON a.region = b.region AND a.entry_no < b.entry_no",
        "clerk",
    )
    assert got == [{"a": 1, "b": 3}]


@pytest.mark.parametrize("user", ["admin", "clerk"])
def test_a_sql_product_reads_with_definer_rights_and_the_callers_own_masks(
    service: QueryService, user: str
) -> None:
    """`totals` reads `ledger` unfiltered and unmasked (definer's rights), whoever asks; the
    clerk's own policy on `totals` nulls its `Entries` column."""
    got = rows(service, "SELECT * FROM books.totals ORDER BY region", user)
    sums: dict[str, tuple[int, int]] = {}
    for _, _, region, amount, _ in LEDGER:
        total, count = sums.get(region, (0, 0))
        sums[region] = (total + amount, count + 1)
    assert got == [
        {"region": region, "total_amount": total, "entries": None if user == "clerk" else count}
        for region, (total, count) in sorted(sums.items())
    ]
    table = service.query("SELECT * FROM books.totals", service.principal(user))
    assert [str(f.type) for f in table.schema] == ["string", "decimal128(20, 2)", "int64"]


@pytest.mark.parametrize("user", ["admin", "clerk"])
def test_a_sql_product_read_twice_in_one_query_answers_alike(
    service: QueryService, user: str
) -> None:
    got = rows(
        service,
        "SELECT a.region, a.total_amount = b.total_amount AS same FROM books.totals a "
        "JOIN books.totals b USING (region) ORDER BY 1",
        user,
    )
    assert got == [{"region": r, "same": True} for r in ("APAC", "EU", "US")]


def test_definitions_nested_to_the_limit_run_and_one_more_is_refused(
    service: QueryService,
) -> None:
    deepest = rows(service, f"SELECT count(*) AS n FROM books.level{CHAIN}", "clerk")
    assert deepest == [{"n": len(LEDGER)}]  # definer's rights all the way down
    with pytest.raises(UnsupportedQuery) as raised:
        service.query(f"SELECT * FROM books.level{CHAIN + 1}", service.principal("clerk"))
    assert raised.value.message == (
        "product definitions nest too deeply (a cycle between products?)"
    )


def test_explain_names_the_product_a_policy_applies_to(service: QueryService) -> None:
    plan = service.explain("SELECT entry_no FROM books.ledger", service.principal("clerk"))
    text = " ".join(str(v) for row in plan.to_pylist() for v in row.values())
    assert "books.ledger: policies books.ledger/clerk" in text
    assert "Ledger Entries" not in text
    assert "Sales Region" not in text
    assert "Books Dept" not in text


def test_the_attached_relation_does_not_change_the_bound_query(service: QueryService) -> None:
    """Two plans of one SQL product in a row: the second must not see the first's rewrite."""
    for _ in range(2):
        got = rows(service, "SELECT entries FROM books.totals WHERE region = 'EU'", "admin")
        assert got == [{"entries": 2}]
