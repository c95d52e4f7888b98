"""Superset's own API against meshgate's PostgreSQL wire; run by scripts/superset/run.sh in
Superset's environment. Prints a JSON report; raises on the first step that fails.

    python check.py SQLALCHEMY_URI
"""

from __future__ import annotations

import json
import sys
from typing import Any

from superset.app import create_app  # type: ignore[import-not-found]


def _ok(response: Any, step: str) -> Any:
    if response.status_code >= 300:
        raise SystemExit(f"{step}: HTTP {response.status_code}: {response.get_data(as_text=True)}")
    return response.get_json()


def main(uri: str) -> dict[str, Any]:
    app = create_app()
    client = app.test_client()
    token = _ok(client.post("/api/v1/security/login", json={
        "username": "admin", "password": "admin", "provider": "db", "refresh": False}),
        "login")["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    tested = _ok(client.post("/api/v1/database/test_connection/", headers=headers, json={
        "sqlalchemy_uri": uri, "database_name": "meshgate"}), "test connection")
    database = _ok(client.post("/api/v1/database/", headers=headers, json={
        "database_name": "meshgate", "sqlalchemy_uri": uri, "expose_in_sqllab": True}),
        "add database")["id"]
    schemas = _ok(client.get(f"/api/v1/database/{database}/schemas/", headers=headers),
                  "schemas")["result"]
    tables = {schema: sorted(t["value"] for t in _ok(client.get(
        f"/api/v1/database/{database}/tables/?q=(schema_name:{schema})", headers=headers),
        f"tables of {schema}")["result"]) for schema in schemas}
    metadata = _ok(client.get(
        f"/api/v1/database/{database}/table_metadata/?name=orders&schema=sales",
        headers=headers), "table metadata")
    dataset = _ok(client.post("/api/v1/dataset/", headers=headers, json={
        "database": database, "schema": "sales", "table_name": "orders"}), "dataset")["id"]
    chart = _ok(client.post("/api/v1/chart/data", headers=headers, json={
        "datasource": {"id": dataset, "type": "table"},
        "queries": [{"columns": ["customer_id"],
                     "metrics": [{"expressionType": "SIMPLE", "label": "revenue",
                                  "column": {"column_name": "amount"}, "aggregate": "SUM"}],
                     "orderby": [[{"expressionType": "SIMPLE", "label": "revenue",
                                   "column": {"column_name": "amount"}, "aggregate": "SUM"},
                                  False]],
                     "row_limit": 3}],
        "result_format": "json", "result_type": "full"}), "chart data")["result"][0]
    return {"test_connection": tested.get("message"), "schemas": schemas, "tables": tables,
            "orders_columns": [c["name"] for c in metadata["columns"]],
            "chart_sql": chart["query"], "chart_rows": chart["data"]}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), indent=1, default=str))
