"""How the server process holds memory: large allocations straight from the OS and back
(glibc), so its RSS follows what it holds, and the cyclic garbage collector kept off what it
holds for good.

glibc raises its mmap threshold each time a large block is freed (up to 32 MB); from then on
blocks such as scrypt's 16 MB working area (one per password sign-in) or a request of
megabytes come from per-thread heaps that keep the memory after it is freed. A served mesh
grew ~0.8 MB per sign-in that way (found by tests/fuzz). A fixed threshold keeps such blocks
mmapped, so freeing them returns them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE_ALLOCATION_BYTES = 1 << 20


def return_large_allocations() -> bool:
    """Serve allocations of LARGE_ALLOCATION_BYTES or more by mmap; False where the C
    library has no glibc-style `mallopt` (the allocator then stays as it is)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
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
