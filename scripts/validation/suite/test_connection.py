"""The suite's connection tests; the get_objects table is pre-created."""

from __future__ import annotations

import adbc_driver_manager.dbapi
import pytest
from adbc_drivers_validation import model
from adbc_drivers_validation.tests import connection
from meshgate_quirks import QUIRKS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    connection.generate_tests([QUIRKS], metafunc)


class TestConnection(connection.TestConnection):
    @pytest.fixture(scope="class")
    @classmethod
    def get_objects_table(
        cls, driver: model.DriverQuirks, conn: adbc_driver_manager.dbapi.Connection,
    ) -> tuple[str | None, str | None, str]:
        return (driver.features.current_catalog, driver.features.current_schema,
               "getobjects_fixed")
