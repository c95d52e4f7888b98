"""The distributed residual engine: a query's residual on Spark, over Spark Connect.

Spark is given nothing but what DuckDB would be: the fragments' Arrow streams, already
filtered and masked at their sources (and policy stages' outputs), never a source or a file
of one (`can_read` is False, so the planner inlines no merge scan and a files source's
tables arrive as fragments too; ARCHITECTURE.md §4). Per query:

1. each stream is written, batch by batch, as Parquet files under its own folder of the
   query's folder in `staging_directory` (a directory meshgate and every Spark worker see
   at the same path); memory stays one batch per stream;
2. a Spark Connect session of its own (so an interrupt reaches this query's jobs only)
   makes a temporary view over each folder and runs the residual, transpiled by sqlglot
   from the canonical DuckDB dialect to Spark SQL, its parameters bound as named
   arguments (never spliced);
3. Spark writes the result as Parquet in the query's folder, its columns renamed by
   position (a residual may return two columns of one name); the part files are read back
   in their partition order, which is the result's order under an ORDER BY.

The query's folder is removed when it ends, fails or is cancelled; a cancel interrupts the
session's Spark jobs. `describe` is DuckDB's (the canonical dialect), so the wire schema
does not depend on the engine: execution casts Spark's types (its decimals' precision,
for one) to it.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
import uuid
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from meshgate.errors import (
    MeshgateError,
    QueryCancelled,
    QueryValueError,
    SourceUnavailable,
    UnsupportedQuery,
)
from meshgate.planner.schema import ResultDescriber
from meshgate.spi import QueryContext
from meshgate.spi.parameters import renumbered

if TYPE_CHECKING:
    from pyspark.sql.connect.session import SparkSession

log = logging.getLogger(__name__)

SPARK_DIALECT = "spark"
BATCH_ROWS = 64 * 1024
READ_BUFFER_BYTES = 1 << 20  # the result's part files are read through a buffer this size
ROWS_PER_FILE = 1_000_000  # a stream's Parquet files roll over here: Spark reads them in parallel
# Set on every query's session: Parquet timestamps pyarrow reads as written (not INT96), and
# UTC as DuckDB's sandbox computes.
SESSION_SETTINGS = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.session.timeZone": "UTC",
}
# Spark's error conditions about the values a query computes: the caller's query is at fault.
_VALUE_CONDITIONS = re.compile(
    r"DIVIDE_BY_ZERO|CAST_|ARITHMETIC_OVERFLOW|NUMERIC_|INVALID_ARRAY_INDEX|DATETIME_|"
    r"INVALID_FRACTION|INVALID_PARAMETER_VALUE|CANNOT_PARSE"
)
_PART_FILE = re.compile(r"^part-(\d+)-.*\.parquet$")


def spark_unsupported_type(schema: pa.Schema) -> str | None:
    """The first column type Spark cannot take from Parquet (None: all can), so that `auto`
    keeps such a query on DuckDB instead of failing it."""
    for field in schema:
        if not _supported(field.type):
            return f"{field.type}"
    return None


def _supported(kind: pa.DataType) -> bool:
    if pa.types.is_time(kind) or pa.types.is_interval(kind) or pa.types.is_duration(kind):
        return False
    if pa.types.is_dictionary(kind) or pa.types.is_union(kind) or pa.types.is_null(kind):
        return False
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _supported(kind.value_type)
    if pa.types.is_struct(kind):
        return all(_supported(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_map(kind):
        return _supported(kind.key_type) and _supported(kind.item_type)
    return True


class SparkEngine:
    """Runs residuals on a Spark Connect server at `remote` (`sc://host:port`), staging
    through `staging_directory`; `describer` (the DuckDB engine) says what a residual
    returns. Thread-safe: each run has its own session and folder."""

    # The planner then gives in-process sources only what streams (planner/schema.py).
    out_of_process = True

    def __init__(self, remote: str, staging_directory: Path, describer: ResultDescriber) -> None:
        self.remote = remote
        self.staging_directory = staging_directory
        self._describer = describer

    def can_read(self, directories: Sequence[Path]) -> bool:
        """Never: Spark reads only the staged fragments, so no source's files are inlined."""
        return False

    def describe(self, query: exp.Query, inputs: Mapping[str, pa.Schema]) -> pa.Schema:
        return self._describer.describe(query, inputs)

    def run(
        self,
        query: exp.Query,
        streams: Mapping[str, pa.RecordBatchReader],
        tables: Mapping[str, pa.Table],
        context: QueryContext,
    ) -> Generator[pa.RecordBatch, None, None]:
        folder = self.staging_directory / f"query-{context.query_id}-{uuid.uuid4().hex[:8]}"
        session: SparkSession | None = None
        try:
            # Post-policy data on disk: the folder is meshgate's (and Spark's, running as the
            # same user) alone.
            self.staging_directory.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o700)
            started = time.monotonic()
            inputs = _stage_all(streams, folder / "inputs")
            for name, table in tables.items():
                path = _stage(table.to_reader(), folder / "inputs" / f"t{len(inputs)}")
                inputs[name] = (path, table.schema)
            # What staging's batches left in Arrow's allocator goes back to the system now,
            # not at its leisure: the server's memory is its base again while Spark works.
            pa.default_memory_pool().release_unused()
            if context.cancel.cancelled:
                raise QueryCancelled("the query was cancelled")
            staged = time.monotonic()
            session = self._session()
            output = folder / "result"
            with context.cancel.stopping(lambda: _interrupt(session)):
                for name, (path, schema) in inputs.items():
                    _view(session, name, path, schema)
                sql, arguments = spark_sql(query, context.parameters)
                result = session.sql(sql, args=arguments or None)
                result = result.toDF(*[f"c{i}" for i in range(len(result.columns))])
                result.write.parquet(str(output))
            log.debug("query %s: inputs staged in %.2f s, Spark answered in %.2f s",
                      context.query_id, staged - started, time.monotonic() - staged)
            yield from _read_result(output)
        except MeshgateError:
            raise
        except Exception as exc:
            if context.cancel.cancelled:
                raise QueryCancelled("the query was cancelled") from None
            raise spark_failure(exc, self.remote) from None
        finally:
            if session is not None:
                _stop(session)
            shutil.rmtree(folder, ignore_errors=True)
            pa.default_memory_pool().release_unused()

    def close(self) -> None:
        """Nothing is held between queries (each has its own session)."""

    def _session(self) -> SparkSession:
        from pyspark.sql.connect.client.retries import DefaultPolicy
        from pyspark.sql.connect.session import SparkSession

        session = SparkSession(connection=self.remote)
        # The default retries for ten minutes when the server is down: a query should fail
        # within seconds and say so.
        session.client.set_retry_policies([DefaultPolicy(max_retries=3, initial_backoff=200,
                                                         max_backoff=2000)])  # fmt: skip
        for key, value in SESSION_SETTINGS.items():
            session.conf.set(key, value)
        return session


