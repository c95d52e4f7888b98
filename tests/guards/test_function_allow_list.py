"""Every function DuckDB, SQLite and PostgreSQL know is refused unless it is reviewed as safe.

The names come from the engines' own catalogs (``duckdb_functions()``, ``pragma_function_list``,
``pg_proc`` at the test DSN), so a function an engine ships is tested whether or not anyone
thought of it. Each is called through ``parse_statement``, the gate every query passes.

The expected answer is ``allowed_functions.txt`` next to this file: the reviewed list of
function names a query may call, kept apart from the gate's own lists in
``meshgate.sql.functions``. A name added there by mistake (``currval``, ``txid_current``) is
accepted by the gate but not on the reviewed list, and fails here. Widening the allow-list
means adding the name to both, after checking it computes only on its arguments
(ARCHITECTURE.md §4.5). A reviewed name the catalogs know but the gate refuses fails too, so
the list cannot rot.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import adbc_driver_postgresql.dbapi as pg
import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from meshgate.errors import ForbiddenStatement, SqlSyntaxError
from meshgate.sql.parse import parse_statement

pytestmark = pytest.mark.postgres

REVIEWED = frozenset(
    line.strip()
    for line in (Path(__file__).parent / "allowed_functions.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)
# Operators (``+``, ``->>``) are listed as functions too; they are not calls a query can write.
CALLABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Argument counts tried besides each catalog's own: a variadic function listed with 0 (SQLite's
# -1) would otherwise only ever be tried as a syntax error.
EXTRA_ARITIES = frozenset({1, 2})

Arities = Mapping[str, frozenset[int]]


def _merge(into: dict[str, set[int]], rows: list[tuple[str, int]]) -> None:
    for name, arity in rows:
        if CALLABLE.fullmatch(name):
            into.setdefault(name.lower(), set()).add(max(int(arity), 0))


@pytest.fixture(scope="module")
def catalog_functions(pg_server_dsn: str) -> Arities:
    """Every function name the three engines know, with the argument counts they declare."""
    found: dict[str, set[int]] = {}
    with duckdb.connect() as connection:
        _merge(found, connection.execute(
            "SELECT function_name, len(parameters) FROM duckdb_functions()"
        ).fetchall())  # fmt: skip
    with sqlite3.connect(":memory:") as lite:
        _merge(found, lite.execute("SELECT name, narg FROM pragma_function_list").fetchall())
    with pg.connect(pg_server_dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT proname, pronargs FROM pg_proc")
        _merge(found, cursor.fetchall())
    return {name: frozenset(arities | EXTRA_ARITIES) for name, arities in found.items()}


def call(name: str, arity: int) -> str:
    return f"{name}({', '.join(['x'] * arity)})"


NOT_A_CALL = "not a call"


@cache
def verdict(sql: str, name: str) -> str:
    """``ok`` if the gate accepts `sql` as a call of `name`, else why not.

    sqlglot reads a few names DuckDB calls (``div``, ``apply``, ``overlaps``) as a column or
    table with column aliases: nothing is called, so it is no acceptance of the function.
    """
    try:
        tree = parse_statement(sql).tree
    except (ForbiddenStatement, SqlSyntaxError) as error:
        return type(error).__name__
    named = (exp.Column, exp.Table)
    if any(isinstance(n, named) and n.name.lower() == name for n in tree.walk()):
        return NOT_A_CALL
    return "ok"


def accepted(name: str, arities: frozenset[int]) -> bool:
    return any(verdict(f"SELECT {call(name, n)} FROM t", name) == "ok" for n in sorted(arities))


def test_the_catalogs_list_what_they_should(catalog_functions: Arities) -> None:
    """The enumeration reaches the dangerous functions of each engine (guards the fixture)."""
    for name in ("read_csv", "currval", "nextval", "txid_current", "pg_read_file",
                 "current_setting", "load_extension", "query", "getvariable"):  # fmt: skip
        assert name in catalog_functions, name
    assert len(catalog_functions) > 2500


def test_only_reviewed_functions_pass_the_gate(catalog_functions: Arities) -> None:
    passing = {name for name, arities in catalog_functions.items() if accepted(name, arities)}
    unreviewed = sorted(passing - REVIEWED)
    assert not unreviewed, (
        f"the gate accepts functions nobody reviewed: {unreviewed}; if each computes only on "
        "its arguments, add it to tests/guards/allowed_functions.txt, else take it off the "
        "allow-list in meshgate.sql.functions"
    )
    refused = sorted((REVIEWED & catalog_functions.keys()) - passing)
    assert not refused, f"reviewed functions the gate refuses: {refused}"


def test_refusals_name_the_function(catalog_functions: Arities) -> None:
    """A refused call is refused as a forbidden function, with its name, not by accident;
    a function DuckDB knows is refused as unsafe, never as foreign to the dialect."""
    duckdb_names = {r[0].lower() for r in duckdb.sql(
        "SELECT DISTINCT function_name FROM duckdb_functions()").fetchall()}  # fmt: skip
    for name in sorted(catalog_functions.keys() - REVIEWED):
        arity = min(catalog_functions[name] - {0} or {0})
        sql = f"SELECT {call(name, arity)} FROM t"
        if verdict(sql, name) in {SqlSyntaxError.__name__, NOT_A_CALL}:
            continue  # a keyword (``show``, ``match``) or a name: nothing is called
        unsafe = rf"^function {re.escape(name)} is not allowed: "
        foreign = rf"^`{re.escape(name)}` is not a function of meshgate's SQL dialect "
        expected = unsafe if name in duckdb_names else f"{unsafe}|{foreign}"
        with pytest.raises(ForbiddenStatement, match=expected):
            parse_statement(sql)


# Places a call can stand; the verdict must not depend on which.
CONTEXTS = (
    "SELECT x FROM t WHERE {call} IS NULL",
    "SELECT x FROM t ORDER BY {call}",
    "SELECT x FROM t GROUP BY x HAVING {call} IS NULL",
    "SELECT coalesce({call}, x) FROM t",
    "SELECT CASE WHEN x THEN {call} END FROM t",
    "WITH c AS (SELECT {call} AS v FROM t) SELECT v FROM c",
    "SELECT * FROM (SELECT {call} AS v FROM t) AS s",
    "SELECT (SELECT {call} FROM t) AS v",
    "SELECT x FROM t WHERE x IN (SELECT {call} FROM u)",
    "SELECT t.x FROM t JOIN u ON {call} = u.x",
    "SELECT x FROM t UNION ALL SELECT {call} FROM u",
    "SELECT list_transform(x, y -> {call}) FROM t",
    "EXPLAIN SELECT {call} FROM t",
)
# Places no function may stand: a schema-qualified call may be a user's function, and a call in
# FROM is a table function (only UNNEST, which expands a value, is allowed there).
ALWAYS_REFUSED = (
    "SELECT pg_catalog.{call} FROM t",
    "SELECT main.{call} FROM t",
    "SELECT * FROM {call}",
    "SELECT * FROM t, {call} AS f",
)
SPELLINGS = (str.lower, str.upper, str.title)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_verdict_does_not_depend_on_where_a_call_stands(
    catalog_functions: Arities, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(catalog_functions)), label="name")
    arities = sorted(catalog_functions[name])
    plain = {n: verdict(f"SELECT {call(name, n)} FROM t", name) for n in arities}
    usable = [n for n in arities if plain[n] == "ok"] or [n for n in arities if plain[n] != "ok"]
    arity = data.draw(st.sampled_from(usable), label="arity")
    written = call(data.draw(st.sampled_from(SPELLINGS), label="spelling")(name), arity)
    context = data.draw(st.sampled_from(CONTEXTS), label="context")
    expected = "ok" if plain[arity] == "ok" else "refused"
    got = verdict(context.format(call=written), name)
    assert ("ok" if got == "ok" else "refused") == expected, context.format(call=written)

    refused = data.draw(st.sampled_from(ALWAYS_REFUSED), label="refused context")
    sql = refused.format(call=written)
    if name == "unnest" and refused.startswith("SELECT * FROM"):
        return
    assert verdict(sql, name) != "ok", sql


def test_unknown_names_are_refused() -> None:
    """Names no engine knows (a user's macro, a future extension) are refused too."""
    for name in ("my_macro", "steal", "read_everything", "x__y"):
        assert verdict(f"SELECT {name}(x) FROM t", name) == ForbiddenStatement.__name__
