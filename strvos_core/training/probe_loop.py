"""The loop the analysis probes share (click_probe, attribute_probe, motion_probe): an optimizer step with gradient
clipping, and training interleaved with held-out evaluations on a fixed schedule."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch


def optimizer_step(optimizer: torch.optim.Optimizer, parameters: Iterable[torch.Tensor], loss: torch.Tensor,
                   max_norm: float) -> float:
    """Backpropagates `loss`, clips the gradients' norm to `max_norm`, steps; returns the loss's value."""
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    optimizer.step()
    return float(loss.detach())


def scheduled_evaluations(train_step: Callable[[int], float | None], evaluate: Callable[[], Any], steps: int,
                          eval_every: int) -> Iterator[tuple[int, float, Any, float]]:
    """Runs `train_step(step)` for `steps` steps; after every `eval_every`-th and after the last it yields (steps
    done, mean loss of the steps since the previous evaluation (NaN if none returned one; a step returning None
    trained nothing), what `evaluate()` returned, seconds since the start)."""
    recent: list[float] = []
    start = time.perf_counter()
    for step in range(steps):
        loss = train_step(step)
        if loss is not None:
            recent.append(loss)
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            scores = evaluate()
            mean = float(np.mean(recent)) if recent else float("nan")
            recent = []
            yield step + 1, mean, scores, time.perf_counter() - start
