"""The serving processes give large freed buffers back to the system (glibc's mallopt)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from sanitrack.memory import return_large_buffers

GLIBC = platform.libc_ver()[0] == "glibc"

# Freed 2 MB buffers: with the threshold fixed they are unmapped; with glibc's sliding
# threshold the second round comes from the heap and stays in the process.
PROBE = """
import resource, sys
from sanitrack.memory import return_large_buffers
if sys.argv[1] == "fixed":
    assert return_large_buffers()
def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
keep = []
for round_ in range(3):
    buffers = [bytearray(2_000_000) for _ in range(60)]
    for b in buffers:
        b[::4096] = b"x" * len(b[::4096])  # touch every page
    keep.append(bytearray(100))  # a small block after them, pinning the heap's top
    del buffers
print(rss_kb())
"""


def rss_after(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_a_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threshold_bytes"):
        return_large_buffers(0)


@pytest.mark.skipif(not GLIBC, reason="mallopt(M_MMAP_THRESHOLD) is glibc's")
def test_freed_large_buffers_leave_the_process() -> None:
    fixed, sliding = rss_after("fixed"), rss_after("sliding")
    assert fixed < 60_000, f"{fixed} kB resident after freeing with the threshold fixed"
    assert sliding > fixed + 50_000, (sliding, fixed)
