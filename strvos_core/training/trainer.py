"""The training loop: stage 1 (images) or stage 2 (clips with the streaming recurrence), one process or DDP.

Per optimizer step: `grad_accum_steps` micro-steps of `batch_size` samples per process (DDP averages gradients
over processes, gradient sync only on the last micro-step), gradient clipping, AdamW, the warm-up + cosine
schedule. Every `log_every` steps rank 0 appends the rank-averaged losses to <out>/log.jsonl; every
`save_every` steps (and at the end) a checkpoint is written. `resume=True` continues from the newest checkpoint
(from step 0 when a run was killed before its first save) with the same losses an uninterrupted run would have
produced (samples depend only on (seed, step, micro, rank, index); the weights, optimizer, scheduler and RNG are
restored).
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from strvos_core.errors import StrvosError
from strvos_core.training import checkpointing, distributed
from strvos_core.training.build import build_model, configure_trainable, set_train_mode, trainable_parts
from strvos_core.training.config import TrainConfig
from strvos_core.training.data import SyntheticPool
from strvos_core.training.forward import TrainingModel
from strvos_core.training.schedule import build_scheduler

LOG_NAME = "log.jsonl"


@dataclass
class TrainResult:
    steps_done: int
    last_checkpoint: Path | None
    log_path: Path
    history: list[dict]  # this process's log records of the steps run now (rank 0 only; others empty)
    replicas_in_sync: bool


def _check_resumable(saved: TrainConfig, given: TrainConfig) -> None:
    """Everything but the `run` section (steps, saving, threads) must match the run being resumed."""
    a, b = saved.to_dict(), given.to_dict()
    differing = sorted(k for k in a if k != "run" and a[k] != b[k])
    if differing:
        raise StrvosError(f"--resume: the config differs from the one the run started with in {differing}")


def _truncate_log(path: Path, step: int) -> None:
    """Drop records past `step` (written after the checkpoint we resume from). Written beside and renamed over
    the log: a kill in the middle leaves the old log or the new one, never a truncated one."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    partial = path.with_name(path.name + ".tmp")
    with partial.open("w") as handle:
        handle.write("".join(line + "\n" for line in kept))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def train(config: TrainConfig, out_dir: str | Path, resume: bool = False, stop_after: int | None = None,
          progress: bool = True, max_seconds: float | None = None) -> TrainResult:
    """Run (or continue) training into `out_dir`; `stop_after` ends early (with a checkpoint) after that step,
    `max_seconds` after the first step that ends past that much wall time (a lent GPU's time box)."""
    out_dir = Path(out_dir)
    ctx = distributed.setup(config.run.device)
    try:
        return _train(ctx, config, out_dir, resume, stop_after, progress, max_seconds)
    finally:
        distributed.teardown(ctx)


