"""What the planner asks of the residual engine: the exact schema of a residual query.

The planner fixes a plan's wire schema before anything runs at a source, so it needs the
engine that will run the residual to say what that query returns. It receives the engine
(`meshgate.execution.engine.ResidualEngine`, which extends this) as a parameter; this
protocol is the part of it a planner may use, so planning never imports execution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa
from sqlglot import exp


class ResultDescriber(Protocol):
    def describe(self, query: exp.Query, inputs: Mapping[str, pa.Schema]) -> pa.Schema:
        """The wire schema `query` returns over relations named and shaped like `inputs`
        (fragments, policy stages, local tables), computed without any rows."""
        ...


@runtime_checkable
class LocalFileReader(Protocol):
    """An engine that reads some directories itself (connectors' `LocalScan`s): the planner
    inlines a local scan only where the engine's sandbox lets it read every directory."""

    def can_read(self, directories: Sequence[Path]) -> bool: ...


@runtime_checkable
class OutOfProcessEngine(Protocol):
    """An engine that runs the residual outside meshgate's process (Spark). A source that
    runs in meshgate's process (`Connector.in_process`) then gives it only rows it can
    stream (scans, filters, projections): a join, an aggregate or a sort such a source ran
    would be held in meshgate's own memory, under no limit, while the engine meant to hold
    it waits."""

    out_of_process: bool
