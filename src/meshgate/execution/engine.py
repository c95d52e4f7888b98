"""The residual engine: what runs a plan's residual query over its fragments' streams.

`ResidualEngine` is the interface (describe a query's output schema, run it over named
fragment streams and local tables, honouring the run's cancel token); `DuckDBEngine`, the
in-process DuckDB merge, is the one implementation. The service owns one engine and hands
it to the planner (for `describe`) and to execution (for `run`), so another engine, e.g. a
distributed one, can stand beside it without a global to replace.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshgate.errors import (
    ParameterError,
    QueryCancelled,
    ResourceExhausted,
    SourceUnavailable,
    UnsupportedQuery,
)
from meshgate.execution.loading import (
    TableJanitor,
    load_streams,
    loaded_names,
    renamed_tables,
)
from meshgate.execution.spill import SpillDirectory
from meshgate.planner.schema import ResultDescriber
from meshgate.spi import CANONICAL_DIALECT, QueryContext
from meshgate.spi.parameters import renumbered, without_placeholders
from meshgate.sqlconnector.failures import duckdb_missing_extension, duckdb_value_failure
from meshgate.sqlconnector.sandbox import sandboxed_duckdb
from meshgate.types import wire_schema

BATCH_ROWS = 64 * 1024
DESCRIBED_KEPT = 1024  # residual queries whose result schema `describe` remembers
# Optimizer rules that read one relation twice. A fragment stream registered on the engine can be
# read only once: the second read sees an empty stream, a silently wrong answer (for instance
# DuckDB 1.5 answers `sum(x) OVER (PARTITION BY k)` with a self-join of the scan: no rows).
_SINGLE_SCAN_UNSAFE_OPTIMIZERS = ("window_self_join",)


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
    meet and opening costs microseconds instead of a database's ~20 ms.

    `memory_limit` (DuckDB's, e.g. "2GB") bounds all its queries together; past it DuckDB
    spills to this process's folder under `state_directory` (created when the database
    opens, removed by `close`), and a query that still does not fit fails with
    ResourceExhausted. Both are set before the configuration is locked.

    `readable` are the only directories it may read files below (DuckDB's
    `allowed_directories`, external access off otherwise): the files sources' folders, whose
    tables the planner then inlines as the merge's own scans (`can_read`). User SQL cannot
    name a file-reading function (the gate's allow-list), so only planned scans read them.
    """

    def __init__(self, memory_limit: str | None = None,
                 state_directory: Path | None = None,
                 readable: Sequence[Path] = ()) -> None:  # fmt: skip
        self._readable = tuple(sorted({Path(p) for p in readable}))
        self._lock = threading.Lock()
        self._described: OrderedDict[tuple[str, tuple[tuple[str, bytes], ...]], pa.Schema] = (
            OrderedDict()
        )
        self._database: duckdb.DuckDBPyConnection | None = None
        self._memory_limit = memory_limit
        self._state_directory = state_directory
        self.spill: SpillDirectory | None = None
        self._janitor = TableJanitor(self._cursor_if_open)

    def can_read(self, directories: Sequence[Path]) -> bool:
        """Whether every one of `directories` is one this engine's sandbox lets it read."""
        return all(any(d == r or r in d.parents for r in self._readable) for d in directories)

    def describe(self, query: exp.Query, inputs: Mapping[str, pa.Schema]) -> pa.Schema:
        """Run `query` over empty relations shaped like `inputs` and read the result's schema.

        Remembered by the query's text and the inputs' schemas (the last DESCRIBED_KEPT): the
        answer depends on nothing else, and running it costs a DuckDB bind.
        """
        # Planned parameters sit in a CAST: NULL in their place keeps every type.
        sql = without_placeholders(query).sql(  # generated from our own copy: not copied again
            dialect=CANONICAL_DIALECT, comments=False, copy=False
        )
        key = (sql, tuple((name, schema.serialize().to_pybytes())
                          for name, schema in inputs.items()))  # fmt: skip
        with self._lock:
            known = self._described.get(key)
            if known is not None:
                self._described.move_to_end(key)
                return known
        cursor = self._cursor()
        try:
            for name, schema in inputs.items():
                cursor.register(name, schema.empty_table())
            result = cursor.execute(f"SELECT * FROM ({sql}) AS result LIMIT 0").to_arrow_table()
            described = wire_schema(result.schema)
        except duckdb.Error as exc:
            refusal = duckdb_missing_extension(exc)
            if refusal is not None:
                raise refusal from None
            if isinstance(exc, duckdb.BinderException) and "best candidate function" in str(exc):
                # Described, a parameter is a NULL of no type: an overloaded function cannot
                # choose for it (`octet_length(?)`).
                raise ParameterError(
                    "a function argument has no type the function can choose by; if it is a "
                    "parameter, cast it to the type you mean, e.g. octet_length(CAST(? AS BLOB))"
                ) from None
            failure = duckdb_value_failure(exc)
            if failure is not None:
                raise failure.error(f"the merge: {_first_line(exc)}") from None
            if isinstance(exc, duckdb.BinderException):
                # Its text may quote policy expressions: the operator's eyes only.
                raise UnsupportedQuery(
                    "the merge engine cannot bind this query: check the functions it calls, "
                    "their argument count and types",
                    detail=_first_line(exc),
                ) from None
            if isinstance(exc, duckdb.ParserException):
                # sqlglot read something DuckDB would not (`2evenue` as `2e AS venue`).
                raise UnsupportedQuery(
                    "the merge engine cannot parse this query as meshgate rewrote it; check "
                    "for numbers run into names (such as 2evenue) and write them apart",
                    detail=_first_line(exc),
                ) from None
            raise
        finally:
            cursor.close()
        with self._lock:
            self._described[key] = described
            while len(self._described) > DESCRIBED_KEPT:
                self._described.popitem(last=False)
        return described

    def forget_descriptions(self) -> None:
        """Drop the remembered result schemas (cold planning is measured without them)."""
        with self._lock:
            self._described.clear()

    def run(
        self,
        query: exp.Query,
        streams: Mapping[str, pa.RecordBatchReader],
        tables: Mapping[str, pa.Table],
        context: QueryContext,
    ) -> Generator[pa.RecordBatch, None, None]:
        cursor = self._cursor()
        loaded: dict[str, str] = {}
        try:
            for name, table in tables.items():
                cursor.register(name, table)
            if len(streams) > 1 and _reads_files(query):
                loaded = loaded_names(streams)
                load_streams(self._cursor, streams, loaded, context.cancel)
                query = renamed_tables(query, loaded)
            else:
                for name, stream in streams.items():
                    cursor.register(name, stream)
            numbered, positions = renumbered(query)
            sql = numbered.sql(dialect=CANONICAL_DIALECT, comments=False)
            values = [context.parameters[position] for position in positions]
            with context.cancel.stopping(cursor.interrupt):
                yield from cursor.execute(sql, values or None).to_arrow_reader(BATCH_ROWS)
        except duckdb.InterruptException:
            raise QueryCancelled("the query was cancelled") from None
        except duckdb.OutOfMemoryException:
            raise ResourceExhausted(
                f"the merge step of this query needed more memory than it may use "
                f"({self._memory_limit or 'DuckDB default'}, server.limits.merge_memory_limit, "
                "shared by the queries running at once); filter or aggregate more at the "
                "sources, retry when the server is less busy, or ask an administrator to "
                "raise the limit",
                limit="merge_memory_limit",
            ) from None
        except duckdb.Error as exc:
            refusal = duckdb_missing_extension(exc)
            if refusal is not None:
                raise refusal from None
            # The merge's errors about the values it computes: the user's query is at fault.
            failure = duckdb_value_failure(exc)
            if failure is not None:
                raise failure.error(f"the merge: {_first_line(exc)}") from None
            raise SourceUnavailable("the merge step of this query failed",
                                    detail=_first_line(exc)) from None  # fmt: skip
        finally:
            cursor.close()
            if loaded:
                self._janitor.drop(loaded.values())

    def close(self) -> None:
        self._janitor.close()
        with self._lock:
            if self._database is not None:
                self._database.close()
                self._database = None
            if self.spill is not None:
                self.spill.remove()
                self.spill = None

    def _cursor_if_open(self) -> duckdb.DuckDBPyConnection | None:
        with self._lock:
            return None if self._database is None else self._database.cursor()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._database is None:
                self._database = self._open()
            return self._database.cursor()

    def _open(self) -> duckdb.DuckDBPyConnection:
        settings: dict[str, Any] = {}
        if self._memory_limit is not None:
            settings["memory_limit"] = self._memory_limit
        if self._state_directory is not None:
            self.spill = SpillDirectory(self._state_directory)
            settings["temp_directory"] = str(self.spill.path)
        return sandboxed_duckdb(
            readable=self._readable,
            disabled_optimizers=",".join(_SINGLE_SCAN_UNSAFE_OPTIMIZERS),
            **settings,
        )


def _reads_files(query: exp.Query) -> bool:
    """Whether `query` reads a table function (a connector's local scan) itself."""
    return any(isinstance(t.this, exp.Func) for t in query.find_all(exp.Table))


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
