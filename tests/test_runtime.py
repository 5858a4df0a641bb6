"""Process-level settings of sealcheck's own processes (service/runtime.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tune_allocator_keeps_freed_big_arrays_for_reuse():
    # In a child: the setting is process-wide and must not leak into the test process.
    # Allocating, touching and freeing a 64 MB array twice: with the allocator tuned, the
    # second allocation reuses the first's pages, so it adds (almost) no minor page faults.
    script = """
import resource, sys
import numpy as np
from service.runtime import tune_allocator
tuned = sys.argv[1] == "tuned"
if tuned:
    assert tune_allocator() is True
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(64 << 20, np.uint8)  # first use: the pages must be faulted in either way
before = faults()
np.ones(64 << 20, np.uint8)
print(faults() - before)
"""
    counts = {}
    for mode in ("default", "tuned"):
        out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True,
                             text=True, check=True)
        counts[mode] = int(out.stdout.strip())
    # Without tuning glibc mmaps and unmaps each 64 MB block: at least one fault per page,
    # 32 even if every page were a 2 MB transparent huge page (numpy asks for those).
    assert counts["default"] >= 32, counts
    assert counts["tuned"] < 8, counts  # reused: no new pages
