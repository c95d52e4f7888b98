"""Run one query with flightsql-dbapi and print the result as JSON (one process per client).

flightsql-dbapi ships its own generated Flight SQL classes under the same protobuf package as
meshgate's, and one process cannot register both (flightsql-clients.md P23), so the tests run
this script in a subprocess:

    python flightsql_dbapi_client.py PORT USER PASSWORD SQL [PARAMS_JSON]

With MESHGATE_TEST_TLS_CA set to a CA's PEM file it connects over TLS, verifying the server's
certificate against that CA (flightsql-dbapi hands extra keywords to pyarrow's FlightClient).

It makes the calls `flightsql.dbapi.Cursor.execute` makes (that method then converts through
pandas, which is not installed here): execute + DoGet of endpoint 0, or, with parameters,
prepare + DoPut of a dense-union parameter record + GetFlightInfo + DoGet + close.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from flightsql import FlightSQLClient
from flightsql.dbapi import ParameterRecordBuilder


def main(port: str, user: str, password: str, sql: str, params: str = "[]") -> dict[str, Any]:
    ca_file = os.environ.get("MESHGATE_TEST_TLS_CA")
    transport: dict[str, Any] = {"insecure": True} if not ca_file else {
        "insecure": False, "tls_root_certs": Path(ca_file).read_bytes()}
    client = FlightSQLClient(host="127.0.0.1", port=int(port), user=user, password=password,
                             **transport)
    values = json.loads(params)
    try:
        if values:
            with client.prepare(sql) as statement:
                record = ParameterRecordBuilder(values).build_record()
                info = statement.execute(record)
                table = client.do_get(info.endpoints[0].ticket).read_all()
        else:
            info = client.execute(sql)
            table = client.do_get(info.endpoints[0].ticket).read_all()
    except Exception as exc:  # report what the user would see
        return {"error": type(exc).__name__, "message": str(exc)}
    rows = [[row[name] if isinstance(row[name], int | str | None) else str(row[name])
             for name in table.column_names] for row in table.to_pylist()]
    info_table = client.do_get(client.get_sql_info([0, 2, 3, 504]).endpoints[0].ticket).read_all()
    sql_info = {str(r["info_name"]): r["value"] for r in info_table.to_pylist()}
    return {"columns": table.column_names, "types": [str(f.type) for f in table.schema],
            "rows": rows, "sql_info": sql_info,
            "schema_matches": table.schema.equals(info.schema)}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
