"""Training checkpoint -> HF-format export (LoRA merged), readable by `strvos_core.checkpoint.load_model`."""
from __future__ import annotations

from pathlib import Path

from strvos_core.errors import StrvosError
from strvos_core.training import checkpointing
from strvos_core.training.lora import merge_lora


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory as given, or a run directory's newest checkpoint."""
    path = Path(path).expanduser()
    if (path / "model_config.json").exists():
        return path
    found = checkpointing.list_checkpoints(path)
    if found:
        return found[-1]
    raise StrvosError(f"{path} is neither a training checkpoint nor a run directory with checkpoints/")


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, dtype: str | None = None) -> Path:
    """`dtype` (e.g. "float16") is the stored precision of the weights; None keeps the training dtype."""
    from strvos_core.checkpoint import save_checkpoint

    model = checkpointing.load_model(resolve_checkpoint(checkpoint))
    merge_lora(model)
    return save_checkpoint(model, model.tokenizer, out_dir, dtype)
