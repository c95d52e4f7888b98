"""Build the read-only mesh the adbc-drivers/validation suite queries, from the suite's own cases.

meshgate cannot run the suite's CREATE TABLE / INSERT setup, so this runs that setup once in a
DuckDB file, declares every table as a product of one domain, and writes per-case overrides that
point the cases at those products. Run with the suite's Python (it imports the suite):

    python build_mesh.py OUT_DIR

OUT_DIR gets config/ (mesh.yaml, access.yaml), data/validation.duckdb and queries/ (overrides
the quirks module loads). Several cases reuse one table name with different column types
(test_timestamp for TIMESTAMP(0) to TIMESTAMP(9)), so each case gets its own product, named
after the case (select_timestamp3).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

import duckdb
from adbc_drivers_validation import model

DOMAIN = "validation"
SECOND_DOMAIN = "validation_b"
MESH = "meshgate_validation"
USER = "validation"

# Cases that write: the suite binds parameters into an INSERT. Not applicable to a read-only server.
BIND_SKIP = ("not applicable: meshgate is read-only (the case INSERTs bound parameters, "
             "then reads them back)")

def _password_hash(password: str) -> str:
    salt = b"meshgate-validation"  # a fixed salt: a throw-away local user
    digest = hashlib.scrypt(password.encode(), salt=salt, n=16384, r=8, p=1)
    salt_text, digest_text = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt$16384$8$1${salt_text}${digest_text}"


def _duckdb_sql(setup: str) -> str:
    """The suite's generic setup SQL as DuckDB runs it: X'..' binary literals become unhex(..),
    TIMESTAMP(p) WITH TIME ZONE (DuckDB has it only at microseconds) plain TIMESTAMPTZ, and
    TIMESTAMP(7..9) plain TIMESTAMP (DuckDB's TIMESTAMP_NS cannot hold the suite's 1677 and 2262
    values, and meshgate serves microseconds anyway)."""
    setup = re.sub(r"TIMESTAMP\(\d\) WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE", setup)
    setup = re.sub(r"TIMESTAMP\([789]\)", "TIMESTAMP", setup)
    return re.sub(r"\bX'([0-9a-fA-F]*)'", r"unhex('\1')", setup)


def _table_of(sql: str) -> str:
    match = re.search(r"CREATE TABLE\s+(\w+)", sql, re.IGNORECASE)
    if match is None:
        raise ValueError(f"no CREATE TABLE in {sql!r}")
    return match.group(1)


def _rename(text: str, old: str, new: str) -> str:
    return re.sub(rf"\b{re.escape(old)}\b", new, text)


def _micro_overrides(case: model.SelectQuery) -> tuple[str, str] | None:
    """Expected schema and rows at microseconds for a case expecting seconds/milliseconds, or
    None when the case already expects microseconds (or is not a timestamp)."""
    expected = case.expected_schema()
    field = expected[0]
    if not str(field.type).startswith("timestamp"):
        return None
    unit = field.type.unit
    if unit == "us":
        return None
    children = [{"name": f.name, "format": _format(f), "flags": ["nullable"] if f.nullable else []}
                for f in expected]
    rows = []
    table = case.expected_result()
    for value in table.column(0).cast("int64").to_pylist():
        if value is None:
            rows.append({"res": None})
        elif unit == "ns":
            rows.append({"res": value // 1000})
        else:
            rows.append({"res": value * {"s": 1_000_000, "ms": 1_000}[unit]})
    schema_json = json.dumps({"format": "+s", "children": children}, indent=2)
    return schema_json, "\n".join(json.dumps(r) for r in rows) + "\n"


def _format(field: object) -> str:
    tz = getattr(field.type, "tz", None) or ""
    return f"tsu:{tz}"


def build(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "config").mkdir(parents=True)
    (out / "data").mkdir()
    queries = out / "queries"
    db_path = out / "data" / "validation.duckdb"
    con = duckdb.connect(str(db_path))
    con.execute(f"CREATE SCHEMA {SECOND_DOMAIN}")
    products: list[tuple[str, str, str]] = []  # (domain, product, source schema.table)

    for name, query in sorted(model.base_query_set().queries.items()):
        case = query.query
        target = queries / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name.startswith("type/bind/"):
            target.with_suffix(".toml").write_text(f"skip = {json.dumps(BIND_SKIP)}\n")
            continue
        if not isinstance(case, model.SelectQuery) or not case.setup_query():
            continue
        setup = case.setup_query() or ""
        old = _table_of(setup)
        new = name.replace("type/", "").replace("/", "_")
        con.execute(_duckdb_sql(_rename(setup, old, new)))
        products.append((DOMAIN, new, new))
        target.with_suffix(".sql").write_text(_rename(case.query(), old, new) + "\n")
        target.with_suffix(".setup.sql").write_text("")  # pre-created: nothing to set up
        target.with_suffix(".toml").write_text(f'[setup]\ndrop = "{new}"\n')
        micro = _micro_overrides(case)
        if micro is not None:
            target.with_suffix(".schema.json").write_text(micro[0])
            target.with_suffix(".json").write_text(micro[1])

    # The tables the suite's own fixtures would create (TestConnection, TestStatement).
    con.execute("CREATE TABLE getobjects_fixed (ints INTEGER, strs VARCHAR)")
    con.execute("INSERT INTO getobjects_fixed VALUES (1, NULL), (NULL, 'foo'), (42, 'spam')")
    con.execute("CREATE TABLE sample_table (id INTEGER, value VARCHAR)")
    con.execute(f"CREATE TABLE {SECOND_DOMAIN}.test_get_table_schema_schema "
                "(spam INTEGER, eggs VARCHAR)")
    products += [(DOMAIN, "getobjects_fixed", "getobjects_fixed"),
                 (DOMAIN, "sample_table", "sample_table"),
                 (SECOND_DOMAIN, "test_get_table_schema_schema",
                  f"{SECOND_DOMAIN}.test_get_table_schema_schema")]

    entries = []
    for domain, product, source in products:
        schema, _, table = source.rpartition(".")
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema or "main", table]).fetchall()
        entries.append({
            "domain": domain, "name": product,
            "description": f"Pre-created table {product} of the validation suite.",
            "table": {"source": "suite", **({"schema": schema} if schema else {}), "table": table},
            "columns": [{"name": c, "type": t} for c, t in columns],
        })
    con.close()

    mesh = {
        "mesh": {"name": MESH, "description": "Tables of the adbc-drivers/validation suite."},
        "sources": [{"name": "suite", "kind": "duckdb",
                     "description": "The suite's tables, made by build_mesh.py.",
                     "options": {"path": str(db_path)}}],
        "domains": [{"name": d, "owner": "validation@example.com",
                     "description": "Tables of the validation suite."}
                    for d in (DOMAIN, SECOND_DOMAIN)],
        "products": entries,
    }
    access = {
        "roles": [{"name": "reader", "description": "Reads every product.", "grants": ["*"]}],
        "users": [{"name": USER, "password_hash": _password_hash(USER), "roles": ["reader"]}],
    }
    # JSON is YAML; no YAML library needed in the suite's environment.
    (out / "config" / "mesh.yaml").write_text(json.dumps(mesh, indent=2) + "\n")
    (out / "config" / "access.yaml").write_text(json.dumps(access, indent=2) + "\n")
    print(f"{len(products)} products in {db_path}; overrides in {queries}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build_mesh.py OUT_DIR")
    build(Path(sys.argv[1]).resolve())
