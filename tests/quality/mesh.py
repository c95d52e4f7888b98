"""The quality test mesh, over any source holding the tables ITEMS_GOOD and ITEMS_BAD.

`shop.good` passes every expectation kind; `shop.bad` fails every one, and its newest
`updated_at` is two days old against a one hour freshness SLO. `vault.ledger` is granted to
`auditor` only. `limited` reads `shop.*` through a row filter, so it sees outcomes but no
numbers.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

from meshgate.principal import hash_password

# (id, status, price, updated_at)
Row = tuple[int | None, str, float, dt.datetime]


def good_rows(now: dt.datetime) -> list[Row]:
    return [(1, "open", 5.0, now - dt.timedelta(minutes=5)),
            (2, "closed", 99.5, now - dt.timedelta(minutes=10)),
            (3, "open", 0.5, now - dt.timedelta(minutes=20))]  # fmt: skip


def bad_rows(now: dt.datetime) -> list[Row]:
    """One fault per kind: a NULL id, a duplicated (id, status), a status outside the list,
    prices outside 0..100, five rows against at most three, all older than two days."""
    days = dt.timedelta(days=2)
    return [(1, "open", 5.0, now - days),
            (1, "open", -1.0, now - days - dt.timedelta(hours=1)),
            (None, "closed", 250.0, now - days - dt.timedelta(hours=2)),
            (4, "lost", 50.0, now - days - dt.timedelta(hours=3)),
            (5, "open", 10.0, now - days - dt.timedelta(hours=4))]  # fmt: skip


# Every kind, and what shop.bad observes for each.
EXPECTED_BAD = {
    "not_null(id)": 1.0,
    "unique(id)": 1.0,
    "unique(id, status)": 1.0,
    "accepted_values(status)": 1.0,
    "range(price)": 2.0,
    "row_count": 5.0,
    "sql(no_negative_price)": 1.0,
}
KINDS = ("not_null", "unique", "accepted_values", "range", "row_count", "sql", "freshness")


def _product(domain: str, name: str, source: str, table: str, schema: str | None) -> str:
    at = f", schema: {schema}" if schema else ""
    return textwrap.dedent(f"""
      - domain: {domain}
        name: {name}
        table: {{source: {source}, table: {table}{at}}}
        columns:
          - {{name: id, type: BIGINT}}
          - {{name: status, type: VARCHAR}}
          - {{name: price, type: "DECIMAL(10,2)"}}
          - {{name: updated_at, type: TIMESTAMPTZ}}
        quality:
          - not_null: id
          - unique: id
          - unique: [id, status]
          - accepted_values: {{column: status, values: [open, closed]}}
          - range: {{column: price, min: 0, max: 100}}
          - row_count: {{min: 1, max: 3}}
          - sql: {{name: no_negative_price,
                   query: "SELECT count(*) FROM {domain}.{name} WHERE price < 0"}}
          - freshness: {{column: updated_at, max_age: 1h}}
    """)


def build(directory: Path, source: str, schema: str | None = None, extra: str = "") -> Path:
    """A config directory whose source is the YAML mapping `source` (named `shop_db`)."""
    users = "\n".join(
        f"  - {{name: {n}, password_hash: '{hash_password(n)}', roles: [{n}]}}"
        for n in ("reader", "limited", "auditor")
    )
    products = "".join([
        _product("shop", "good", "shop_db", "items_good", schema),
        _product("shop", "bad", "shop_db", "items_bad", schema),
        _product("vault", "ledger", "shop_db", "items_good", schema),
    ])  # fmt: skip
    (directory / "mesh.yaml").write_text(
        "mesh: {name: qmesh}\n"
        f"sources:\n  - {source}\n"
        "domains:\n"
        "  - {name: shop, owner: shop-team@example.com}\n"
        "  - {name: vault, owner: vault-team@example.com}\n"
        "roles:\n"
        "  - {name: reader, grants: ['shop.*']}\n"
        "  - {name: limited, grants: ['shop.*']}\n"
        "  - {name: auditor, grants: ['vault.*']}\n"
        f"users:\n{users}\n"
        "policies:\n"
        "  - {product: shop.good, role: limited, row_filter: \"status = 'open'\"}\n"
        "  - {product: shop.bad, role: limited, row_filter: \"status = 'open'\"}\n"
        f"products:{textwrap.indent(products, '  ')}{extra}",
        encoding="utf-8",
    )
    return directory
