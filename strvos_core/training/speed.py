"""Streaming speed of a training config's model (a random build before any training) or of an exported model.

    python -m strvos_core.training.speed --config configs/train/tiny_synthetic.yaml [--frames 40] [--size 320x240]
    python -m strvos_core.training.speed --model default [--frames 40]

Why random weights: the architecture alone fixes the cost, except for how many tokens the LLM generates; the
build is steered (modeling/steering.py) to answer "[SEG]<|im_end|>", so every frame runs the LLM, one decode
step and the SAM 2 decoder, as a trained model answering "[SEG]." does (that answer costs one decode step more).
The model goes through the real path: export (checkpoint.save_checkpoint), `streamingrvos` backend, session.
With `--model` the trained weights answer for themselves on a synthetic video; frames where they answer without
[SEG] skip SAM 2 and are counted apart (`frames_with_seg`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch


def measure(config_path: str | None, frames: int = 40, width: int = 320, height: int = 240, threads: int = 2,
            model_spec: str | None = None) -> dict:
    from strvos_core import backends
    from strvos_core.checkpoint import save_checkpoint
    from strvos_core.datasets.synthetic import SyntheticConfig, generate_video
    from strvos_core.modeling.steering import steer_answer
    from strvos_core.training import TrainConfig
    from strvos_core.training.build import build_model

    torch.set_num_threads(threads)
    video = generate_video(0, SyntheticConfig(width=width, height=height, num_frames=max(frames, 8)))
    if model_spec is not None:
        backend = backends.create("streamingrvos", model=model_spec)
        model = backend.model
    else:
        config = TrainConfig.from_yaml(config_path)
        model = build_model(config.model)
        steer_answer(model.language_model, model.tokenizer, "seg")
        with tempfile.TemporaryDirectory() as export:
            save_checkpoint(model, model.tokenizer, export)
            backend = backends.create("streamingrvos", model=export)
    session = backend.start_session({"target": video.expressions[0].text})
    warmup = 3
    totals, stages, with_seg = [], {}, 0
    for index in range(frames + warmup):
        began = time.perf_counter()
        result = session.step(video.frames[index % video.num_frames])
        elapsed = time.perf_counter() - began
        if index >= warmup:
            totals.append(elapsed)
            with_seg += int(result.targets["target"].has_seg)
            for stage, seconds in result.timings.items():
                stages.setdefault(stage, []).append(seconds)
    if model_spec is None:
        assert result.targets["target"].has_seg
    median = statistics.median(totals)
    return {"frames": frames, "frames_with_seg": with_seg, "size": f"{width}x{height}", "threads": threads, "median_step_s": median,
            "fps": 1.0 / median, "stages_median_s": {k: statistics.median(v) for k, v in stages.items()},
            "tiles": model.frame_tiles(width, height), "load_average": os.getloadavg(),
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="training config: its architecture, random weights")
    source.add_argument("--model", help="an exported model (directory or registered name such as default)")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    before = os.getloadavg()
    report = measure(args.config, args.frames, width, height, args.threads, model_spec=args.model)
    print(f"load average before {before[0]:.2f}, after {report['load_average'][0]:.2f}")
    for key, value in report.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
