"""Training checkpoint -> HF-format export (LoRA merged), readable by `strvos_core.checkpoint.load_model`."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import torch

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


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, dtype: str | None = None,
                      mask_refine_radius: int | None = None) -> Path:
    """`dtype` (e.g. "float16") is the stored precision of the weights; None keeps the training dtype.
    `mask_refine_radius` (an inference setting, not trained) is written into the export's config; None keeps it."""
    from strvos_core.checkpoint import save_checkpoint

    model = checkpointing.load_model(resolve_checkpoint(checkpoint))
    if mask_refine_radius is not None:  # replace() validates it; the model's own config section is then set
        checked = dataclasses.replace(model.config.grounding, mask_refine_radius=mask_refine_radius)
        model.config.grounding.mask_refine_radius = checked.mask_refine_radius
    merge_lora(model)
    return save_checkpoint(model, model.tokenizer, out_dir, dtype)


GROUNDING_PREFIX = "grounding_encoder."


def export_grounding(checkpoint: str | Path, out_file: str | Path, dtype: str | None = None) -> Path:
    """SAM 2 alone (the `grounding_encoder.*` weights) of a training checkpoint -> one safetensors file, with the
    grounding config as metadata: what a stage-0 run hands the next stage (`model.grounding_init`), small enough to
    keep in the repository (the LLM and ViT of a stage-0 run are untrained and rebuilt from the seed)."""
    model = checkpointing.load_model(resolve_checkpoint(checkpoint))
    cast = getattr(torch, dtype) if dtype else None
    return _save_part(model, (GROUNDING_PREFIX,), "grounding", _grounding_signature(model), out_file,
                      lambda v: v.to(cast) if cast is not None and v.is_floating_point() else v)


def _save_part(model, prefixes: tuple[str, ...], meta_key: str, signature, out_file: str | Path,
               convert: Callable[[torch.Tensor], torch.Tensor]) -> Path:
    """One part's weights (`prefixes`, each passed through `convert`) -> a safetensors file whose metadata[`meta_key`]
    is `signature` (what `_load_part` checks), written whole or not at all: a reader (a stage starting while a probe
    saves) never sees half a file."""
    from safetensors.torch import save_file

    state = {k: convert(v.detach()).contiguous() for k, v in model.state_dict().items() if k.startswith(prefixes)}
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_file.with_name(out_file.name + ".tmp")
    save_file(state, str(temporary), metadata={meta_key: json.dumps(signature)})
    temporary.replace(out_file)
    return out_file


def _grounding_signature(model) -> dict:
    """What saved SAM 2 weights must match: SAM 2's build config. `attention_click` chooses a prompt,
    `object_score_gate`, `mask_refine_radius`, `score_calibration` and `presence_gate` what is done with the output,
    not weights: they are left out, so files saved before the fields existed still match."""
    grounding = json.loads(json.dumps(model.config.grounding.__dict__))
    for inference_only in ("attention_click", "object_score_gate", "mask_refine_radius", "score_calibration",
                           "presence_gate"):
        grounding.pop(inference_only, None)
    return grounding


def load_grounding(model, path: str | Path) -> None:
    """Overwrite `model`'s SAM 2 with an `export_grounding` file (cast to the model's dtype); the SAM 2 configs
    must match."""
    _load_part(model, path, "model.grounding_init", "grounding", _grounding_signature(model), (GROUNDING_PREFIX,),
               "SAM 2")


VISION_PREFIXES = ("vision_model.", "mlp1.")


def _vision_signature(model) -> dict:
    """What a saved vision path must match: the vision config and the width mlp1 hands the LLM (motion_input only
    where on, so files saved before the field existed still match)."""
    vision = json.loads(json.dumps(model.config.vision.__dict__))
    if not vision.get("motion_input"):
        vision.pop("motion_input", None)
        vision.pop("motion_widths", None)
    return {"vision": vision,
            "downsample_ratio": model.config.downsample_ratio, "llm_hidden": model.config.language.hidden_size}


def save_vision(model, out_file: str | Path) -> Path:
    """The LLM's vision path (`vision_model.*` + `mlp1.*`, float32) -> one safetensors file with its config as
    metadata: what an attribute pre-training run (`training.attribute_probe --save`) hands stage 1
    (`model.vision_init`)."""
    return _save_part(model, VISION_PREFIXES, "vision", _vision_signature(model), out_file, torch.Tensor.float)


def load_vision(model, path: str | Path) -> None:
    """Overwrite `model`'s vision path with a `save_vision` file (cast to the model's dtype); configs must match."""
    _load_part(model, path, "model.vision_init", "vision", _vision_signature(model), VISION_PREFIXES, "vision path")


MOTION_PREFIXES = ("motion_encoder.",)


def _motion_signature(model) -> dict:
    """What a saved motion encoder must match: its widths and the grid and width it hands mlp1."""
    encoder = model.motion_encoder
    return {"motion_widths": list(model.config.vision.motion_widths), "side": encoder.side,
            "out_dim": encoder.project.out_channels}


def save_motion_encoder(model, out_file: str | Path) -> Path:
    """The motion encoder (`motion_encoder.*`, float32) -> one safetensors file with its shape as metadata: what a
    motion pre-training run (`training.motion_probe --save`) hands a stage's `model.motion_init`."""
    if model.motion_encoder is None:
        raise StrvosError("this model has no motion encoder (vision.motion_input)")
    return _save_part(model, MOTION_PREFIXES, "motion", _motion_signature(model), out_file, torch.Tensor.float)


def load_motion_encoder(model, path: str | Path) -> None:
    """Overwrite `model`'s motion encoder with a `save_motion_encoder` file, its output projection zeroed: the
    model computes what it would without motion input until training grows the projection to hand the LLM the new
    features (the old projection was fitted to the old encoder's features)."""
    if model.motion_encoder is None:
        raise StrvosError("model.motion_init: the model has no motion encoder (vision.motion_input; an init export "
                          "without one takes model.motion_input: true)")
    _load_part(model, path, "model.motion_init", "motion", _motion_signature(model), MOTION_PREFIXES,
               "motion encoder")
    with torch.no_grad():
        model.motion_encoder.project.weight.zero_()
        model.motion_encoder.project.bias.zero_()


def _load_part(model, path: str | Path, option: str, meta_key: str, signature, prefixes: tuple[str, ...],
               part: str) -> None:
    """One part's weights (`prefixes`) from a safetensors file whose metadata[`meta_key`] must equal `signature`,
    over `model` (cast to its dtypes); `option` (the config field) and `part` name it in errors."""
    from safetensors import safe_open

    path = Path(path).expanduser()
    if not path.is_file():
        raise StrvosError(f"{option}: {path} does not exist")
    try:
        with safe_open(str(path), "pt") as handle:
            saved = json.loads((handle.metadata() or {}).get(meta_key, "null"))
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # a truncated or foreign file: say which and why
        raise StrvosError(f"{option}: cannot read {path}: {type(exc).__name__}: {exc}") from None
    if saved != signature:
        raise StrvosError(f"{option}: {path} holds {part} of config {saved}, the model's is {signature}")
    own = {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}
    if set(state) != set(own):
        raise StrvosError(f"{option}: {path} does not hold this model's {part} weights")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
