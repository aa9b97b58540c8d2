"""How many CPU threads torch's operators use in the calling thread (the node's `threads` parameter).

Under OpenMP torch keeps the intra-op thread count per OS thread, and a count set in one thread does not change
threads already running: the thread that runs the model calls this itself, and other threads keep theirs.
"""
from __future__ import annotations

import cv2
import torch

MAX_THREADS = 256


def serial_opencv() -> None:
    """Run OpenCV's functions in the calling thread (no thread pool of its own; process-wide). Its work here is one
    frame or a crop at a time (encodings, overlays, grounding.mask_refine_radius), too small to gain from a pool, and
    its pool's pthreads fight torch's OpenMP threads for a small CPU's cores: through the node on the 2-core VM
    (`scripts/demo.py --rate 5`, the default model) 28 % of frames dropped and latency p50 392 ms with the pool,
    none dropped and p50 156-167 ms without (benchmarks/tiny_default_cpu.md, 2026-12-07)."""
    cv2.setNumThreads(0)


def use_compute_threads(count: int) -> int:
    """Use ``count`` intra-op threads in this thread (0: leave torch's default); returns the count in effect."""
    if not 0 <= count <= MAX_THREADS:
        raise ValueError(f"compute threads must be in [0, {MAX_THREADS}] (0: torch's default), got {count}")
    if count > 0 and torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return torch.get_num_threads()
