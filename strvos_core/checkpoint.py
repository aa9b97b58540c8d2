"""Model loading: `random:<preset>[:<answer>]` builds, the reference HF export, and saving in that format.

Reference export layout (hf/convert_to_hf.py): config.json (Sa2VAChatConfig: vision_config, llm_config, ...),
model.safetensors (or sharded + model.safetensors.index.json, or pytorch_model.bin), tokenizer files.
Key prefixes: vision_model. (InternViT, fused attn.qkv), mlp1., language_model., grounding_encoder.sam2_model.,
text_hidden_fcs. What the reference hard-wires (SAM 2.1 hiera-L at 1024) may be overridden by an optional
"strvos": {"sam2_variant": ..., "sam2_image_size": ...} entry in config.json; absent = the released values.
"""
from __future__ import annotations

from pathlib import Path

import torch

from strvos_core.config import (
    PRESETS,
    preset,
)
from strvos_core.errors import StrvosError

TOKENIZER_DIR = Path(__file__).resolve().parent / "assets" / "tiny_tokenizer"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
RANDOM_SEED = 0


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise StrvosError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    return DTYPES[dtype]


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise StrvosError(f"invalid device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise StrvosError(f"device {device!r} requested but CUDA is not available")
    return resolved


def load_tiny_tokenizer():
    """The bundled byte-level BPE tokenizer with the reference's special tokens (see assets/make_tiny_tokenizer.py)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))


def build_random_model(preset_name: str, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32",
                       answer: str = "seg", seed: int = RANDOM_SEED):
    """A preset with deterministic random weights and the tiny tokenizer; `answer` steers the LLM
    ("seg", "none", "double" as in modeling/steering.py, or "raw" for untouched random weights)."""
    from strvos_core.modeling.steering import ANSWERS, steer_answer
    from strvos_core.modeling.streamingrvos import StreamingRVOSModel

    if answer not in (*ANSWERS, "raw"):
        raise StrvosError(f"unknown random-model answer {answer!r}; choose one of {[*ANSWERS, 'raw']}")
    config = preset(preset_name)
    tokenizer = load_tiny_tokenizer()
    config.language.vocab_size = max(config.language.vocab_size, len(tokenizer))
    torch.manual_seed(seed)
    model = StreamingRVOSModel(config)
    if answer != "raw":
        steer_answer(model.language_model, tokenizer, answer)
    model.attach_tokenizer(tokenizer)
    return model.to(resolve_device(device), resolve_dtype(dtype)).eval()


def load_model(spec: str | Path, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32"):
    """`random:<preset>[:<answer>]`, a local export directory, or a hub id (downloaded by huggingface_hub)."""
    text = str(spec)
    if text.startswith("random:"):
        parts = text.split(":")
        if len(parts) not in (2, 3) or parts[1] not in PRESETS:
            raise StrvosError(f"model {text!r}: expected random:<preset>[:<answer>] with preset in {sorted(PRESETS)}")
        return build_random_model(parts[1], device, dtype, parts[2] if len(parts) == 3 else "seg")
    raise StrvosError(f"model {text!r}: loading checkpoints is not implemented yet")
