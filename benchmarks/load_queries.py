"""The load run's query mix, and each query's expected answer per role from the reference.

Scans, aggregates, joins across sources and point lookups by random key, over PostgreSQL
(`customers`), Parquet (`shipments`) and DuckDB (`products`). Every answer is computed before
the run by the reference DuckDB of each role (`load_mesh.reference_connections`), never by
meshgate. A point lookup draws from `LOOKUP_KEYS` keys picked at random over the whole key range
before the run (so the answers stay small enough to hand to every client process); their
answers come from one reference query of all those keys, and a key past the data, or one the
analyst's row filter removes, expects no row.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from benchmarks.load_mesh import CUSTOMERS, DOMAIN, PRODUCTS, SHIPMENTS

Row = tuple[Any, ...]
LOOKUP_KEYS = 2000  # per point-lookup kind (all of them where a kind has fewer)


@dataclass(frozen=True)
class Answer:
    """A result as a client compares it: column names and rows in order."""

    columns: tuple[str, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class QueryKind:
    """One query of the mix; a point lookup's `sql` takes `{key}` or a `?` parameter."""

    name: str
    sql: str
    reads_postgres: bool
    weight: int = 1
    keys: int = 0  # a point lookup's keys are picked from 1 .. keys (a few past the data)
    parameter: bool = False  # the key is bound as a parameter, not written in the text

    @property
    def point(self) -> bool:
        return self.keys > 0


C, S, P = (f"{DOMAIN}.{name}" for name in ("customers", "shipments", "products"))
KINDS: tuple[QueryKind, ...] = (
    QueryKind("scan_pg", f"SELECT id, name, email, region, balance, signup FROM {C} "
              "WHERE region = 'EU' ORDER BY id", True),
    QueryKind("scan_parquet", f"SELECT shipment_id, customer_id, sku, quantity, weight_kg FROM {S} "
              "WHERE shipped BETWEEN DATE '2024-03-01' AND DATE '2024-03-10' ORDER BY shipment_id",
              False),
    QueryKind("scan_duckdb", f"SELECT sku, category, price, supplier FROM {P} ORDER BY sku", False),
    QueryKind("point_pg", f"SELECT id, name, email, balance FROM {C} WHERE id = ?", True,
              weight=3, keys=CUSTOMERS + 50, parameter=True),
    QueryKind("point_parquet", f"SELECT shipment_id, customer_id, quantity, weight_kg, shipped "
              f"FROM {S} WHERE shipment_id = {{key}}", False, weight=3, keys=SHIPMENTS + 50),
    QueryKind("point_duckdb", f"SELECT sku, category, price, supplier FROM {P} WHERE sku = {{key}}",
              False, weight=3, keys=PRODUCTS + 20),
    QueryKind("agg_pg", f"SELECT region, count(*) AS n, count(email) AS emails, "
              f"sum(balance) AS total, min(signup) AS first_signup FROM {C} "
              "GROUP BY region ORDER BY region", True),
    # A predicate on masked columns compares the masked values: the analyst counts none.
    QueryKind("agg_masked_predicate", f"SELECT count(*) AS n FROM {C} "
              "WHERE email LIKE '%@example.org' AND name LIKE 'customer 1%'", True),
    QueryKind("agg_parquet", f"SELECT sku % 7 AS bucket, count(*) AS n, sum(quantity) AS units, "
              f"sum(weight_kg) AS weight FROM {S} GROUP BY 1 ORDER BY 1", False),
    QueryKind("join_pg_parquet", f"SELECT c.region, count(*) AS n, sum(s.quantity) AS units "
              f"FROM {C} AS c JOIN {S} AS s ON s.customer_id = c.id "
              "GROUP BY c.region ORDER BY c.region", True),
    QueryKind("join_three", f"SELECT c.region, p.category, count(*) AS n, "
              f"sum(s.quantity * p.price) AS revenue FROM {S} AS s "
              f"JOIN {C} AS c ON c.id = s.customer_id JOIN {P} AS p ON p.sku = s.sku "
              "WHERE s.shipped >= DATE '2025-06-01' "
              "GROUP BY c.region, p.category ORDER BY c.region, p.category", True),
    QueryKind("join_parquet_duckdb", f"SELECT p.category, count(*) AS n, "
              f"sum(s.weight_kg) AS weight, max(p.supplier) AS supplier FROM {S} AS s "
              f"JOIN {P} AS p ON p.sku = s.sku GROUP BY p.category ORDER BY p.category", False),
    QueryKind("topn_join", f"SELECT c.id, c.name, sum(s.weight_kg) AS weight FROM {C} AS c "
              f"JOIN {S} AS s ON s.customer_id = c.id GROUP BY c.id, c.name "
              "ORDER BY weight DESC, c.id LIMIT 10", True),
)  # fmt: skip


@dataclass(frozen=True)
class Expected:
    """One role's expected answers: per kind, and per key for point lookups."""

    answers: Mapping[str, Answer]
    by_key: Mapping[str, Mapping[int, Answer]]  # the keys a point lookup draws from

    def answer(self, kind: QueryKind, key: int) -> Answer:
        if not kind.point:
            return self.answers[kind.name]
        return self.by_key[kind.name][key]

    def keys(self, kind: QueryKind) -> Sequence[int]:
        return tuple(self.by_key[kind.name])


def lookup_keys(seed: int) -> dict[str, tuple[int, ...]]:
    """The keys each point lookup draws from, picked at random over its whole key range."""
    rng = random.Random(seed)
    return {kind.name: tuple(rng.sample(range(1, kind.keys + 1), min(LOOKUP_KEYS, kind.keys)))
            for kind in KINDS if kind.point}  # fmt: skip


def expected_answers(reference: duckdb.DuckDBPyConnection,
                     keys: Mapping[str, Sequence[int]]) -> Expected:  # fmt: skip
    """Every kind's answer from the role's reference DuckDB (point lookups: each of `keys`)."""
    answers: dict[str, Answer] = {}
    by_key: dict[str, dict[int, Answer]] = {}
    for kind in KINDS:
        if not kind.point:
            answers[kind.name] = _run(reference, kind.sql)
            continue
        select = kind.sql.split(" WHERE ")[0]  # the lookup without its key, and its key column
        key_column = _run(reference, f"{select} LIMIT 0").columns[0]
        wanted = ", ".join(map(str, keys[kind.name]))
        every = _run(reference,
                     f"SELECT * FROM ({select}) AS lookup WHERE {key_column} IN ({wanted})")
        rows = {int(row[0]): row for row in every.rows}
        by_key[kind.name] = {
            key: Answer(every.columns, (rows[key],) if key in rows else ())
            for key in keys[kind.name]
        }
    return Expected(answers, by_key)


def draw(kind: QueryKind, rng: random.Random, expected: Expected
         ) -> tuple[str, Sequence[Any], int]:  # fmt: skip
    """The SQL text and parameters of one query of `kind`, and its key (0: none)."""
    if not kind.point:
        return kind.sql, (), 0
    key = rng.choice(expected.keys(kind))
    if kind.parameter:
        return kind.sql, (key,), key
    return kind.sql.format(key=key), (), key


def _run(reference: duckdb.DuckDBPyConnection, sql: str) -> Answer:
    cursor = reference.execute(sql)
    columns = tuple(str(d[0]) for d in cursor.description or ())
    return Answer(columns, tuple(tuple(row) for row in cursor.fetchall()))