def spark_sql(query: exp.Query, parameters: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """The residual as Spark SQL, each placeholder a named argument `:pN` and its value."""
    numbered, positions = renumbered(query)
    for node in list(numbered.find_all(exp.Placeholder)):
        node.replace(exp.Placeholder(this=f"p{node.name}"))
    for cte in numbered.find_all(exp.CTE):
        # Spark SQL has no `AS MATERIALIZED`; its inputs are staged files, read as often as
        # the query likes.
        cte.set("materialized", None)
    for division in list(numbered.find_all(exp.Div)):
        # DuckDB's `/` is a DOUBLE division whatever the operands; Spark divides decimals
        # as decimals, rounded to 6 places (TPC-H Q8's share came back as 0.039639).
        division.set("this", _double(division.this))
    for average in list(numbered.find_all(exp.Avg)):
        # So is DuckDB's avg; Spark's avg of a decimal is a decimal, rounded to its scale + 4
        # (TPC-H Q1's avg_qty came back as 25.575155 for 25.5751546...).
        inner = average.this
        if isinstance(inner, exp.Distinct):
            inner.set("expressions", [_double(e) for e in inner.expressions])
        else:
            average.set("this", _double(inner))
    arguments = {f"p{number}": parameters[position]
                 for number, position in enumerate(positions, start=1)}  # fmt: skip
    return numbered.sql(dialect=SPARK_DIALECT, comments=False), arguments


def _double(expression: exp.Expr) -> exp.Expr:
    return exp.Cast(this=expression, to=exp.DataType.build("DOUBLE"))


def _view(session: SparkSession, name: str, path: Path, schema: pa.Schema) -> None:
    """A temporary view `name` over the staged files, their schema given where Spark's
    types cover it (inferring it costs a Spark job per input)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    reader = session.read
    try:
        reader = reader.schema(from_arrow_schema(schema))
    except (TypeError, ValueError) as exc:  # a type Spark maps only from the file (unsigned)
        log.debug("staged schema left to Spark to infer: %s", exc)
    reader.parquet(str(path)).createOrReplaceTempView(name)


def _stage_all(streams: Mapping[str, pa.RecordBatchReader],
               folder: Path) -> dict[str, tuple[Path, pa.Schema]]:  # fmt: skip
    """Every stream staged at once, each on its own thread: staged one after the other,
    every other fragment would stall on its prefetch queue, its source idle, until its turn."""
    if not streams:
        return {}
    with ThreadPoolExecutor(max_workers=len(streams), thread_name_prefix="stage") as pool:
        staged = {name: pool.submit(_stage, stream, folder / f"{index}")
                  for index, (name, stream) in enumerate(streams.items())}  # fmt: skip
        return {name: (future.result(), streams[name].schema)
                for name, future in staged.items()}  # fmt: skip


def _stage(stream: pa.RecordBatchReader, folder: Path) -> Path:
    """`stream` as Parquet files in `folder`, a batch at a time (a new file every
    ROWS_PER_FILE rows); an empty stream still leaves one file, which carries the schema."""
    folder.mkdir(parents=True)
    schema = stream.schema
    files = 0
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for batch in stream:
            if writer is None or rows >= ROWS_PER_FILE:
                if writer is not None:
                    writer.close()
                writer = pq.ParquetWriter(folder / f"part-{files:05d}.parquet", schema)
                files += 1
                rows = 0
            writer.write_batch(batch)
            rows += batch.num_rows
        if writer is None:
            writer = pq.ParquetWriter(folder / "part-00000.parquet", schema)
    finally:
        if writer is not None:
            writer.close()
    return folder


def _read_result(output: Path) -> Iterator[pa.RecordBatch]:
    """Spark's part files in partition order (its numbering), batch by batch."""
    parts: list[tuple[int, Path]] = []
    for path in output.iterdir():
        found = _PART_FILE.match(path.name)
        if found is not None:
            parts.append((int(found.group(1)), path))
    parts.sort()
    numbers = [number for number, _ in parts]
    if len(set(numbers)) != len(numbers):
        raise SourceUnavailable("the Spark residual's result could not be read in order",
                                detail=f"two part files share a number in {output}")
    for _, path in parts:
        # Read through a buffer of READ_BUFFER_BYTES, not a whole column chunk at a time
        # (Spark's row groups reach 128 MB): a large result streams in small parts.
        with pq.ParquetFile(path, buffer_size=READ_BUFFER_BYTES, pre_buffer=False) as part:
            yield from part.iter_batches(BATCH_ROWS)


def _interrupt(session: SparkSession) -> None:
    """Stop every Spark job of the query's session (a cancel, from another thread)."""
    try:
        session.interruptAll()
    except Exception as exc:  # a session already gone has nothing left to stop
        log.debug("Spark session not interrupted: %s", exc)


def _stop(session: SparkSession) -> None:
    try:
        session.stop()
    except Exception as exc:  # the session's release is best effort; the server expires it
        log.debug("Spark session not released: %s", exc)


def spark_failure(error: BaseException, remote: str) -> MeshgateError:
    """Spark's error as meshgate's: the caller gets no text that could quote the residual
    (policy expressions) or a path; the operator gets Spark's first line as `detail`."""
    text = str(error)
    first = text.splitlines()[0] if text else type(error).__name__
    if _unreachable(error, text):
        return SourceUnavailable(
            "the distributed residual engine (Spark Connect) cannot be reached; retry "
            "later, or run the query on the in-process engine (session option or call "
            "header residual_engine=duckdb); an operator should check the Spark Connect "
            "server at server.residual.spark.remote",
            detail=f"{remote}: {first}",
        )
    condition = _condition(error)
    if condition is not None and _VALUE_CONDITIONS.match(condition):
        return QueryValueError(
            f"the merge could not compute a value ({condition}); check the query's casts, "
            "divisions and arithmetic",
            detail=first,
        )
    if condition is not None and condition.startswith(("UNRESOLVED_", "DATATYPE_MISMATCH",
                                                       "WRONG_NUM_ARGS", "PARSE_SYNTAX")):
        return UnsupportedQuery(
            "the distributed residual engine (Spark) cannot run this query as written; "
            "run it on the in-process engine (residual_engine=duckdb)",
            detail=first,
        )
    return SourceUnavailable("the merge step of this query failed on Spark", detail=first)


def _unreachable(error: BaseException, text: str) -> bool:
    status = getattr(error, "getGrpcStatusCode", None)
    if callable(status):
        try:
            if str(status()).endswith("UNAVAILABLE"):
                return True
        except Exception:  # older clients carry no status: the text decides
            pass
    markers = ("failed to connect", "Connection refused", "StatusCode.UNAVAILABLE",
               "Name resolution failure", "DNS resolution failed")  # fmt: skip
    return any(marker in text for marker in markers)


def _condition(error: BaseException) -> str | None:
    for accessor in ("getCondition", "getErrorClass"):
        method = getattr(error, accessor, None)
        if callable(method):
            try:
                value = method()
            except Exception:  # not a Spark error with a condition
                continue
            if isinstance(value, str) and value:
                return value
    return None
