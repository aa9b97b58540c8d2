"""Produce the parity fixture by running the REFERENCE StreamingRVOS code on a tiny deterministic checkpoint.

Re-run (from the repository root):

    bash tools/parity/setup_reference_env.sh
    ~/.cache/strvos-ref/venv/bin/python tools/parity/make_reference_fixture.py --sam2-image-size 256   # -> .../sam256
    ~/.cache/strvos-ref/venv/bin/python tools/parity/make_reference_fixture.py --sam2-image-size 1024  # -> .../sam1024

It runs in the reference environment (transformers 4.42, torch 2.14 + torchvision), never in the project venv.
The reference model package is imported from $STRVOS_REF_HOME/pkg/sa2va_ref (exported, CUDA -> CPU patched, by
setup_reference_env.sh). The reference logic is not edited: its methods are wrapped to record intermediate values,
and SAM 2's hard-wired hiera-large image encoder is swapped for a hiera-tiny one built from the reference's own
Hiera/FpnNeck classes with the values of sam2's configs/sam2.1/sam2.1_hiera_t.yaml (the file's
`build_image_encoder_tiny` is not that: it keeps hiera-large's window_spec [8, 4, 16, 8], the yaml uses Hiera's
default [8, 4, 14, 7]). `--sam2-image-size` changes SAM 2's input size (1024 in the release) on the reference side
through the constructor argument and the DirectResize target, so a cheaper fixture can be made.

What is written (all small; nothing here is a checkpoint):
  config.json               Sa2VAChatConfig exactly as save_pretrained writes it
  tokenizer/                tiny byte-level BPE wrapped in Qwen2TokenizerFast, with the reference's special tokens
  frames/frame_XXX.png      the input video (RGB)
  checkpoint_layout.json    files save_pretrained writes, and every state-dict key -> shape (+ value fingerprint)
  weight_overrides.npz      the few steered rows that replace deterministic values (see `steer_generation`)
  expected.npz, meta.json   per-frame outputs of `predict_forward_token` and the settings that produced them
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
REF_HOME = Path(os.environ.get("STRVOS_REF_HOME", Path.home() / ".cache" / "strvos-ref"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REF_HOME / "pkg"))

import deterministic_weights as dw  # noqa: E402
from sa2va_ref import modeling_sa2va_chat as ref_modeling  # noqa: E402
from sa2va_ref import sam2 as ref_sam2  # noqa: E402
from sa2va_ref.configuration_sa2va_chat import Sa2VAChatConfig  # noqa: E402

PROMPT = "<image>\nPlease segment the red square."
MAX_NEW_TOKENS = 4
REFERENCE_SPECIAL_TOKENS = ["[SEG]", "<p>", "</p>", "<vp>", "</vp>", "<TIME_CONTEXT>", "<context>", "</context>"]
BASE_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>"]
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
TOKENIZER_CORPUS = [
    "Please segment the red square.", "Please segment the blue circle in this image.",
    "Sure, it is the object.", "Sure, the segmentation result is here.", "It is the red square.",
    "user", "assistant", "Can you segment the green object in this video?", "the red mug left of the laptop",
    "0123456789 , . ? ! : ; ( ) - \n",
]

# Frame layout: a red square moves right over a textured background, leaves the view, then comes back.
# 96x48 (aspect 2) gives a 2x1 tile grid + thumbnail = 3 tiles (768 image tokens), like a DAVIS frame.
FRAME_WIDTH, FRAME_HEIGHT = 96, 48
SQUARE_X = [4, 14, None, 24, 34, 44, 54, 64]     # None: no square in that frame
SQUARE_SIZE = 16
SEG_LOGIT_MARGIN = 6.0
PARITY_ATOL = 1e-4   # the tolerance the parity test uses for [SEG] hidden states


# ------------------------------------------------------------------------------------------------ inputs
def make_frames() -> list[np.ndarray]:
    """Deterministic RGB uint8 frames: smooth gradient + fixed noise texture, with or without a red square."""
    rng = np.random.default_rng(20260406)
    yy, xx = np.mgrid[0:FRAME_HEIGHT, 0:FRAME_WIDTH]
    base = np.stack([40 + xx, 60 + yy, 120 + (xx + yy) // 2], axis=-1).astype(np.int32)
    texture = rng.integers(-12, 13, size=base.shape)
    frames = []
    for t, x in enumerate(SQUARE_X):
        frame = np.clip(base + texture + 3 * t, 0, 255).astype(np.uint8)
        if x is not None:
            y = 14 + (t % 3) * 4
            frame[y:y + SQUARE_SIZE, x:x + SQUARE_SIZE] = (220, 20, 30)
        frames.append(frame)
    return frames


def build_tokenizer(out_dir: Path):
    """Tiny Qwen2-style tokenizer: byte-level BPE with Qwen2's pre-tokenizer, plus the reference's special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=360, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tokenizer.train_from_iterator(TOKENIZER_CORPUS * 4, trainer=trainer)

    wrapped = Qwen2TokenizerFast(tokenizer_object=tokenizer, bos_token=None, eos_token="<|im_end|>",
                                 pad_token="<|endoftext|>", unk_token=None, errors="replace",
                                 add_prefix_space=False, model_max_length=32768)
    wrapped.add_special_tokens({"additional_special_tokens": BASE_SPECIAL_TOKENS})
    # The reference adds its tokens like this at training time (datasets/*: add_tokens(..., special_tokens=True)).
    wrapped.add_tokens(REFERENCE_SPECIAL_TOKENS, special_tokens=True)
    wrapped.save_pretrained(out_dir)
    return Qwen2TokenizerFast.from_pretrained(out_dir)


