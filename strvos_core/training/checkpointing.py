"""Training checkpoints: everything needed to continue a run bit for bit, and to export it.

    <out>/checkpoints/step_000100/
        model.safetensors      the whole model in StreamingRVOSModel keys (LoRA kept as lora_A/lora_B)
        model_config.json      StreamingRVOSConfig.to_dict()
        lora.json              {"rank", "alpha", "dropout", "targets"} or null (no LoRA)
        train_config.json      the TrainConfig of the run
        optimizer.pt           {"optimizer": ..., "scheduler": ...}
        trainer_state.json     {"step": optimizer steps done, "world_size", "replicas_in_sync"}
        rng_rank<r>.pt         each rank's torch RNG state (LoRA dropout, point sampling)
        tokenizer.json, tokenizer_config.json
A directory appears under its final name only once complete (written as <name>.tmp, then renamed).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from strvos_core.config import StreamingRVOSConfig
from strvos_core.errors import StrvosError
from strvos_core.training.config import LoraSection, TrainConfig
from strvos_core.training.distributed import DistContext, barrier
from strvos_core.training.lora import apply_lora, has_lora

PREFIX = "step_"


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:06d}"


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def save(ctx: DistContext, out_dir: Path, step: int, model, tokenizer, optimizer, scheduler,
         config: TrainConfig, replicas_in_sync: bool, keep: int, head: torch.nn.Module | None = None) -> Path:
    """Collective: every rank calls it (each writes its RNG state; rank 0 writes the rest)."""
    final = out_dir / "checkpoints" / checkpoint_name(step)
    tmp = final.with_name(final.name + ".tmp")
    if ctx.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(ctx)
    rng = {"cpu": torch.get_rng_state()}
    if ctx.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(ctx.device)
    torch.save(rng, tmp / f"rng_rank{ctx.rank}.pt")
    barrier(ctx)
    if ctx.is_main:
        from safetensors.torch import save_file

        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "model_config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
        lora = config.lora.__dict__ if has_lora(model) else None
        (tmp / "lora.json").write_text(json.dumps(lora and {**lora, "targets": list(lora["targets"])}))
        (tmp / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp / "optimizer.pt")
        if head is not None:  # training-only head: resumed with the run, never exported
            torch.save(head.state_dict(), tmp / "training_head.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(
            {"step": step, "world_size": ctx.world_size, "replicas_in_sync": replicas_in_sync}, indent=2))
        tokenizer.save_pretrained(str(tmp))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in list_checkpoints(out_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    barrier(ctx)
    return final


def _require(directory: Path, name: str) -> Path:
    path = directory / name
    if not path.exists():
        raise StrvosError(f"{directory} is not a training checkpoint: {name} is missing")
    return path


def load_model(directory: str | Path):
    """The model of a training checkpoint (LoRA layers included, unmerged) with its tokenizer attached."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from strvos_core.modeling.streamingrvos import StreamingRVOSModel

    directory = Path(directory)
    if not directory.is_dir():
        raise StrvosError(f"training checkpoint {directory} does not exist (or is not a directory)")
    config = StreamingRVOSConfig.from_dict(json.loads(_require(directory, "model_config.json").read_text()))
    lora = json.loads(_require(directory, "lora.json").read_text())
    state = load_file(str(_require(directory, "model.safetensors")))
    model = StreamingRVOSModel(config)
    if lora:
        section = LoraSection(**{**lora, "targets": tuple(lora["targets"])})
        apply_lora(model.language_model.model, section.targets, section.rank, section.alpha, section.dropout)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise StrvosError(f"training checkpoint {directory} does not match its model_config.json/lora.json: "
                          f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
    except Exception as exc:
        raise StrvosError(f"cannot load the tokenizer in {directory}: {type(exc).__name__}: {exc}") from None
    model.attach_tokenizer(tokenizer)
    return model.eval()


def load_train_config(directory: Path) -> TrainConfig:
    return TrainConfig.from_dict(json.loads(_require(directory, "train_config.json").read_text()))


def _training_heads_state(directory: Path, head: torch.nn.Module, device) -> dict:
    """training_head.pt; checkpoints written before the heads became one ModuleDict hold the word head alone."""
    state = torch.load(_require(directory, "training_head.pt"), map_location=device)
    if set(state) == {"weight", "bias"} and isinstance(head, torch.nn.ModuleDict) and list(head) == ["word_head"]:
        state = {f"word_head.{key}": value for key, value in state.items()}
    return state


def load_state(ctx: DistContext, directory: Path, model, optimizer, scheduler,
               head: torch.nn.Module | None = None) -> int:
    """Restore weights, optimizer, scheduler and this rank's RNG; returns the optimizer steps already done."""
    from safetensors.torch import load_file

    state = load_file(str(_require(directory, "model.safetensors")), device=str(ctx.device))
    model.load_state_dict(state, strict=True)
    if head is not None:
        head.load_state_dict(_training_heads_state(directory, head, ctx.device))
    trainer_state = json.loads(_require(directory, "trainer_state.json").read_text())
    if (directory / "optimizer.pt").exists():
        opt = torch.load(directory / "optimizer.pt", map_location=ctx.device, weights_only=False)
        optimizer.load_state_dict(opt["optimizer"])
        scheduler.load_state_dict(opt["scheduler"])
    else:  # a weights-only checkpoint (sent to a lent GPU without its moments): fresh AdamW moments, same schedule
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()"
            for _ in range(int(trainer_state["step"])):
                scheduler.step()
    if trainer_state["world_size"] != ctx.world_size:
        raise StrvosError(f"checkpoint {directory} was written by {trainer_state['world_size']} processes; resuming "
                          f"with {ctx.world_size} would draw different samples (use the same --nproc_per_node)")
    rng = torch.load(_require(directory, f"rng_rank{ctx.rank}.pt"), weights_only=False)
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and ctx.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], ctx.device)
    return int(trainer_state["step"])
