"""Model loading: `default` (the shipped tiny model), `random:<preset>[:<answer>]` builds, the reference HF
export, and saving in that format.

Reference export layout (hf/convert_to_hf.py): config.json (Sa2VAChatConfig: vision_config, llm_config, ...),
model.safetensors (or sharded + model.safetensors.index.json, or pytorch_model.bin), tokenizer files.
Key prefixes: vision_model. (InternViT, fused attn.qkv), mlp1., language_model., grounding_encoder.sam2_model.,
text_hidden_fcs. What the reference hard-wires (SAM 2.1 hiera-L at 1024) may be overridden by an optional
"strvos": {"sam2_variant": ..., "sam2_image_size": ...} entry in config.json; absent = the released values.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from strvos_core.config import (
    PRESETS,
    GroundingConfig,
    LanguageConfig,
    StreamingRVOSConfig,
    VisionConfig,
    preset,
)
from strvos_core.errors import StrvosError

TOKENIZER_DIR = Path(__file__).resolve().parent / "assets" / "tiny_tokenizer"
# The model spec `default`: the trained tiny model shipped inside the installed package (scripts/train_tiny.sh
# writes it), so a node or a CLI runs a real model without being told where one is.
DEFAULT_MODEL_SPEC = "default"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "models" / "strvos-synthetic-tiny"
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


def place_for_inference(model, device: str | torch.device, dtype: str | torch.dtype):
    """Move and cast a built StreamingRVOSModel, in eval mode. In half precision SAM 2's LayerNorm weights stay
    float32 (GroundingModel.keep_norms_float32): without that a bfloat16 or float16 run fails on the CPU."""
    model = model.to(resolve_device(device), resolve_dtype(dtype))
    if model.dtype != torch.float32:
        model.grounding_encoder.keep_norms_float32()
    return model.eval()


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
    return place_for_inference(model, device, dtype)


def load_model(spec: str | Path, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32"):
    """`default` (the shipped model), `random:<preset>[:<answer>]`, a local export directory, or a hub id
    (downloaded by huggingface_hub). A local folder named "default" is reached as ./default."""
    text = str(spec)
    if text == DEFAULT_MODEL_SPEC and not isinstance(spec, Path):
        return load_export(default_model_dir(), device, dtype)
    if text.startswith("random:"):
        parts = text.split(":")
        if len(parts) not in (2, 3) or parts[1] not in PRESETS:
            raise StrvosError(f"model {text!r}: expected random:<preset>[:<answer>] with preset in {sorted(PRESETS)}")
        return build_random_model(parts[1], device, dtype, parts[2] if len(parts) == 3 else "seg")
    return load_export(_local_export_dir(text), device, dtype)


def default_model_dir() -> Path:
    """DEFAULT_MODEL_DIR if it holds an export; otherwise say why and what to use instead."""
    directory = DEFAULT_MODEL_DIR
    if not (directory / "config.json").is_file():
        raise StrvosError(
            f"model 'default' is the trained tiny model shipped in {directory}, but that folder has no config.json "
            f"(the model was not trained in this checkout): train and ship it with `bash scripts/train_tiny.sh` "
            f"(about an hour on 2 CPU cores), or use model 'random:tiny' (the real architecture with random weights)")
    return directory


# -- reference export <-> our modules ---------------------------------------------------------------------------
_VIT_RENAMES = [
    ("embeddings.class_embedding", "embeddings.cls_token"),
    ("embeddings.patch_embedding.", "embeddings.patch_embeddings.projection."),
    ("embeddings.position_embedding", "embeddings.position_embeddings"),
    (".attn.proj.", ".attention.projection_layer."),
    (".attn.q_norm.", ".attention.q_norm."),
    (".attn.k_norm.", ".attention.k_norm."),
    (".norm1.", ".layernorm_before."),
    (".norm2.", ".layernorm_after."),
    (".ls1", ".lambda_1"),
    (".ls2", ".lambda_2"),
    ("encoder.layers.", "encoder.layer."),
]


def reference_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reference export keys -> StreamingRVOSModel keys (InternViT renamed, fused qkv split, SAM 2 g_weight)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("vision_model."):
            new = key
            for old, repl in _VIT_RENAMES:
                new = new.replace(old, repl)
            if ".attn.qkv." in new:
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                    out[new.replace(".attn.qkv.", f".attention.{name}.")] = part
                continue
            out[new] = value
        elif key.startswith("grounding_encoder.") and key.endswith(".g_weight"):
            out[key[: -len("g_weight")] + "gamma"] = value
        else:
            out[key] = value
    return out


def ours_to_reference(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of reference_to_ours (fuses q/k/v back into attn.qkv)."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith("vision_model."):
            new = key
            for old, repl in reversed(_VIT_RENAMES):
                new = new.replace(repl, old)
            for name in ("q_proj", "k_proj", "v_proj"):
                marker = f".attention.{name}."
                if marker in new:
                    fused.setdefault(new.replace(marker, ".attn.qkv."), {})[name] = value
                    break
            else:
                out[new] = value
        elif key.startswith("grounding_encoder.") and key.endswith(".gamma"):
            out[key[: -len("gamma")] + "g_weight"] = value
        else:
            out[key] = value
    for key, parts in fused.items():
        out[key] = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]], dim=0)
    return out


# -- config.json -----------------------------------------------------------------------------------------------
def config_from_reference(data: dict) -> StreamingRVOSConfig:
    """Sa2VAChatConfig JSON (as convert_to_hf.py writes it) -> StreamingRVOSConfig."""
    try:
        vision, llm = data["vision_config"], data["llm_config"]
    except KeyError as exc:
        raise StrvosError(f"config.json lacks {exc.args[0]!r} (not a Sa2VA/StreamingRVOS export)") from None
    architecture = (llm.get("architectures") or ["Qwen2ForCausalLM"])[0]
    if architecture != "Qwen2ForCausalLM":
        raise StrvosError(f"config.json llm_config architecture {architecture!r} is not supported (Qwen2ForCausalLM)")
    extension = data.get("strvos", {})
    try:
        return StreamingRVOSConfig(
            vision=VisionConfig(
                hidden_size=vision["hidden_size"], num_hidden_layers=vision["num_hidden_layers"],
                num_attention_heads=vision["num_attention_heads"], intermediate_size=vision["intermediate_size"],
                image_size=vision.get("image_size", 448), patch_size=vision.get("patch_size", 14),
                qkv_bias=vision.get("qkv_bias", False), qk_normalization=vision.get("qk_normalization", True),
                norm_type=vision.get("norm_type", "rms_norm"), layer_norm_eps=vision.get("layer_norm_eps", 1e-6),
                hidden_act=vision.get("hidden_act", "gelu"),
                initializer_factor=vision.get("initializer_factor", 0.1),
                trunk=extension.get("vision_trunk", "internvit"),
                conv_widths=extension.get("vision_conv_widths", VisionConfig.conv_widths),
                motion_input=bool(extension.get("vision_motion_input", False)),
                motion_widths=extension.get("vision_motion_widths", VisionConfig.motion_widths),
            ),
            language=LanguageConfig(
                vocab_size=llm["vocab_size"], hidden_size=llm["hidden_size"],
                intermediate_size=llm["intermediate_size"], num_hidden_layers=llm["num_hidden_layers"],
                num_attention_heads=llm["num_attention_heads"],
                num_key_value_heads=llm.get("num_key_value_heads", llm["num_attention_heads"]),
                max_position_embeddings=llm.get("max_position_embeddings", 32768),
                rope_theta=_rope_theta(llm), rms_norm_eps=llm.get("rms_norm_eps", 1e-6),
                hidden_act=llm.get("hidden_act", "silu"),
                tie_word_embeddings=llm.get("tie_word_embeddings", False),
            ),
            grounding=GroundingConfig(
                sam2_variant=extension.get("sam2_variant", "hiera-large"),
                image_size=extension.get("sam2_image_size", 1024),
                sam2_overrides=extension.get("sam2_overrides", {}),
                attention_click=bool(extension.get("sam2_attention_click", False)),
                object_score_gate=bool(extension.get("sam2_object_score_gate", False)),
                mask_refine_radius=int(extension.get("sam2_mask_refine_radius", 0)),
                score_calibration=extension.get("sam2_score_calibration"),
                presence_gate=float(extension.get("sam2_presence_gate", 0.0)),
            ),
            downsample_ratio=data.get("downsample_ratio", 0.5),
            ps_version=data.get("ps_version", "v2"),
            select_layer=data.get("select_layer", -1),
            # the reference's preparing_for_generation hard-wires 1..12 tiles, thumbnail on, whatever config says
            min_dynamic_patch=extension.get("min_dynamic_patch", 1),
            max_dynamic_patch=extension.get("max_dynamic_patch", 12),
            use_thumbnail=extension.get("use_thumbnail", True),
            template=(data.get("template") or "qwen_chat").replace("-", "_"),
            max_new_tokens=extension.get("max_new_tokens", StreamingRVOSConfig.max_new_tokens),
        )
    except KeyError as exc:
        raise StrvosError(f"config.json lacks the field {exc.args[0]!r}") from None


def _rope_theta(llm: dict) -> float:
    if "rope_theta" in llm:
        return float(llm["rope_theta"])
    params = llm.get("rope_parameters") or {}
    return float(params.get("rope_theta", 1000000.0))


def config_to_reference(config: StreamingRVOSConfig) -> dict:
    """StreamingRVOSConfig -> a Sa2VAChatConfig-shaped config.json, plus our "strvos" extension."""
    from strvos_core.modeling.language import qwen2_config

    v = config.vision
    llm = qwen2_config(config.language).to_dict()
    llm["architectures"] = ["Qwen2ForCausalLM"]
    llm["rope_theta"] = config.language.rope_theta
    return {
        "architectures": ["Sa2VAChatModel"],
        "model_type": "sa2va_chat",
        "vision_config": {
            # a conv trunk is ours alone: not an InternVisionModel that a reference loader could build
            "architectures": ["InternVisionModel" if v.trunk == "internvit" else "StrvosConvVisionTrunk"],
            "model_type": "intern_vit_6b" if v.trunk == "internvit" else "strvos_conv_trunk",
            "hidden_size": v.hidden_size, "num_hidden_layers": v.num_hidden_layers,
            "num_attention_heads": v.num_attention_heads, "intermediate_size": v.intermediate_size,
            "image_size": v.image_size, "patch_size": v.patch_size, "qkv_bias": v.qkv_bias,
            "qk_normalization": v.qk_normalization, "norm_type": v.norm_type, "layer_norm_eps": v.layer_norm_eps,
            "hidden_act": v.hidden_act, "initializer_factor": v.initializer_factor,
        },
        "llm_config": llm,
        "downsample_ratio": config.downsample_ratio, "force_image_size": v.image_size,
        "select_layer": config.select_layer, "ps_version": config.ps_version, "template": config.template,
        "dynamic_image_size": True, "use_thumbnail": config.use_thumbnail,
        "min_dynamic_patch": config.min_dynamic_patch, "max_dynamic_patch": config.max_dynamic_patch,
        "use_backbone_lora": 0, "use_llm_lora": 0, "pad2square": False, "tie_word_embeddings": False,
        "strvos": {
            "sam2_variant": config.grounding.sam2_variant, "sam2_image_size": config.grounding.image_size,
            "sam2_overrides": config.grounding.sam2_overrides,
            "sam2_attention_click": config.grounding.attention_click,
            "sam2_object_score_gate": config.grounding.object_score_gate,
            "sam2_mask_refine_radius": config.grounding.mask_refine_radius,
            "sam2_score_calibration": (list(config.grounding.score_calibration)
                                       if config.grounding.score_calibration is not None else None),
            "sam2_presence_gate": config.grounding.presence_gate,
            "max_new_tokens": config.max_new_tokens,
            # read back by config_from_reference (the top-level fields are ignored: the reference hard-wires them)
            "min_dynamic_patch": config.min_dynamic_patch, "max_dynamic_patch": config.max_dynamic_patch,
            "use_thumbnail": config.use_thumbnail,
            "vision_trunk": v.trunk, "vision_conv_widths": list(v.conv_widths),
            "vision_motion_input": v.motion_input, "vision_motion_widths": list(v.motion_widths),
        },
    }


# -- files -----------------------------------------------------------------------------------------------------
def _local_export_dir(spec: str) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise StrvosError(f"model path {path} is a file; expected an export directory with config.json")
        return path
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(spec))
        except Exception as exc:  # offline, unknown repo, no access: all end here with the reason
            raise StrvosError(f"model {spec!r} is not a local directory and could not be fetched from the hub: "
                              f"{type(exc).__name__}: {exc}") from None
    raise StrvosError(f"model path {spec!r} does not exist")


def read_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    """model.safetensors, a sharded safetensors index, or pytorch_model.bin (first found)."""
    from safetensors.torch import load_file

    single, index, legacy = (directory / "model.safetensors", directory / "model.safetensors.index.json",
                             directory / "pytorch_model.bin")
    try:
        if single.exists():
            return load_file(str(single))
        if index.exists():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                shard_path = directory / shard
                if not shard_path.exists():
                    raise StrvosError(f"checkpoint shard {shard_path} listed in {index.name} is missing")
                state.update(load_file(str(shard_path)))
            return state
        if legacy.exists():
            return torch.load(str(legacy), map_location="cpu", weights_only=True)
    except StrvosError:
        raise
    except Exception as exc:
        raise StrvosError(f"cannot read the weights in {directory}: {type(exc).__name__}: {exc}") from None
    raise StrvosError(f"{directory} has no model.safetensors, model.safetensors.index.json or pytorch_model.bin")


def load_tokenizer(directory: Path):
    """The export's tokenizer, of the class its tokenizer_config.json names.

    AutoTokenizer would first read the export's config.json to find the model type, and transformers does not
    know the reference's custom type `sa2va_chat`: it warned about it on every load. The class named in
    tokenizer_config.json is the one AutoTokenizer goes on to pick anyway; without a known one, AutoTokenizer
    decides (never running the export's remote code: its auto_map is ignored)."""
    from transformers import AutoTokenizer
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    try:
        name = json.loads((directory / "tokenizer_config.json").read_text()).get("tokenizer_class")
    except (OSError, ValueError):
        name = None
    tokenizer_class = tokenizer_class_from_name(name) if isinstance(name, str) else None
    if tokenizer_class is not None:
        return tokenizer_class.from_pretrained(str(directory))
    return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False)


