"""`server.residual` as configured and as asked per call: what is refused, and why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from meshgate.catalog.config import ResidualConfig, SparkResidualConfig
from meshgate.errors import ParameterError, UnsupportedQuery
from meshgate.execution.residual_choice import residual_mode

SPARK = {"remote": "sc://127.0.0.1:15002", "staging_directory": "/tmp/staging"}


def test_the_default_is_duckdb_without_spark_and_auto_with_it() -> None:
    assert ResidualConfig().mode == "duckdb"
    assert ResidualConfig.model_validate({"spark": SPARK}).mode == "auto"
    assert ResidualConfig.model_validate({"spark": SPARK, "default": "duckdb"}).mode == "duckdb"


@pytest.mark.parametrize("default", ["auto", "spark"])
def test_auto_or_spark_needs_the_spark_section(default: str) -> None:
    with pytest.raises(ValidationError, match="needs a `spark` section"):
        ResidualConfig.model_validate({"default": default})


def test_the_remote_is_a_spark_connect_address() -> None:
    with pytest.raises(ValidationError, match="remote"):
        SparkResidualConfig.model_validate({**SPARK, "remote": "http://spark:15002"})
    assert SparkResidualConfig.model_validate(SPARK).min_input_rows == 1_000_000


def test_a_call_may_ask_for_an_engine_by_name_only() -> None:
    configured = ResidualConfig.model_validate({"spark": SPARK})
    assert residual_mode(configured, None) == "auto"
    assert residual_mode(configured, " Spark ") == "spark"
    with pytest.raises(ParameterError, match="auto, duckdb, spark"):
        residual_mode(configured, "ray")
    with pytest.raises(UnsupportedQuery, match=r"server.residual.spark is not set"):
        residual_mode(ResidualConfig(), "spark")
    assert residual_mode(ResidualConfig(), "auto") == "auto"  # and plans on DuckDB