def build_config(vocab_size: int) -> Sa2VAChatConfig:
    """Tiny Sa2VAChatConfig with the layout of InternVL2.5-1B (InternViT-300M style + Qwen2.5), sizes shrunk."""
    vision_config = dict(
        architectures=["InternVisionModel"], model_type="intern_vit_6b", num_channels=3, patch_size=14,
        image_size=448, qkv_bias=True, hidden_size=64, num_attention_heads=4, intermediate_size=128,
        qk_normalization=False, num_hidden_layers=2, use_flash_attn=False, hidden_act="gelu",
        norm_type="layer_norm", layer_norm_eps=1e-6, dropout=0.0, drop_path_rate=0.0, attention_dropout=0.0,
        initializer_range=0.02, initializer_factor=1.0,
    )
    llm_config = dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=vocab_size, hidden_size=64,
        intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        hidden_act="silu", max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
        use_sliding_window=False, sliding_window=32768, max_window_layers=21, tie_word_embeddings=False,
        attention_dropout=0.0, bos_token_id=None, eos_token_id=None, torch_dtype="float32", use_cache=True,
    )
    return Sa2VAChatConfig(
        vision_config=vision_config, llm_config=llm_config, select_layer=-1, force_image_size=448,
        downsample_ratio=0.5, template="qwen_chat", dynamic_image_size=True, use_thumbnail=True, ps_version="v2",
        min_dynamic_patch=1, max_dynamic_patch=12, architectures=["Sa2VAChatModel"], torch_dtype="float32",
        auto_map={"AutoConfig": "configuration_sa2va_chat.Sa2VAChatConfig",
                  "AutoModel": "modeling_sa2va_chat.Sa2VAChatModel",
                  "AutoModelForCausalLM": "modeling_sa2va_chat.Sa2VAChatModel"},
    )


def build_sam21_hiera_tiny_encoder(_sam2_wrapper=None):
    """The reference's ImageEncoder(Hiera, FpnNeck) with sam2.1_hiera_t.yaml's values."""
    trunk = ref_sam2.Hiera(embed_dim=96, num_heads=1, stages=[1, 2, 7, 2], global_att_blocks=[5, 7, 9],
                           window_pos_embed_bkg_spatial_size=[7, 7], window_spec=[8, 4, 14, 7])
    position_encoding = ref_sam2.PositionEmbeddingSine(num_pos_feats=256, normalize=True, scale=None,
                                                       temperature=10000)
    neck = ref_sam2.FpnNeck(d_model=256, position_encoding=position_encoding,
                            backbone_channel_list=[768, 384, 192, 96], fpn_top_down_levels=[2, 3],
                            fpn_interp_model="nearest")
    return ref_sam2.ImageEncoder(scalp=1, trunk=trunk, neck=neck)


