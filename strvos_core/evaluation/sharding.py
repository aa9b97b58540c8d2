"""Which work a process does: RANK / WORLD_SIZE (as torchrun sets them), round-robin over videos or images."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Shard:
        """Read RANK / WORLD_SIZE / LOCAL_RANK; a plain single process is rank 0 of 1."""
        try:
            rank = int(os.environ.get("RANK", "0"))
            world = int(os.environ.get("WORLD_SIZE", "1"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as e:
            raise ValueError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers: {e}") from e
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"need 0 <= RANK < WORLD_SIZE, got RANK={rank} WORLD_SIZE={world}")
        return cls(rank, world, local)

    def take(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank::self.world_size])

    def device(self, device: str) -> str:
        """`cuda` means this process's GPU (cuda:LOCAL_RANK) when several processes share a node."""
        return f"cuda:{self.local_rank}" if device == "cuda" and self.world_size > 1 else device
