"""The suite's query cases, against the products build_mesh.py made."""

from __future__ import annotations

import pytest
from adbc_drivers_validation.tests import query
from adbc_drivers_validation.tests.query import TestQuery  # noqa: F401
from meshgate_quirks import QUIRKS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    query.generate_tests([QUIRKS], metafunc)
