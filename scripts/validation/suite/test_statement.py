"""The suite's statement tests; sample_table is pre-created, the writing tests do not apply."""

from __future__ import annotations

import adbc_driver_manager.dbapi
import pytest
from adbc_drivers_validation import model
from adbc_drivers_validation.tests import statement
from meshgate_quirks import QUIRKS

READ_ONLY = "not applicable: meshgate is read-only"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    statement.generate_tests([QUIRKS], metafunc)


class TestStatement(statement.TestStatement):
    @pytest.fixture(scope="module")
    @classmethod
    def sample_table(
        cls, driver: model.DriverQuirks, conn: adbc_driver_manager.dbapi.Connection,
    ) -> str:
        return driver.quote_identifier("sample_table")

    @pytest.mark.skip(reason=f"{READ_ONLY} (INSERT with bound parameters)")
    def test_parameter_null_typed(self, driver: model.DriverQuirks) -> None:
        """Inserts a row, then reads it back."""

    @pytest.mark.skip(reason=f"{READ_ONLY} (CREATE TABLE, INSERT, UPDATE, DELETE)")
    def test_rows_affected(self, driver: model.DriverQuirks) -> None:
        """Counts the rows of DDL and DML."""
