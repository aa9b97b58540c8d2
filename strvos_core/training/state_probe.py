"""Does an export use the streaming state it is fed? A probe on a synthetic split, through the inference model.

    python -m strvos_core.training.state_probe --model runs/x/export --data-root DATA [--split test] [--videos 12]

Per expression, frame 0 is seen as usual; on frames 1..T-1 the LLM is "blind" (its image tokens are zeros; SAM 2
still sees the frame), so the only thing that can say where the target is, is the state fed back from the frame
before. Mask IoU with the truth on frames 1..T-1:
* seen: normal streaming (every frame seen, state chained),
* blind + state: blind frames with the state chained from frame 0 through the blind frames,
* blind, no state: the same blind frames with no state at all.
A model that uses its state scores blind + state above blind, no state. Also [SEG]'s attention on the
<TIME_CONTEXT> slot per LLM layer (mean of heads), on the first blind frame with frame 0's state.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from strvos_core.datasets.video_benchmarks import read_video_benchmark
from strvos_core.metrics.region import jaccard_per_frame
from strvos_core.modeling.streamingrvos import FrameFeatures, StreamingRVOSModel


@dataclass
class StateProbe:
    seen: list[float]
    blind_state: list[float]
    blind_none: list[float]
    time_context_attention: list[list[float]]  # per expression: per layer

    def summary(self) -> dict[str, float | list[float]]:
        return {"frames": len(self.seen), "seen": float(np.mean(self.seen)),
                "blind_state": float(np.mean(self.blind_state)), "blind_none": float(np.mean(self.blind_none)),
                "time_context_attention": np.mean(self.time_context_attention, axis=0).round(4).tolist()}


def _blind(features: FrameFeatures) -> FrameFeatures:
    return FrameFeatures(features.height, features.width, features.num_tiles,
                         torch.zeros_like(features.image_tokens), lambda: features.sam)


@torch.no_grad()
def time_context_attention(model: StreamingRVOSModel, features: FrameFeatures, expression: str,
                           state: torch.Tensor) -> list[float]:
    """Per LLM layer, the [SEG] position's attention (mean of heads) on <TIME_CONTEXT>, the answer "[SEG]." given."""
    ids = model.prompt_ids(expression, features.num_tiles)[0]
    answer = model.tokenizer("[SEG].", add_special_tokens=False, return_tensors="pt").input_ids[0].to(ids.device)
    ids = torch.cat([ids, answer])
    embeds = model.prompt_embeddings(ids[None], features.image_tokens, state)
    previous = model.language_model.config._attn_implementation
    model.language_model.set_attn_implementation("eager")  # sdpa returns no attention weights
    try:
        attentions = model.language_model(inputs_embeds=embeds, output_attentions=True).attentions
    finally:
        model.language_model.set_attn_implementation(previous)
    seg = int(torch.nonzero(ids == model.token_ids.seg)[0])
    slot = int(torch.nonzero(ids == model.token_ids.time_context)[0])
    return [float(a[0, :, seg, slot].mean()) for a in attentions]


@torch.no_grad()
def probe_state(model: StreamingRVOSModel, data_root: str, split: str = "test", videos: int = 12,
                frames: int = 6, expressions_per_video: int = 4) -> StateProbe:
    if frames < 2:
        raise ValueError("the state probe needs frames >= 2 (frame 0 seen, the rest blind)")
    bench = read_video_benchmark("synthetic", data_root, split)
    result = StateProbe([], [], [], [])
    for video in bench.videos[:videos]:
        count = min(frames, len(video.frames))
        images = [np.asarray(Image.open(video.frame_path(i)).convert("RGB")) for i in range(count)]
        features = [model.encode_frame(image) for image in images]
        for expression in video.expressions[:expressions_per_video]:
            truth = [bench.ground_truth.frame_mask(video, expression, i, images[0].shape[:2]) > 0
                     for i in range(count)]
            first = model.segment(features[0], expression.expression, None)
            seen_state = blind_state = first.state
            for t in range(1, count):
                seen = model.segment(features[t], expression.expression, seen_state)
                seen_state = seen.state
                result.seen.append(float(jaccard_per_frame(truth[t], seen.mask)))
                blind = _blind(features[t])
                if t == 1 and first.state is not None:
                    result.time_context_attention.append(
                        time_context_attention(model, blind, expression.expression, first.state))
                chained = model.segment(blind, expression.expression, blind_state)
                blind_state = chained.state
                result.blind_state.append(float(jaccard_per_frame(truth[t], chained.mask)))
                unaided = model.segment(blind, expression.expression, None)
                result.blind_none.append(float(jaccard_per_frame(truth[t], unaided.mask)))
    if not result.seen:
        raise ValueError(f"no expression with >= 2 frames in {data_root} ({split})")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an export directory, or 'default'")
    parser.add_argument("--data-root", required=True, help="a synthetic split's root (strvos synthetic --root)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--expressions", type=int, default=4, help="expressions per video")
    args = parser.parse_args(argv)
    from strvos_core.checkpoint import load_model

    model = load_model(args.model)
    model.eval()
    summary = probe_state(model, args.data_root, args.split, args.videos, args.frames, args.expressions).summary()
    print("| model | frames | seen | blind + state | blind, no state | [SEG] attention on <TIME_CONTEXT> per layer |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.model} | {summary['frames']} | {summary['seen']:.3f} | {summary['blind_state']:.3f} | "
          f"{summary['blind_none']:.3f} | {' / '.join(f'{a:.3f}' for a in summary['time_context_attention'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
