"""The suite's planning latency: `QueryService.prepare` of the 22 TPC-H queries, in process.

prepare is parse, gate, bind, secure, rewrite and plan, with nothing run at a source. One
service for the whole run, warmed by one unmeasured pass over the 22 queries (first contact
with the sources, imports, catalog), then the garbage collector set up as `meshgate serve` sets
it. Cold: the query prepared right after the service forgot every plan and statement shape
(`QueryService.forget_plans`), so every stage runs. Warm: the same text prepared again right
after (the plan cache answers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from benchmarks.layouts import Layout
from benchmarks.tpch import tpch_queries
from meshgate.server.memory import collect_garbage_less_often
from meshgate.service import QueryService


@dataclass
class PlanningRun:
    number: int
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)


def run_planning(layout: Layout, rounds: int) -> list[PlanningRun]:
    texts = tpch_queries()
    runs = [PlanningRun(n) for n in range(1, 23)]
    service = QueryService.from_config(layout.directory)
    try:
        principal = service.principal("admin")
        for round_number in range(rounds + 1):
            if round_number == 1:
                collect_garbage_less_often()  # once warmed, as `meshgate serve` does
            for run in runs:
                sql = texts[run.number - 1]
                service.forget_plans()
                for samples in (run.cold, run.warm):
                    started = time.perf_counter()
                    service.prepare(sql, principal)
                    if round_number > 0:
                        samples.append(time.perf_counter() - started)
    finally:
        service.close()
    print("planning done", flush=True)
    return runs
