"""Large allocations straight from the OS and back (glibc), so the server's RSS follows what
it holds.

glibc raises its mmap threshold each time a large block is freed (up to 32 MB); from then on
blocks such as scrypt's 16 MB working area (one per password sign-in) or a request of
megabytes come from per-thread heaps that keep the memory after it is freed. A served mesh
grew ~0.8 MB per sign-in that way (found by tests/fuzz). A fixed threshold keeps such blocks
mmapped, so freeing them returns them.
"""

from __future__ import annotations

import ctypes
import ctypes.util

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