def configure_reference_sam2(image_size: int) -> None:
    """Hiera-tiny image encoder and SAM 2 input size `image_size` for every SAM2() built afterwards."""
    ref_sam2.SAM2.build_image_encoder = build_sam21_hiera_tiny_encoder
    predictor = ref_sam2.__dict__.setdefault("_ReleasedSAM2VideoPredictor", ref_sam2.SAM2VideoPredictor)

    class SizedSAM2VideoPredictor(predictor):
        def __init__(self, *args, **kwargs):
            kwargs["image_size"] = image_size
            super().__init__(*args, **kwargs)

    ref_sam2.SAM2VideoPredictor = SizedSAM2VideoPredictor


def prepare(model, tokenizer, sam2_image_size: int) -> None:
    """`preparing_for_generation` in float32, then the grounding resize target set to SAM 2's input size."""
    model.preparing_for_generation(tokenizer, max_new_tokens=MAX_NEW_TOKENS, torch_dtype=torch.float32)
    model.extra_image_processor = ref_modeling.DirectResize(target_length=sam2_image_size)


def build_model(config: Sa2VAChatConfig, overrides: dict[str, np.ndarray]):
    """The reference Sa2VAChatModel (SAM 2 as configured) with every tensor filled deterministically."""
    torch.manual_seed(0)
    model = ref_modeling.Sa2VAChatModel(config, use_flash_attn=False).eval()
    shapes = {name: list(t.shape) for name, t in model.state_dict().items()}
    state = dw.deterministic_state_dict(shapes)
    for name, value in overrides.items():
        base_name, _, row = name.rpartition("#")
        state[base_name][int(row)] = torch.from_numpy(value)
    model.load_state_dict(state, strict=True)
    return model, shapes


# ------------------------------------------------------------------------------------------------ recording
class Recorder:
    """Wraps reference methods (without changing their logic) to capture per-frame intermediate values."""

    def __init__(self, model, disable_recurrence: bool = False):
        self.model = model
        self.disable_recurrence = disable_recurrence
        self.frames: list[dict] = []
        self._patches: list[tuple[object, str, object]] = []

    def _patch(self, owner, name, wrapper_factory):
        original = getattr(owner, name)
        self._patches.append((owner, name, original))
        setattr(owner, name, wrapper_factory(original))

    def __enter__(self):
        model = self.model

        def wrap_generate_token(original):
            def generate_token(*args, time_context_token=None, **kwargs):
                record = {"time_context_in": None if time_context_token is None
                          else time_context_token.detach().clone().reshape(-1)}
                if self.disable_recurrence:
                    time_context_token = None
                record["prompt_ids"] = kwargs["input_ids"][0].clone()
                record["num_tiles"] = int(kwargs["pixel_values"].shape[0])
                self.frames.append(record)
                out = original(*args, time_context_token=time_context_token, **kwargs)
                record["generated_ids"] = out.sequences[0].clone()
                # Post-norm last-layer states whose logits chose each generated token (prompt end, then fed tokens).
                record["decision_hidden"] = torch.stack(
                    [out.hidden_states[0][-1][0, -1]] + [step[-1][0, -1] for step in out.hidden_states[1:]])
                record["prompt_last_hidden"] = record["decision_hidden"][0].clone()
                return out
            return generate_token

        def wrap_get_seg(original):
            def get_seg_hidden_states(hidden_states, output_ids, seg_id):
                seg = original(hidden_states, output_ids, seg_id)
                self.frames[-1]["seg_hidden"] = seg.detach().clone()
                return seg
            return get_seg_hidden_states

        def wrap_sam2_embeddings(original):
            def get_sam2_embeddings(images):
                self.frames[-1]["sam2_pixels"] = images.detach().clone()
                return original(images)
            return get_sam2_embeddings

        def wrap_language_inference(original):
            def language_embd_inference(inference_state, language_embd):
                out = original(inference_state, language_embd)
                self.frames[-1]["seg_embedding"] = language_embd[0].detach().clone().reshape(-1)
                self.frames[-1]["low_res_logits"] = out[0].detach().clone()
                return out
            return language_embd_inference

        def record_vit(_module, _inputs, output):
            self.frames[-1]["vit_tile0"] = output[0].detach().clone()

        self._hooks = [model.mlp1.register_forward_hook(record_vit)]
        self._patch(model, "generate_token", wrap_generate_token)
        self._patch(ref_modeling, "get_seg_hidden_states", wrap_get_seg)
        self._patch(model.grounding_encoder, "get_sam2_embeddings", wrap_sam2_embeddings)
        self._patch(model.grounding_encoder, "language_embd_inference", wrap_language_inference)
        return self

    def __exit__(self, *exc):
        for hook in self._hooks:
            hook.remove()
        for owner, name, original in reversed(self._patches):
            if isinstance(owner, torch.nn.Module) and name in owner.__dict__:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def run_reference(model, tokenizer, frames, disable_recurrence=False):
    pil_frames = [Image.fromarray(f, mode="RGB") for f in frames]
    with Recorder(model, disable_recurrence) as recorder, torch.no_grad():
        result = model.predict_forward_token(video=pil_frames, text=PROMPT, tokenizer=tokenizer)
    return result, recorder.frames


