"""The one orchestration path: parse -> gate -> bind -> secure -> rewrite -> plan -> execute.

The Flight server, the CLI and the tests all go through `QueryService`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from meshgate.catalog.catalog import Catalog, CatalogView
from meshgate.principal import Principal


@dataclass(frozen=True)
class PreparedQuery:
    """A planned query: its exact wire schema is known before anything runs at a source."""

    sql: str
    principal: Principal
    schema: pa.Schema
    parameter_count: int
    products: tuple[str, ...]
    plan: Any


class QueryService:
    """Interface under construction; see the implementation that replaces this module."""

    catalog: Catalog

    @classmethod
    def from_config(cls, directory: Path) -> QueryService:
        raise NotImplementedError

    def authenticate(self, user: str, password: str) -> Principal:
        raise NotImplementedError

    def view(self, principal: Principal) -> CatalogView:
        raise NotImplementedError

    def prepare(self, sql: str, principal: Principal) -> PreparedQuery:
        raise NotImplementedError

    def execute(
        self, prepared: PreparedQuery, parameters: Sequence[Any] = ()
    ) -> pa.RecordBatchReader:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
