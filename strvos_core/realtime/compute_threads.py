"""How many CPU threads torch's operators use in the calling thread (the node's `threads` parameter).

Under OpenMP torch keeps the intra-op thread count per OS thread, and a count set in one thread does not change
threads already running: the thread that runs the model calls this itself, and other threads keep theirs.
"""
from __future__ import annotations

import torch

MAX_THREADS = 256


def use_compute_threads(count: int) -> int:
    """Use ``count`` intra-op threads in this thread (0: leave torch's default); returns the count in effect."""
    if not 0 <= count <= MAX_THREADS:
        raise ValueError(f"compute threads must be in [0, {MAX_THREADS}] (0: torch's default), got {count}")
    if count > 0 and torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return torch.get_num_threads()
