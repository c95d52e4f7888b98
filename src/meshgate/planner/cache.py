"""A bounded cache of plans, keyed by everything a plan depends on.

Planning is pure given the SQL text, the caller's identity (its grants and, with governance,
its attributes), the session's default domain and strict mode, and the deployment's
configuration, which is fixed for the life of a `QueryService`. Plans are immutable, and
everything data-dependent (dynamic filters, fragment SQL with bound keys) happens at
execution, so a cached plan is as good as a fresh one. BI tools repeat the same statements.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

PlanKey = tuple[Hashable, ...]
Planned = TypeVar("Planned")


class PlanCache(Generic[Planned]):
    """Least-recently-used plans, at most `capacity` of them."""

    def __init__(self, capacity: int = 512) -> None:
        self._capacity = capacity
        self._plans: OrderedDict[PlanKey, Planned] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0  # plans made: a prepared statement re-executed adds none

    def get(self, key: PlanKey) -> Planned | None:
        found = self.find(key)
        if found is None:
            with self._lock:
                self.misses += 1
        return found

    def find(self, key: PlanKey) -> Planned | None:
        """`get` that counts only a hit: for a lookup made before the one that plans."""
        with self._lock:
            found = self._plans.get(key)
            if found is not None:
                self._plans.move_to_end(key)
                self.hits += 1
            return found

    def put(self, key: PlanKey, value: Planned) -> None:
        if self._capacity <= 0:
            return
        with self._lock:
            self._plans[key] = value
            self._plans.move_to_end(key)
            while len(self._plans) > self._capacity:
                self._plans.popitem(last=False)
