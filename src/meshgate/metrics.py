"""What the server is doing, as Prometheus metrics: fed by the audit trail and the query path.

Every audit record (one per query, allowed or refused, and per failed login) moves the
outcome counters and the rows and bytes returned; the running-query gauge and the latency
histogram follow each result stream from its start to its end. Pool gauges are read from the
connectors when scraped. The metrics live in a registry of their own (one per `QueryService`,
never prometheus_client's global one), rendered by `text()` for `/metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from meshgate.audit import AuditRecord
from meshgate.spi import PoolUsage

# Seconds; a BI dashboard's point lookups to a warehouse scan of minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0)  # fmt: skip

PoolReadings = Callable[[], Mapping[str, PoolUsage | None]]


class _PoolCollector(Collector):
    """Pool gauges read at scrape time: connections in use and idle per source."""

    def __init__(self, readings: PoolReadings) -> None:
        self._readings = readings

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "meshgate_source_pool_connections",
            "Pooled connections per source, lent to running queries (in_use) or idle.",
            labels=["source", "state"],
        )
        for source, usage in sorted(self._readings().items()):
            if usage is not None:
                family.add_metric([source, "in_use"], usage.in_use)
                family.add_metric([source, "idle"], usage.idle)
        yield family


class QueryMetrics:
    """The deployment's counters, gauges and histograms; thread-safe."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.queries = Counter(
            "meshgate_queries", "Queries by outcome (ok, denied, error, cancelled) and gRPC "
            "status code (OK for a query that streamed to its end).",
            ["outcome", "code"], registry=r,
        )  # fmt: skip
        self.login_failures = Counter("meshgate_login_failures", "Refused sign-ins.",
                                      registry=r)  # fmt: skip
        self.latency = Histogram(
            "meshgate_query_duration_seconds",
            "Time from the start of a query's execution to its last row (or its end).",
            ["outcome"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.active = Gauge("meshgate_active_queries", "Queries whose results are streaming.",
                            registry=r)  # fmt: skip
        self.rows = Counter("meshgate_returned_rows", "Rows returned to clients.", registry=r)
        self.bytes = Counter("meshgate_returned_bytes", "Arrow bytes returned to clients.",
                             registry=r)  # fmt: skip
        self.source_rows = Counter("meshgate_source_rows", "Rows received from each source.",
                                   ["source"], registry=r)  # fmt: skip
        self.source_bytes = Counter("meshgate_source_bytes",
                                    "Arrow bytes received from each source.", ["source"],
                                    registry=r)  # fmt: skip
        self.plan_cache = Counter("meshgate_plan_cache_lookups",
                                  "Plan cache lookups by result (hit, miss).", ["result"],
                                  registry=r)  # fmt: skip
        self.limit_rejections = Counter(
            "meshgate_limit_rejections", "Queries refused by a configured limit, per limit.",
            ["limit"], registry=r,
        )  # fmt: skip
        self.reloads = Counter("meshgate_config_reloads",
                               "Configuration reloads by result (applied, rejected).",
                               ["result"], registry=r)  # fmt: skip
        # Labelled children by (metric, label values): `labels()` validates and locks on
        # every call, five times per query; a child, once made, is the same for good.
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, metric.labels(*values))
        return child

    def watch_pools(self, readings: PoolReadings) -> None:
        """Report `readings()` (source name -> pool usage) on every scrape."""
        self.registry.register(_PoolCollector(readings))

    # --- hooks ------------------------------------------------------------------------------
    def observe(self, record: AuditRecord) -> None:
        """An audit record was written (a listener of `AuditTrail`)."""
        if record.outcome == "login_failed":
            self.login_failures.inc()
            return
        # A stream the client left has no status of its own: gRPC calls that CANCELLED.
        code = record.status or ("CANCELLED" if record.outcome == "cancelled" else "OK")
        self._child(self.queries, record.outcome, code).inc()
        self.rows.inc(record.rows)
        self.bytes.inc(record.bytes)
        for call in record.sources:
            if call.rows is None or call.bytes is None:
                continue  # a merge scan: the rows it read are not counted
            self._child(self.source_rows, call.source).inc(call.rows)
            self._child(self.source_bytes, call.source).inc(call.bytes)

    def plan_lookup(self, hit: bool) -> None:
        self._child(self.plan_cache, "hit" if hit else "miss").inc()

    def limit_rejected(self, limit: str) -> None:
        """A query was refused by the limit named `limit` (its config key, e.g.
        `max_concurrent_queries`): call this where the limit refuses it."""
        self.limit_rejections.labels(limit).inc()

    def config_reloaded(self, applied: bool) -> None:
        self.reloads.labels("applied" if applied else "rejected").inc()

    def running(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        """`reader` unchanged, counted as active from its first pull and timed from now
        until it ends (a stream nobody pulls is neither)."""
        started = time.monotonic()

        def batches() -> Iterator[pa.RecordBatch]:
            self.active.inc()
            outcome = "error"
            try:
                yield from reader
                outcome = "ok"
            except GeneratorExit:
                outcome = "cancelled"
                raise
            finally:
                reader.close()
                self.active.dec()
                self._child(self.latency, outcome).observe(time.monotonic() - started)

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
