"""The residual engine: what runs a plan's residual query over its fragments' streams.

`ResidualEngine` is the interface (describe a query's output schema, run it over named
fragment streams and local tables, honouring the run's cancel token); `DuckDBEngine`, the
in-process DuckDB merge, is the one implementation. The service owns one engine and hands
it to the planner (for `describe`) and to execution (for `run`), so another engine, e.g. a
distributed one, can stand beside it without a global to replace.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Generator, Mapping
from typing import Protocol

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshgate.errors import QueryCancelled, QueryValueError, SourceUnavailable
from meshgate.planner.schema import ResultDescriber
from meshgate.spi import CANONICAL_DIALECT, QueryContext
from meshgate.sqlconnector.sandbox import sandboxed_duckdb
from meshgate.types import wire_schema

BATCH_ROWS = 64 * 1024
# Optimizer rules that read one relation twice. A fragment stream registered on the engine can be
# read only once: the second read sees an empty stream, a silently wrong answer (for instance
# DuckDB 1.5 answers `sum(x) OVER (PARTITION BY k)` with a self-join of the scan: no rows).
_SINGLE_SCAN_UNSAFE_OPTIMIZERS = ("window_self_join",)
# The merge's errors about the values it computes: the user's query, not a source, is at fault.
_VALUE_ERRORS = (duckdb.ConversionException, duckdb.OutOfRangeException,
                 duckdb.InvalidInputException)  # fmt: skip
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


class ResidualEngine(ResultDescriber, Protocol):
    def run(
        self,
        query: exp.Query,
        streams: Mapping[str, pa.RecordBatchReader],
        tables: Mapping[str, pa.Table],
        context: QueryContext,
    ) -> Generator[pa.RecordBatch, None, None]:
        """`query`'s batches over the relations `streams` (each readable once) and `tables`.

        Setting `context.cancel` stops the work; errors are meshgate's: QueryValueError for
        a value the query cannot compute, QueryCancelled, SourceUnavailable otherwise.
        """
        ...

    def close(self) -> None: ...


class DuckDBEngine:
    """The merge in an in-process, sandboxed DuckDB (nothing reachable but what a query
    registers); each query runs on its own cursor of one database, so registrations never
    meet and opening costs microseconds instead of a database's ~20 ms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._database: duckdb.DuckDBPyConnection | None = None

    def describe(self, query: exp.Query, inputs: Mapping[str, pa.Schema]) -> pa.Schema:
        """Run `query` over empty relations shaped like `inputs` and read the result's schema."""
        cursor = self._cursor()
        try:
            for name, schema in inputs.items():
                cursor.register(name, schema.empty_table())
            sql = query.sql(dialect=CANONICAL_DIALECT, comments=False)
            result = cursor.execute(f"SELECT * FROM ({sql}) AS result LIMIT 0").to_arrow_table()
            return wire_schema(result.schema)
        finally:
            cursor.close()

    def run(
        self,
        query: exp.Query,
        streams: Mapping[str, pa.RecordBatchReader],
        tables: Mapping[str, pa.Table],
        context: QueryContext,
    ) -> Generator[pa.RecordBatch, None, None]:
        cursor = self._cursor()
        try:
            for name, relation in {**streams, **tables}.items():
                cursor.register(name, relation)
            sql = query.sql(dialect=CANONICAL_DIALECT, comments=False)
            with context.cancel.stopping(cursor.interrupt):
                yield from cursor.execute(sql).to_arrow_reader(BATCH_ROWS)
        except duckdb.InterruptException:
            raise QueryCancelled("the query was cancelled") from None
        except _VALUE_ERRORS as exc:
            raise QueryValueError(
                f"a value in this query cannot be computed: {_without_values(exc)}; check "
                "the casts, literals and arithmetic in the query"
            ) from None
        except duckdb.Error as exc:
            raise SourceUnavailable(f"the merge step failed: {_first_line(exc)}") from None
        finally:
            cursor.close()

    def close(self) -> None:
        with self._lock:
            if self._database is not None:
                self._database.close()
                self._database = None

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._database is None:
                self._database = sandboxed_duckdb(
                    disabled_optimizers=",".join(_SINGLE_SCAN_UNSAFE_OPTIMIZERS)
                )
            return self._database.cursor()


def _without_values(exc: BaseException) -> str:
    """The error's first line with every quoted value replaced: it may quote a row's value."""
    return _QUOTED.sub("<value>", _first_line(exc))


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