# ------------------------------------------------------------------------------------------------ steering
def steer_generation(config, tokenizer, frames, sam2_image_size: int, max_rounds: int = 4) -> dict[str, np.ndarray]:
    """Choose the lm_head row of [SEG] so greedy decoding emits it first exactly on frames showing the square.

    Random weights almost never emit [SEG]. The hidden states that decide each generated token do not depend on the
    [SEG] row as long as the token sequence stays the same, so the row is solved for directly: the minimum-norm r
    with r . h = +margin at the prompt end of square frames and -margin at every other decision position. Because
    the time-context recurrence changes those hidden states once [SEG] appears, this is repeated on the new states
    until the wanted [SEG] pattern holds. The row is stored in the fixture (weight_overrides.npz) and both sides
    apply it on top of the deterministic weights.
    """
    seg_id = tokenizer.convert_tokens_to_ids("[SEG]")
    key = f"language_model.lm_head.weight#{seg_id}"
    wanted = [int(x is not None) for x in SQUARE_X]
    overrides: dict[str, np.ndarray] = {}
    for _ in range(max_rounds):
        model, _ = build_model(config, overrides)
        prepare(model, tokenizer, sam2_image_size)
        _, records = run_reference(model, tokenizer, frames)
        counts = [len(r["seg_hidden"]) for r in records]
        print(f"steering: [SEG] counts {counts}, wanted {wanted}")
        if counts == wanted and overrides:
            return overrides
        rows, targets = [], []
        for r, want in zip(records, wanted, strict=True):
            for position, h in enumerate(r["decision_hidden"]):
                rows.append(h.double())
                targets.append(SEG_LOGIT_MARGIN if (position == 0 and want) else -SEG_LOGIT_MARGIN)
        solution = torch.linalg.pinv(torch.stack(rows)) @ torch.tensor(targets, dtype=torch.float64)
        overrides = {key: solution.float().numpy()}
    raise RuntimeError(f"could not steer [SEG] to the pattern {wanted} in {max_rounds} rounds")


