"""What the validation suite must know about meshgate behind the Go Flight SQL driver.

meshgate is read-only: every table a case queries is pre-created by ../build_mesh.py as a
product of the `validation` domain, so this module never creates or drops a table, and the
cases that write (bound INSERTs, ingest, DDL, row counts of DML) are skipped as not applicable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import adbc_driver_manager
from adbc_drivers_validation import model

CATALOG = "meshgate_validation"
SCHEMA = "validation"
SECOND_SCHEMA = "validation_b"


class MeshgateQuirks(model.DriverQuirks):
    name = "meshgate"
    driver = "adbc_driver_flightsql"
    driver_name = "ADBC Flight SQL Driver - Go"
    vendor_name = "meshgate"
    vendor_version = re.compile(r"^\d+\.\d+\.\d+")
    short_version = "read-only"
    features = model.DriverFeatures(
        connection_get_table_schema=True,
        connection_set_current_schema=True,
        get_objects=True,
        statement_bind=True,
        statement_prepare=True,
        statement_execute_schema=True,
        statement_get_parameter_schema=True,
        current_catalog=CATALOG,
        current_schema=SCHEMA,
        secondary_schema=SECOND_SCHEMA,
    )
    setup = model.DriverSetup(
        database={
            "uri": model.FromEnv("MESHGATE_VALIDATION_URI"),
            "username": "validation",
            "password": "validation",
        },
    )

    @property
    def queries_paths(self) -> tuple[Path]:
        return (Path(os.environ["MESHGATE_VALIDATION_QUERIES"]),)

    def is_table_not_found(self, table_name: str | None, error: Exception) -> bool:
        if not isinstance(error, adbc_driver_manager.Error):
            return False
        if error.status_code != adbc_driver_manager.AdbcStatusCode.NOT_FOUND:
            return False
        return table_name is None or table_name in str(error)

    def try_drop_table(self, cursor: object, *, table_name: str,
                       schema_name: str | None = None, catalog_name: str | None = None,
                       temporary: bool = False) -> None:
        """Nothing to drop: the tables are the mesh's products, made before the run."""

    def query_override(self, context: str, default: str) -> str:
        # The table this test would create already exists in the second domain.
        if context == "TestConnection.test_get_table_schema_schema":
            return "SELECT 1"
        return default


QUIRKS = MeshgateQuirks()
