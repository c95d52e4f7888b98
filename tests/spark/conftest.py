"""A real local Spark cluster (Master, two Workers, the Connect server: five JVMs) for the
package, and the TPC-H mesh of tests/tpch (SF 0.01) served with `server.residual` set, an
analyst whose policies filter and mask, and the DuckDB reference answers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from benchmarks.spark_cluster import SparkCluster, attach, running_cluster
from meshgate.principal import hash_password
from meshgate.service import QueryService
from tests.tpch_mesh import reference, tpch_mesh

__all__ = ["reference", "tpch_mesh"]  # shared fixtures (tests/tpch_mesh.py)

# Above: lineitem (60k rows at SF 0.01) crossing over; below: part and supplier alone.
MIN_INPUT_ROWS = 20_000
ANALYST_POLICIES = [
    {"product": "tpch.lineitem", "role": "analyst", "row_filter": "l_returnflag = 'R'",
     "masks": {"l_comment": {"expression": "'c' || CAST(length(l_comment) AS VARCHAR)"}}},
    {"product": "tpch.customer", "role": "analyst", "row_filter": "c_mktsegment = 'BUILDING'",
     "masks": {"c_phone": {"expression": "'***-' || right(c_phone, 4)"}}},
]  # fmt: skip


@pytest.fixture(scope="package")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    """Started for the package and stopped after; MESHGATE_TEST_SPARK_DIRECTORY names the
    directory of a cluster already running (`python -m benchmarks.spark_cluster start`) to
    use instead, when working on these tests."""
    if shutil.which("java") is None:
        pytest.fail("the Spark residual tests start a local Spark cluster, which needs Java 17 "
                    "on PATH (Debian: apt-get install openjdk-17-jre-headless)")
    running = os.environ.get("MESHGATE_TEST_SPARK_DIRECTORY")
    if running:
        yield attach(Path(running))
        return
    with running_cluster(tmp_path_factory.mktemp("spark"), shuffle_partitions=2) as cluster:
        yield cluster


def residual_config(remote: str, staging: Path, default: str = "auto") -> str:
    """`server.residual` as YAML."""
    return yaml.safe_dump({"server": {"residual": {"default": default, "spark": {
        "remote": remote, "staging_directory": str(staging),
        "min_input_rows": MIN_INPUT_ROWS}}}})  # fmt: skip


@pytest.fixture(scope="package")
def spark_mesh(tpch_mesh: tuple[Path, str], spark_cluster: SparkCluster) -> Path:
    """The TPC-H config with `server.residual` (auto) and the analyst, in place."""
    directory = tpch_mesh[0]
    (directory / "server.yaml").write_text(
        residual_config(spark_cluster.remote, spark_cluster.staging_directory), encoding="utf-8")
    access = yaml.safe_load((directory / "access.yaml").read_text(encoding="utf-8"))
    access["roles"].append({"name": "analyst", "grants": ["tpch.*"]})
    access["users"].append({"name": "analyst", "password_hash": hash_password("analyst"),
                            "roles": ["analyst"]})  # fmt: skip
    access["policies"] = ANALYST_POLICIES
    (directory / "access.yaml").write_text(yaml.safe_dump(access, sort_keys=False),
                                           encoding="utf-8")  # fmt: skip
    return directory


@pytest.fixture(scope="package")
def service(spark_mesh: Path) -> Iterator[QueryService]:
    svc = QueryService.from_config(spark_mesh)
    yield svc
    svc.close()
