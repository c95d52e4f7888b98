"""Hooks the validation suite's tests up to meshgate (see meshgate_quirks.py)."""

from __future__ import annotations

import typing

import adbc_driver_flightsql
import adbc_driver_manager.dbapi
import pytest
from adbc_drivers_validation import model
from meshgate_quirks import QUIRKS, SCHEMA

pytest_plugins = ["adbc_drivers_validation.tests.conftest"]


@pytest.fixture(scope="session")
def driver(request: pytest.FixtureRequest) -> model.DriverQuirks:
    return QUIRKS


@pytest.fixture(scope="session")
def driver_path() -> str:
    """The Go driver's shared library as the adbc-driver-flightsql wheel ships it."""
    return str(adbc_driver_flightsql._driver_path())


@pytest.fixture(scope="session")
def conn_factory(
    driver: model.DriverQuirks, driver_path: str, db_kwargs: dict[str, typing.Any],
) -> typing.Callable[[], adbc_driver_manager.dbapi.Connection]:
    """As the suite's own, plus the current schema: the Go driver takes it only per
    connection (`adbc.connection.db_schema`), and meshgate has no default schema."""

    def _factory() -> adbc_driver_manager.dbapi.Connection:
        return adbc_driver_manager.dbapi.connect(
            driver=driver_path, db_kwargs=dict(db_kwargs),
            conn_kwargs={"adbc.connection.db_schema": SCHEMA}, autocommit=True)

    return _factory
