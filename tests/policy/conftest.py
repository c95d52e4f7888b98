"""A QueryService over the policy test mesh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshgate.service import QueryService
from tests.policy import mesh


@pytest.fixture(scope="package")
def mesh_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mesh.build(tmp_path_factory.mktemp("policy"))


@pytest.fixture(scope="package")
def service(mesh_dir: Path) -> Iterator[QueryService]:
    svc = QueryService.from_config(mesh_dir)
    yield svc
    svc.close()
