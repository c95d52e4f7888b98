"""How the server process holds memory: glibc's allocator set up so that its RSS
follows what it holds (large blocks and arenas), and the cyclic garbage collector kept off
what it holds for good.

Large blocks: glibc raises its mmap threshold each time a large block is freed (up to 32 MB);
from then on blocks such as scrypt's 16 MB working area (one per password sign-in) or a
request of megabytes come from per-thread heaps that keep the memory after it is freed. A
served mesh grew ~0.8 MB per sign-in that way (found by tests/fuzz). A fixed threshold keeps
such blocks mmapped, so freeing them returns them.

Arenas: glibc gives each new thread that allocates its own arena (up to 8 per core), and every
query runs its fragments and parallel PostgreSQL ranges on fresh threads whose drivers decode
through malloc. Each arena keeps the fragmented remains of the batches it held, so a server
streaming large results grew by 15-50 MB per full scan of SF 1 `orders` (4 ranges: 373 MB
after one scan, 611 MB after ten, still rising). Capping the arenas at `ARENAS_PER_CORE` per
core (at least `MIN_ARENAS`) lets later queries reuse that memory: the peak stays at about one
scan's working set (benchmarks/README.md, "Full scan").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from collections.abc import Callable

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
LARGE_ALLOCATION_BYTES = 1 << 20
ARENAS_PER_CORE = 1
MIN_ARENAS = 4


def _mallopt() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_int
    mallopt: Callable[[int, int], int] = function
    return mallopt


def arena_limit(cores: int | None) -> int:
    return max(MIN_ARENAS, ARENAS_PER_CORE * (cores or 1))


def return_large_allocations() -> bool:
    """Serve allocations of LARGE_ALLOCATION_BYTES or more by mmap and cap the arenas; False
    where the C library has no glibc-style `mallopt` (the allocator then stays as it is).

    An operator's MALLOC_ARENA_MAX (glibc's own tunable) wins over the cap.
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    if "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(M_ARENA_MAX, arena_limit(os.cpu_count()))
    return bool(mallopt(M_MMAP_THRESHOLD, LARGE_ALLOCATION_BYTES))


YOUNG_GENERATION_THRESHOLD = 20_000  # allocations between collections of new objects (700)


def collect_garbage_less_often() -> None:
    """Keep what the server holds out of the cyclic collector's way, and collect new objects
    less often.

    Planning builds and drops sqlglot trees by the thousand, each node a cycle (it points at
    its parent), so the collector runs constantly, and each full pass walks everything loaded
    at start (modules, configuration, catalog). Planning TPC-H's 22 queries cold in a loop
    spent 10 of its 25 s collecting; frozen and with this threshold, 2 s, and the p95 of cold
    planning fell from 192 to 105 ms of CPU (benchmarks/README.md). Called at start and after
    a reload, when what is held changes.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)
