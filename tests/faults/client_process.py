"""A Flight SQL client process the cancellation tests kill with SIGKILL mid-query.

`python -m tests.faults.client_process URI USER PASSWORD SQL`: runs SQL over ADBC, reads the
first batch if rows come (or waits for it), says `reading` on stdout, then holds on without
reading further until it is killed.
"""

from __future__ import annotations

import sys
import time

import adbc_driver_flightsql.dbapi as adbc


def main(uri: str, user: str, password: str, sql: str) -> None:
    with adbc.connect(uri, db_kwargs={"username": user, "password": password}) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        print("reading", flush=True)
        reader = cursor.fetch_record_batch()
        reader.read_next_batch()
        print("stalled", flush=True)
        time.sleep(3600)


if __name__ == "__main__":
    main(*sys.argv[1:5])
