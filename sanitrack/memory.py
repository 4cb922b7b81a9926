"""Large buffers go back to the system when they are freed.

glibc's malloc serves a large allocation with its own mmap and unmaps it when freed, but
only up to a threshold that it raises each time such a block is freed (up to 32 MiB). A
process that once freed a few large buffers then takes the next ones from its heap, and
a heap fragmented by them is not given back. The live feed sends every connecting
dispatcher a snapshot of some megabytes: with a thousand connecting, the `sanitrack api`
process peaked at 500-650 MB and stayed there, against 204 MB with the threshold fixed
at 64 KiB (bench/live.py, README "Known limits"). Fixing it costs an mmap and its page
faults per large buffer, which the serving processes can afford.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # <malloc.h>
MMAP_THRESHOLD_BYTES = 64 * 1024


def return_large_buffers(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve allocations of ``threshold_bytes`` and more by mmap, always; True when the C
    library took it (glibc), False elsewhere (musl, macOS: nothing to do)."""
    if threshold_bytes <= 0:
        raise ValueError(f"threshold_bytes={threshold_bytes}: must be > 0")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))
    if not applied:
        log.warning("mallopt(M_MMAP_THRESHOLD, %d) refused", threshold_bytes)
    return applied