def _train(ctx, config: TrainConfig, out_dir: Path, resume: bool, stop_after: int | None,
           progress: bool, max_seconds: float | None = None) -> TrainResult:
    started = time.perf_counter()
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    previous = checkpointing.list_checkpoints(out_dir) if resume else []
    if resume and not previous and ctx.is_main:
        # killed before its first save: nothing to continue from, so the run starts again (what the user who
        # typed --resume after a crash wants); whatever the killed run wrote is overwritten below
        print(f"strvos train: --resume: no checkpoint under {out_dir / 'checkpoints'} yet; starting from step 0",
              file=sys.stderr, flush=True)
    if not resume and checkpointing.list_checkpoints(out_dir):
        raise StrvosError(f"{out_dir} already holds checkpoints; pass --resume to continue or choose another --out")
    if previous:
        _check_resumable(checkpointing.load_train_config(previous[-1]), config)

    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    model.to(ctx.device)
    set_train_mode(model)
    module = TrainingModel(model, config.loss)  # may hold training-only heads (TrainingModel.training_heads)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameter_groups(model, module, config), lr=config.optim.lr,
                                  betas=tuple(config.optim.betas), weight_decay=config.optim.weight_decay)
    scheduler = build_scheduler(optimizer, config.run.steps, config.optim.warmup_ratio,
                                config.optim.warmup_start_factor)
    log_path = out_dir / LOG_NAME
    start = 0
    if previous:
        start = checkpointing.load_state(ctx, previous[-1], model, optimizer, scheduler, module.training_heads)
        if ctx.is_main:
            _truncate_log(log_path, start)
    else:
        torch.manual_seed(config.model.seed * 1000 + ctx.rank + 1)
        if ctx.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))
            log_path.write_text("")
    distributed.barrier(ctx)

    runner = module
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                                         find_unused_parameters=True)
    pool = SyntheticPool(config.data)
    end = config.run.steps if stop_after is None else min(config.run.steps, stop_after)
    history: list[dict] = []
    last_checkpoint = previous[-1] if previous else None
    in_sync = True
    bar = _progress(range(start, end), progress and ctx.is_main, start, config.run.steps)
    for step in bar:
        began = time.perf_counter()
        sums = {"loss": 0.0, "lm": 0.0, "bce": 0.0, "dice": 0.0}
        accum = config.optim.grad_accum_steps
        for micro in range(accum):
            samples = [pool.sample(step, micro, ctx.rank, i) for i in range(config.data.batch_size)]
            sync = contextlib.nullcontext() if micro == accum - 1 or not ctx.distributed else runner.no_sync()
            with sync:
                terms = runner(samples)
                (terms["loss"] / accum).backward()
            for key, value in terms.items():  # "click" too when click prompts are trained
                sums[key] = sums.get(key, 0.0) + float(value.detach()) / accum
        grad_norm = torch.nn.utils.clip_grad_norm_(params, config.optim.grad_clip or float("inf"))
        if not torch.isfinite(grad_norm):
            raise StrvosError(f"step {step + 1}: the gradient norm is {float(grad_norm)}; lower optim.lr")
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        record = {"step": done, "lr": lr, **distributed.mean_over_ranks(ctx, sums),
                  "grad_norm": float(grad_norm), "seconds": time.perf_counter() - began}
        if ctx.is_main:
            history.append(record)
            if done % config.run.log_every == 0 or done == end:
                with log_path.open("a") as log:
                    log.write(json.dumps(record) + "\n")
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
        out_of_time = max_seconds is not None and distributed.mean_over_ranks(
            ctx, {"late": float(time.perf_counter() - started > max_seconds)})["late"] > 0
        if done % config.run.save_every == 0 or done == end or out_of_time:
            in_sync = distributed.replicas_in_sync(ctx, params)
            if not in_sync:
                raise StrvosError(f"step {done}: the DDP replicas' parameters differ")
            last_checkpoint = checkpointing.save(ctx, out_dir, done, model, model.tokenizer, optimizer, scheduler,
                                                 config, in_sync, config.run.keep_checkpoints, module.training_heads)
        if out_of_time:
            end = done
            break
    return TrainResult(max(end, start), last_checkpoint, log_path, history, in_sync)


def parameter_groups(model, module: torch.nn.Module, config: TrainConfig) -> list[dict]:
    """AdamW groups: one per part named in `optim.lr_scales` (lr times its factor), one for every other trainable
    parameter (training heads included). A single group when no scale is set, as before."""
    parts = trainable_parts(model, config.trainable)
    groups, taken = [], set()
    for name, factor in sorted(config.optim.lr_scales.items()):
        if name not in parts:  # a part this model does not have (motion_encoder)
            continue
        chosen = [p for p in parts[name].parameters() if p.requires_grad and id(p) not in taken]
        taken.update(id(p) for p in chosen)
        if chosen:
            groups.append({"params": chosen, "lr": config.optim.lr * factor})
    rest = [p for p in module.parameters() if p.requires_grad and id(p) not in taken]
    return [{"params": rest}, *groups] if rest else groups


def _progress(steps: range, enabled: bool, start: int, total: int):
    if not enabled:
        return steps
    from tqdm import tqdm

    return tqdm(steps, initial=start, total=total, desc="train", unit="step", dynamic_ncols=True)
