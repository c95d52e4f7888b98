"""The `meshgate` system schema lists only what the caller may read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshgate.errors import ProductNotFound
from meshgate.service import QueryService


@pytest.fixture(scope="module")
def service(demo_dir: Path) -> Iterator[QueryService]:
    svc = QueryService.from_config(demo_dir)
    yield svc
    svc.close()


def test_products_are_filtered_by_grants(service: QueryService) -> None:
    admin = service.query(
        "SELECT domain, product FROM meshgate.products", service.principal("admin")
    )
    analyst = service.query(
        "SELECT domain, product FROM meshgate.products", service.principal("analyst")
    )
    assert {"sales", "hr", "finance"} <= set(admin.column("domain").to_pylist())
    assert set(analyst.column("domain").to_pylist()) == {"sales", "hr"}


def test_columns_carry_types_and_classification(service: QueryService) -> None:
    table = service.query(
        "SELECT column_name, data_type, classification FROM meshgate.columns "
        "WHERE domain = 'hr' AND product = 'employees' ORDER BY ordinal",
        service.principal("analyst"),
    )
    rows = {r["column_name"]: r for r in table.to_pylist()}
    assert list(rows)[:2] == ["id", "name"]
    assert rows["ssn"]["classification"] == "pii"
    assert rows["salary"]["data_type"].startswith("DECIMAL")


def test_system_table_joins_a_product(service: QueryService) -> None:
    table = service.query(
        "SELECT d.domain, COUNT(*) AS n FROM meshgate.domains d "
        "JOIN meshgate.products p ON p.domain = d.domain GROUP BY d.domain ORDER BY d.domain",
        service.principal("analyst"),
    )
    assert table.column("domain").to_pylist() == ["hr", "sales"]


def test_unknown_system_table_is_not_found(service: QueryService) -> None:
    with pytest.raises(ProductNotFound, match=r"'meshgate\.secrets' does not exist or you are not"):
        service.prepare("SELECT * FROM meshgate.secrets", service.principal("admin"))


def test_current_user_is_the_caller(service: QueryService) -> None:
    for user in ("admin", "analyst"):
        table = service.query("SELECT current_user AS me", service.principal(user))
        assert table.column("me").to_pylist() == [user]