def load_export(directory: Path, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32"):
    """Build the model described by config.json and load the reference-format weights into it, strictly."""
    from strvos_core.modeling.streamingrvos import StreamingRVOSModel

    config_path = directory / "config.json"
    if not config_path.exists():
        raise StrvosError(f"{directory} has no config.json")
    try:
        data = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StrvosError(f"{config_path} is not valid JSON: {exc}") from None
    config = config_from_reference(data)
    try:
        tokenizer = load_tokenizer(directory)
    except Exception as exc:
        raise StrvosError(f"cannot load the tokenizer in {directory}: {type(exc).__name__}: {exc}") from None
    state = reference_to_ours(read_state_dict(directory))
    model = StreamingRVOSModel(config)
    _check_keys(model, state, directory)
    model.load_state_dict(state, strict=True)
    model.attach_tokenizer(tokenizer)
    return place_for_inference(model, device, dtype)


def _check_keys(model, state: dict[str, torch.Tensor], directory: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing:
        raise StrvosError(f"checkpoint {directory} is missing {len(missing)} weights, e.g. {missing[:3]}")
    if unexpected:
        raise StrvosError(f"checkpoint {directory} has {len(unexpected)} unexpected weights, e.g. {unexpected[:3]}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise StrvosError(f"checkpoint {directory}: weight {key} has shape {tuple(tensor.shape)}, "
                              f"the model expects {tuple(expected[key].shape)}")


def save_checkpoint(model, tokenizer, directory: str | Path, dtype: str | torch.dtype | None = None) -> Path:
    """Write config.json, model.safetensors and the tokenizer in the reference export format.

    `dtype` stores the floating-point weights in another precision (float16 halves the file; the loader casts
    them to whatever dtype the model is loaded in)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config_to_reference(model.config), indent=2))
    store = resolve_dtype(dtype) if dtype is not None else None
    state = {k: (v.to(store) if store is not None and v.is_floating_point() else v).detach().to("cpu").contiguous()
             for k, v in ours_to_reference(model.state_dict()).items()}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(str(directory))
    return directory
