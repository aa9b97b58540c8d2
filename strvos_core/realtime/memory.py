"""Process-wide allocator settings for processes that take large messages (the node and its benchmark client)."""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2  # malloc arenas in all (glibc's default: 8 per core)


def keep_freed_memory() -> None:
    """glibc: keep freed blocks of up to 32 MB for reuse instead of unmapping / trimming them, in at most ARENAS
    arenas.

    Every camera image is taken into a new ~1 MB bytes object. Served from mmap or a trimmed heap, each take
    faults in ~250 fresh 4 KB pages: 1.1-1.5 ms per 640x480 image on a thread other than the main one on the
    development VM (~2 ms per 900 KB message taken in a fresh Python process), 0.37-0.42 ms with these settings
    (two-process probe). The cost: up to 64 MB of freed memory stays with each arena. Hence the arena limit: the
    node's threads are made anew on every lifecycle activate (worker, camera, torch's OpenMP team), and glibc gave
    them new arenas, each keeping its freed memory: RSS grew ~20 MB per deactivate/activate cycle until glibc's
    8-per-core cap (+190 MB after 15 cycles on 2 cores; tools/soak.py's lifecycle scenario, see
    benchmarks/reliability.md). No-op without glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, 32 << 20)
    mallopt(M_TRIM_THRESHOLD, 64 << 20)
    mallopt(M_ARENA_MAX, ARENAS)