# ------------------------------------------------------------------------------------------------ main
def pack_rows(rows: list[torch.Tensor | None], width: int) -> np.ndarray:
    out = np.full((len(rows), width), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        if row is not None:
            out[i] = row.float().numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sam2-image-size", type=int, default=1024, help="SAM 2 input size (release: 1024)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default test/fixtures/parity/sam<size>)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    size = args.sam2_image_size
    out: Path = args.out or REPO_ROOT / "test" / "fixtures" / "parity" / f"sam{size}"
    configure_reference_sam2(size)
    if out.exists():
        shutil.rmtree(out)
    (out / "frames").mkdir(parents=True)

    tokenizer = build_tokenizer(out / "tokenizer")
    config = build_config(len(tokenizer))
    frames = make_frames()
    for t, frame in enumerate(frames):
        Image.fromarray(frame, mode="RGB").save(out / "frames" / f"frame_{t:03d}.png")

    overrides = steer_generation(config, tokenizer, frames, size)
    model, shapes = build_model(config, overrides)
    prepare(model, tokenizer, size)
    np.savez(out / "weight_overrides.npz", **overrides)

    # The checkpoint as the reference's convert_to_hf writes it (save_pretrained), to record the real layout.
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        files = sorted(p.name for p in Path(tmp).iterdir())
        shutil.copy(Path(tmp) / "config.json", out / "config.json")
        from safetensors import safe_open
        saved_keys = {}
        for f in files:
            if f.endswith(".safetensors"):
                with safe_open(str(Path(tmp) / f), "pt") as handle:
                    saved_keys.update({k: list(handle.get_slice(k).get_shape()) for k in handle.keys()})
    state = model.state_dict()
    layout = {
        "files_written_by_save_pretrained": files,
        "keys": {k: shapes[k] for k in sorted(shapes)},
        "saved_keys_equal_state_dict": sorted(saved_keys) == sorted(shapes),
        "fingerprints": {k: dw.tensor_checksum(state[k]) for k in sorted(state)},
    }
    (out / "checkpoint_layout.json").write_text(json.dumps(layout, indent=0))

    result, records = run_reference(model, tokenizer, frames)
    result_no_rec, records_no_rec = run_reference(model, tokenizer, frames, disable_recurrence=True)

    hidden_size = config.llm_config.hidden_size
    seg_counts = [len(r["seg_hidden"]) for r in records]
    masks = result["prediction_masks"][0]
    mask_logits = np.full(masks.shape, np.nan, dtype=np.float32)
    for t, r in enumerate(records):
        if "low_res_logits" in r and seg_counts[t] > 0:
            up = F.interpolate(r["low_res_logits"].float(), size=(FRAME_HEIGHT, FRAME_WIDTH),
                               mode="bilinear", align_corners=False)
            mask_logits[t] = up[0, 0].numpy()
    gen_len = max(len(r["generated_ids"]) for r in records)
    generated = np.full((len(records), gen_len), -1, dtype=np.int64)
    for t, r in enumerate(records):
        generated[t, :len(r["generated_ids"])] = r["generated_ids"].numpy()

    def seg_row(r):
        return r["seg_hidden"][0] if len(r["seg_hidden"]) == 1 else None

    seg_hidden = pack_rows([seg_row(r) for r in records], hidden_size)
    seg_hidden_no_rec = pack_rows([seg_row(r) for r in records_no_rec], hidden_size)
    recurrence_effect = float(np.nanmax(np.abs(seg_hidden[1:] - seg_hidden_no_rec[1:])))
    if not recurrence_effect > 100 * PARITY_ATOL:
        raise RuntimeError(f"the TIME_CONTEXT recurrence barely changes the [SEG] states ({recurrence_effect:.3g})")
    mask_changes_no_rec = [int(np.sum(a != b)) for a, b in zip(masks, result_no_rec["prediction_masks"][0], strict=True)]
    np.savez_compressed(
        out / "expected.npz",
        prompt_ids=records[0]["prompt_ids"].numpy(),
        generated_ids=generated,
        seg_count=np.array(seg_counts),
        seg_hidden=seg_hidden,
        time_context_in=pack_rows([r["time_context_in"] for r in records], hidden_size),
        seg_embedding=pack_rows([r.get("seg_embedding") for r in records], 256),
        prompt_last_hidden=pack_rows([r["prompt_last_hidden"] for r in records], hidden_size),
        vit_frame0_tile0=records[0]["vit_tile0"].float().numpy(),
        sam2_pixel_mean=pack_rows([r["sam2_pixels"][0].mean(dim=(1, 2)) if "sam2_pixels" in r else None
                                   for r in records], 3),
        masks=masks,
        mask_logits=mask_logits,
        seg_hidden_without_recurrence=seg_hidden_no_rec,
    )
    finite = np.isfinite(mask_logits)
    meta = {
        "prompt": PROMPT,
        "max_new_tokens": MAX_NEW_TOKENS,
        "torch_dtype": "float32",
        "frame_size": [FRAME_HEIGHT, FRAME_WIDTH],
        "num_frames": len(frames),
        "num_tiles": records[0]["num_tiles"],
        "square_x": SQUARE_X,
        "seg_count": seg_counts,
        "decoded": [tokenizer.decode(r["generated_ids"], skip_special_tokens=False) for r in records],
        "last_prediction": result["prediction"],
        "recurrence_effect_max_abs_seg_hidden": recurrence_effect,
        "mask_pixels_changed_without_recurrence": mask_changes_no_rec,
        "min_abs_mask_logit": float(np.abs(mask_logits[finite]).min()) if finite.any() else None,
        "mask_pixels": [int(m.sum()) for m in masks],
        "reference_commit": (REF_HOME / "pkg" / "sa2va_ref" / ".exported-from").read_text().strip(),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "tokenizers": __import__("tokenizers").__version__, "numpy": np.__version__},
        "sam2_image_encoder": "hiera-tiny, sam2.1_hiera_t.yaml values (window_spec [8, 4, 14, 7])",
        "sam2_image_size": size,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
