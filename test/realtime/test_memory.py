"""keep_freed_memory caps glibc's malloc arenas: found by tools/soak.py's lifecycle scenario (issue 15), where the
node's RSS grew ~20 MB per deactivate/activate cycle because each activation's new threads got new arenas that
kept their freed memory. Counted with glibc's own malloc_stats() in a fresh process (glibc only)."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys, threading
from strvos_core.realtime.memory import keep_freed_memory
if sys.argv[1] == "capped":
    keep_freed_memory()
barrier = threading.Barrier(6)
def work():
    held = [bytearray(4096) for _ in range(2000)]  # small blocks: from the thread's arena, not mmap
    barrier.wait()                                 # all six alive at once: glibc would give each its own
    del held
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
sys.stderr.flush()
ctypes.CDLL(None).malloc_stats()
"""


def arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")
def test_the_node_allocator_uses_at_most_two_arenas():
    from strvos_core.realtime.memory import ARENAS

    assert arenas("default") >= 4  # glibc alone: one per concurrent thread (up to 8 per core)
    assert arenas("capped") <= ARENAS
