"""OpenLineage run events: one per query, built from its audit record, sent in the background.

A query is one run of a job named after its SQL text (`query.<sha256 prefix>`, so the same
query always lands on the same job), reading the products it named as input datasets
(namespace = the mesh, name = `domain.product`). Each query emits one event when it ends:
COMPLETE, FAIL (refused or failed) or ABORT (cancelled); no START, since the event is built
from the finished audit record and a query's run is short. Facets: the SQL (`sql`), the
principal and query figures (`meshgate`), the engine (`processing_engine`) and, for a failure,
the message the caller got (`errorMessage`). Sources' physical SQL is never sent.

Events wait in a bounded queue for one sender thread: the query never waits for a transport,
and a failing one is logged, never raised.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import queue
import threading
import time
from pathlib import Path

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    error_message_run,
    job_type_job,
    processing_engine_run,
    sql_job,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport
from openlineage.client.uuid import generate_new_uuid

from meshgate import __version__
from meshgate.audit import AuditRecord
from meshgate.catalog.config import OpenLineageConfig

log = logging.getLogger(__name__)

PRODUCER = f"urn:meshgate:{__version__}"  # a URI naming this engine and version
_STATES = {"ok": RunState.COMPLETE, "cancelled": RunState.ABORT}
_STOP = None


@attr.define
class MeshgateRunFacet(RunFacet):
    """Who ran the query and what it returned (the `meshgate` run facet)."""

    queryId: str  # noqa: N815
    user: str
    roles: list[str]
    outcome: str
    rows: int
    seconds: float

    @staticmethod
    def _get_schema() -> str:
        return "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet"


def run_event(record: AuditRecord, namespace: str) -> RunEvent:
    """The OpenLineage event of one finished query."""
    ended = dt.datetime.fromisoformat(record.time) + dt.timedelta(seconds=record.seconds)
    run_facets: dict[str, RunFacet] = {
        "meshgate": MeshgateRunFacet(
            queryId=record.query_id, user=record.user, roles=list(record.roles),
            outcome=record.outcome, rows=record.rows, seconds=record.seconds, producer=PRODUCER,
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=__version__, name="meshgate", producer=PRODUCER
        ),
    }  # fmt: skip
    if record.outcome not in _STATES:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=record.message or f"query {record.outcome} ({record.status})",
            programmingLanguage="SQL", producer=PRODUCER,
        )  # fmt: skip
    job_facets = {
        "sql": sql_job.SQLJobFacet(query=record.sql, dialect="duckdb", producer=PRODUCER),
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="MESHGATE", jobType="QUERY", producer=PRODUCER
        ),
    }
    return RunEvent(
        eventType=_STATES.get(record.outcome, RunState.FAIL),
        eventTime=ended.isoformat(timespec="milliseconds"),
        run=Run(runId=str(generate_new_uuid()), facets=run_facets),
        job=Job(namespace=namespace, name=job_name(record.sql), facets=job_facets),
        inputs=[InputDataset(namespace=namespace, name=p) for p in record.products],
        outputs=[],
        producer=PRODUCER,
    )


def job_name(sql: str) -> str:
    """The job of a query text: the same SQL is the same job, run after run."""
    return f"query.{hashlib.sha256(sql.encode('utf-8')).hexdigest()[:16]}"


class RunEvents:
    """Sends each finished query's run event from one background thread; thread-safe."""

    def __init__(self, client: OpenLineageClient, namespace: str, queue_size: int) -> None:
        self._client = client
        self._namespace = namespace
        self._queue: queue.Queue[AuditRecord | None] = queue.Queue(maxsize=queue_size)
        self._sender = threading.Thread(target=self._send, name="openlineage", daemon=True)
        self._sender.start()
        self._closed = False

    @classmethod
    def from_config(cls, config: OpenLineageConfig, mesh: str, directory: Path) -> RunEvents:
        return cls(OpenLineageClient(transport=_transport(config, directory)),
                   config.namespace or mesh, config.queue_size)  # fmt: skip

    def record(self, record: AuditRecord) -> None:
        """Queue the event of `record`'s query (a failed login is no query: none is sent)."""
        if record.outcome == "login_failed":
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            log.warning("OpenLineage queue full: the event of query %s was dropped",
                        record.query_id)  # fmt: skip

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, waiting at most `timeout` seconds in all, then stop; once."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("OpenLineage events still queued at shutdown were dropped")
            return
        self._sender.join(max(0.0, deadline - time.monotonic()))
        if self._sender.is_alive():
            log.warning("OpenLineage events still queued at shutdown were dropped")
        self._client.close(max(0.0, deadline - time.monotonic()))

    def _send(self) -> None:
        while (record := self._queue.get()) is not _STOP:
            try:
                self._client.emit(run_event(record, self._namespace))
            except Exception as exc:  # the transport's failure is logged, never raised
                log.warning("could not send the OpenLineage event of query %s: %s",
                            record.query_id, exc)  # fmt: skip


def _transport(config: OpenLineageConfig, directory: Path) -> Transport:
    if config.transport == "file":
        assert config.path is not None
        path = directory / config.path
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    assert config.url is not None
    return HttpTransport(
        HttpConfig(url=config.url, endpoint=config.endpoint, timeout=config.timeout_seconds)
    )
