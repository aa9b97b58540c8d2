"""Model, tokenizer and trainable parameters for a training run, from the config's `model`/`trainable`/`lora`."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from strvos_core.config import StreamingRVOSConfig, preset
from strvos_core.errors import StrvosError
from strvos_core.training.attention_init import mimetic_attention_init
from strvos_core.training.config import LoraSection, ModelSection, TrainableSection
from strvos_core.training.lora import apply_lora
from strvos_core.training.position_init import init_vision_positions


def load_tokenizer(spec: str):
    """"synthetic" (trained on the synthetic vocabulary), "tiny" (the bundled test tokenizer) or a directory."""
    if spec == "synthetic":
        from strvos_core.tokenization import build_synthetic_tokenizer

        return build_synthetic_tokenizer()
    if spec == "tiny":
        from strvos_core.checkpoint import load_tiny_tokenizer

        return load_tiny_tokenizer()
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise StrvosError(f"tokenizer {spec!r} is neither 'synthetic', 'tiny' nor a tokenizer directory")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:
        raise StrvosError(f"cannot load the tokenizer in {path}: {type(exc).__name__}: {exc}") from None


def _merge(base: dict, overrides: dict, where: str = "model.overrides") -> dict:
    out = dict(base)
    for key, value in overrides.items():
        if key not in out:
            raise StrvosError(f"{where}: unknown model config field {key!r}; known: {sorted(out)}")
        if isinstance(out[key], dict) and out[key]:  # a config section; an empty dict is a free mapping
            if not isinstance(value, dict):
                raise StrvosError(f"{where}.{key} must be a mapping")
            out[key] = _merge(out[key], value, f"{where}.{key}")
        else:
            out[key] = value
    return out


def model_config(section: ModelSection, vocab_size: int) -> StreamingRVOSConfig:
    """The preset with the overrides applied and the vocabulary sized to the tokenizer."""
    data = _merge(preset(section.preset).to_dict(), section.overrides)
    data["language"]["vocab_size"] = vocab_size
    return StreamingRVOSConfig.from_dict(data)


def build_model(section: ModelSection):
    """A fresh model (seeded random init, or the `init` export) with its tokenizer attached. The embedding and
    prompt re-draws apply to either (a stage may start from an export whose SAM 2 alone was trained); the decoder's
    mimetic init only to a random build (an export's decoder is kept)."""
    from strvos_core.checkpoint import load_model
    from strvos_core.modeling.streamingrvos import StreamingRVOSModel

    torch.manual_seed(section.seed)
    if section.init:
        if section.decoder_attention_init is not None:
            raise StrvosError("model.decoder_attention_init re-draws a random decoder; with model.init the export's "
                              "trained decoder is kept: drop one of them")
        if section.vision_position_init is not None:
            raise StrvosError("model.vision_position_init re-draws a random ViT's position embeddings; with model.init "
                              "the export's learned ones are kept: drop one of them")
        model = load_model(section.init)
        tokenizer = model.tokenizer
    else:
        tokenizer = load_tokenizer(section.tokenizer)
        model = StreamingRVOSModel(model_config(section, len(tokenizer)))
    if section.embedding_std is not None:
        with torch.no_grad():
            model.language_model.model.embed_tokens.weight.normal_(0.0, section.embedding_std)
    if section.prompt_std is not None:
        with torch.no_grad():
            model.text_hidden_fcs[-2].weight.normal_(0.0, section.prompt_std)
    if section.vision_position_init is not None:
        trunk = model.config.vision.trunk
        if trunk == "conv":
            raise StrvosError("model.vision_position_init starts a ViT's position embeddings; this model's vision "
                              "trunk is 'conv', which has none")
        init_vision_positions(model.vision_model.vit if trunk == "vit+conv" else model.vision_model,
                              section.vision_position_init)
    if section.decoder_attention_init is not None:
        mimetic_attention_init(model.grounding_encoder.sam2_model.sam_mask_decoder, section.decoder_attention_init)
    if section.grounding_init:
        from strvos_core.training.export import load_grounding

        load_grounding(model, section.grounding_init)
    if section.vision_init:
        from strvos_core.training.export import load_vision

        load_vision(model, section.vision_init)
    if section.motion_input and not model.config.vision.motion_input:
        add_motion_encoder(model)
    if section.motion_init:
        from strvos_core.training.export import load_motion_encoder

        load_motion_encoder(model, section.motion_init)
    if section.attention_click and not model.config.grounding.attention_click:
        add_attention_click(model)
    if section.object_score_gate:
        model.config.grounding.object_score_gate = True  # inference only: training decodes ungated (predict_mask)
    model.attach_tokenizer(tokenizer)
    return model


def add_motion_encoder(model) -> None:
    """Give a model the motion encoder (vision.motion_input), its output projection zero: the model computes exactly
    what it did until training moves it (the encoder's own weights are seeded by `model.seed`)."""
    from strvos_core.modeling.vision import build_motion_encoder

    if model.config.vision.motion_input:
        raise StrvosError("the model already reads the previous frame (vision.motion_input)")
    model.config.vision.motion_input = True
    encoder = build_motion_encoder(model.config.vision, model.config.downsample_ratio)
    with torch.no_grad():
        encoder.project.weight.zero_()
        encoder.project.bias.zero_()
    model.motion_encoder = encoder.to(model.device, model.dtype)


def add_attention_click(model) -> None:
    """Switch on grounding.attention_click (the config checks that the model reads one whole-frame tile)."""
    data = model.config.to_dict()
    data["grounding"]["attention_click"] = True
    StreamingRVOSConfig.from_dict(data)  # refuses a tiled model before anything changes
    model.config.grounding.attention_click = True
    model.language_model.set_attn_implementation("eager")  # the [SEG] row's attention weights are read


def trainable_parts(model: nn.Module, trainable: TrainableSection) -> dict[str, nn.Module]:
    """Config name -> the module it switches (LLM handled separately: frozen / LoRA / full)."""
    sam = model.grounding_encoder.sam2_model
    parts = {
        "vision": model.vision_model,
        "mlp1": model.mlp1,
        "text_hidden_fcs": model.text_hidden_fcs,
        "sam2_image_encoder": sam.image_encoder,
        "sam2_mask_decoder": sam.sam_mask_decoder,
        "sam2_prompt_encoder": sam.sam_prompt_encoder,
    }
    if model.motion_encoder is not None:
        parts["motion_encoder"] = model.motion_encoder
    return parts


def configure_trainable(model: nn.Module, trainable: TrainableSection, lora: LoraSection) -> int:
    """Freeze everything, then unfreeze per config; wraps the LLM's linear layers with LoRA when asked.
    Returns the number of trainable parameters (StrvosError when there are none)."""
    model.requires_grad_(False)
    for name, module in trainable_parts(model, trainable).items():
        module.requires_grad_(getattr(trainable, name) == "full")
    llm = model.language_model
    if trainable.llm == "full":
        llm.requires_grad_(True)
    elif trainable.llm == "lora":
        if apply_lora(llm.model, lora.targets, lora.rank, lora.alpha, lora.dropout) == 0:
            raise StrvosError(f"lora.targets {list(lora.targets)} match no linear layer of the language model")
    if trainable.embeddings == "full":
        llm.get_input_embeddings().requires_grad_(True)
    if trainable.embeddings in ("full", "output"):
        llm.get_output_embeddings().requires_grad_(True)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if count == 0:
        raise StrvosError("training config: every part is frozen; nothing would be trained")
    return count


def set_train_mode(model: nn.Module) -> None:
    """Frozen parts behave as at inference (eval); only LoRA dropout is live (trained parts have no dropout)."""
    from strvos_core.training.lora import LoRALinear

    model.eval()
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.train()
