"""The suite's bulk-ingest tests: skipped, meshgate is read-only (no CommandStatementIngest)."""

from __future__ import annotations

import pytest
from adbc_drivers_validation.tests import ingest
from adbc_drivers_validation.tests.ingest import TestIngest  # noqa: F401
from meshgate_quirks import QUIRKS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    ingest.generate_tests([QUIRKS], metafunc)
