"""Process-level settings for sealcheck's own processes (CLI, service, batch workers).

These change how the whole process behaves, so they live here and are applied by the entry
points, never by the ``vision`` library (which other programs import).
"""

from __future__ import annotations

import ctypes
import sys

# glibc's mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30


def tune_allocator() -> bool:
    """Let glibc reuse freed memory for big arrays instead of handing it back to the kernel.

    By default glibc serves every block above its mmap threshold (at most 32 MB) with a fresh
    mmap and unmaps it on free. A 12 MP photo is 36 MB, so every such array was new memory
    that the kernel had to fault in and zero page by page, on every comparison: about a quarter
    of the in-process pipeline's time on the 2-core development machine (761 -> 576 ms per
    12 MP pair, ``benchmarks/bench_pipeline.py``). Raising the mmap threshold serves them from
    the heap, and raising the trim threshold keeps the heap's freed top for the next array.
    Both are needed: with only the trim threshold set, glibc stops adapting its mmap threshold
    and it got slower.

    The price: the process keeps its peak heap instead of returning it, which for sealcheck's
    processes is the memory of one or a few comparisons (~400 MB for 12 MP photos). Returns
    False (and changes nothing) where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl (Alpine) and others: no glibc mallopt
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
