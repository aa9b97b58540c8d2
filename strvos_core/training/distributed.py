"""Process-group set-up for `torchrun` (env:// rendezvous) and the single-process fallback.

gloo on CPU, nccl on CUDA. `torchrun --nproc_per_node N ...` sets RANK/WORLD_SIZE/LOCAL_RANK/MASTER_*;
without them the run is one process and every collective below is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from strvos_core.errors import StrvosError


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1; the device gets the local rank on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise StrvosError(f"run.device {device!r} requested but CUDA is not available")
        resolved = torch.device("cuda", local if world > 1 else (resolved.index or 0))
        torch.cuda.set_device(resolved)
    if world == 1:
        return DistContext(device=resolved)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo", rank=rank, world_size=world)
        owns = True
    return DistContext(rank, world, local, resolved, owns)


def teardown(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def mean_over_ranks(ctx: DistContext, values: dict[str, float]) -> dict[str, float]:
    if not ctx.distributed:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}


def replicas_in_sync(ctx: DistContext, parameters: list[torch.Tensor]) -> bool:
    """True when every rank holds bit-identical trainable parameters (checked by all-gathering them)."""
    if not ctx.distributed:
        return True
    flat = torch.cat([p.detach().reshape(-1).double() for p in parameters])
    gathered = [torch.empty_like(flat) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])
