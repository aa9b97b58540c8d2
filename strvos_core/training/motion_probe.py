"""Can the motion encoder learn which way each object moved? The encoder trained on per-cell steps alone.

    python -m strvos_core.training.motion_probe --config configs/train/motion/motion_encoder.yaml --steps 1500
    python -m strvos_core.training.motion_probe --config ... --encoder model --head-only  (the model's own, probed)
    python -m strvos_core.training.motion_probe --config ... --save FILE              (pre-training: stage VM)

The learner is the config's motion encoder (`vision.motion_input`: the conv trunk over the LLM tile and its
difference from the previous frame's tile, pooled to the LLM's token grid), fresh or the model's own; a linear head
predicts each cell's step since the frame before (`motion.step_targets`: still / left / right / up / down /
background) with the motion head's loss. Training frames come from `--videos` videos of the config's data seed,
generated as drawn; every frame drawn has a frame before it (a first frame shows no motion). Scored on held-out
frames (seed 777): accuracy over the step classes on the cells objects cover for more than half, against the
commonest class's share. It measures what the encoder alone can learn from these frames, against what the tokens of
a trained model carry (`cell_probe`); with `--save` the encoder is written for `model.motion_init` (its output
projection is zeroed when loaded, so the model computes what it would without motion input until training teaches
it to read the new features).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from strvos_core.modeling.conv_trunk import motion_pixels
from strvos_core.modeling.vision import build_motion_encoder
from strvos_core.processing import image as image_processing
from strvos_core.training import checkpointing
from strvos_core.training.build import build_model
from strvos_core.training.config import TrainConfig
from strvos_core.training.data import Sample, SyntheticPool
from strvos_core.training.export import save_motion_encoder
from strvos_core.training.motion import STEP_CLASSES, step_loss, step_targets
from strvos_core.training.probe_loop import optimizer_step, scheduled_evaluations

ENCODERS = ("fresh", "model")  # a new encoder, or the model's own (its config's model.init, or --run's)


class MotionProbe:
    """The motion encoder + a linear step head, trained on frames (with their frame before) of the config's world."""

    def __init__(self, config: TrainConfig, encoder: str = "fresh", run: str | Path | None = None, lr: float = 1e-3,
                 batch: int = 8, videos: int = 20000, seed: int = 0, head_only: bool = False) -> None:
        torch.manual_seed(seed)  # the fresh encoder's and the head's init; the data follow config.data.seed
        model = checkpointing.load_model(checkpointing.list_checkpoints(run)[-1]) if run is not None \
            else build_model(config.model)
        self.model, self.model_config = model, model.config
        if encoder not in ENCODERS:
            raise ValueError(f"motion_probe: encoder must be one of {ENCODERS}, got {encoder!r}")
        learner = model.motion_encoder if encoder == "model" else \
            build_motion_encoder(self.model_config.vision, self.model_config.downsample_ratio)
        if learner is None:
            raise ValueError("motion_probe: the model has no motion encoder (vision.motion_input)")
        self.encoder = model.motion_encoder = learner.float()  # the model saved by --save holds this one
        self.side = self.encoder.side
        self.head = nn.Linear(self.encoder.project.out_channels, len(STEP_CLASSES) + 1)
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(not head_only)
        self.parameters = list(self.head.parameters()) + ([] if head_only else list(self.encoder.parameters()))
        self.optimizer = torch.optim.AdamW(self.parameters, lr=lr, weight_decay=0.05)
        self.batch = batch
        # generated as drawn and not kept: thousands of videos, so the encoder cannot recall objects' paths
        self.train_pool = SyntheticPool(dataclasses.replace(
            config.data, stage="image", num_videos=videos, clicks_per_frame=0,
            expressions_per_sample=1, kinds=("appearance", "relation", "motion")), keep_videos=False)
        self.held_out = SyntheticPool(dataclasses.replace(
            config.data, seed=777, stage="image", clicks_per_frame=0, expressions_per_sample=1,
            kinds=("appearance", "relation", "motion")))

    def _tiles(self, frame: np.ndarray) -> torch.Tensor:
        cfg = self.model_config
        return image_processing.llm_tiles(frame, cfg.tile_size, cfg.min_dynamic_patch, cfg.max_dynamic_patch,
                                          cfg.use_thumbnail).float()

    def logits(self, sample: Sample) -> torch.Tensor:
        """[cells, classes + 1] step logits of the sample's first frame (its first tile's grid)."""
        pixels = motion_pixels(self._tiles(sample.frames[0]), self._tiles(sample.previous[0]))
        return self.head(self.encoder(pixels)[0])

    def _draw(self, pool: SyntheticPool, step: int, micro: int, index: int) -> Sample:
        """The pool's sample, redrawn (deterministically) until its frame has a frame before it."""
        for attempt in range(100):
            sample = pool.sample(step, micro, attempt, index)
            if sample.previous[0] is not None:
                return sample
        raise RuntimeError("motion_probe: 100 draws in a row were first frames")

    def train_step(self, step: int) -> float:
        self.encoder.train()
        losses = []
        for micro in range(self.batch):
            sample = self._draw(self.train_pool, step, micro, 0)
            targets = step_targets(sample.labels[0], sample.steps[0], (self.side, self.side))
            losses.append(step_loss(self.logits(sample), targets))
        return optimizer_step(self.optimizer, self.parameters, torch.stack(losses).mean(), 1.0)

    @torch.no_grad()
    def evaluate(self, frames: int) -> tuple[float, float, int]:
        """(held-out accuracy on the cells objects cover for more than half, the commonest class's share, those cells)."""
        self.encoder.eval()
        hits, cells, counts = 0, 0, np.zeros(len(STEP_CLASSES), np.int64)
        for index in range(frames):
            sample = self._draw(self.held_out, 0, 0, index)
            targets = step_targets(sample.labels[0], sample.steps[0], (self.side, self.side))
            keep = targets[:, -1] < 0.5
            gold = targets[keep, :-1].argmax(dim=1)
            hits += int((self.logits(sample)[keep, :-1].argmax(dim=1) == gold).sum())
            counts += np.bincount(gold.numpy(), minlength=len(STEP_CLASSES))
            cells += int(keep.sum())
        if cells == 0:
            raise ValueError(f"motion_probe: no cell of {frames} held-out frames is mostly one object")
        return hits / cells, float(counts.max()) / cells, cells


def run(probe: MotionProbe, steps: int, eval_every: int = 100, eval_frames: int = 60, log=print,
        save: str | Path | None = None) -> list[tuple[int, float, float, float, float]]:
    """Trains `steps` steps, evaluating every `eval_every` and at the end: (step, mean loss, accuracy, commonest,
    seconds so far) rows. With `save`, the encoder's weights are written there at every evaluation."""
    results = []
    for step, loss, (accuracy, commonest, cells), seconds in scheduled_evaluations(
            probe.train_step, lambda: probe.evaluate(eval_frames), steps, eval_every):
        results.append((step, loss, accuracy, commonest, seconds))
        log(f"step {step}: loss {loss:.3f}  step accuracy {accuracy:.3f} "
            f"(commonest {commonest:.3f}, {cells} cells)  ({seconds:.0f} s)", flush=True)
        if save is not None:
            save_motion_encoder(probe.model, save)
    return results


def results_table(results: list[tuple[int, float, float, float, float]]) -> str:
    lines = ["| step | loss | held-out step accuracy | commonest class | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {s} | {loss:.3f} | {acc:.3f} | {common:.3f} | {sec:.0f} |" for s, loss, acc, common, sec in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="a training config whose model has vision.motion_input")
    parser.add_argument("--encoder", choices=ENCODERS, default="fresh",
                        help="fresh, or the model's own (the config's model.init, or --run's newest checkpoint)")
    parser.add_argument("--run", help="take the model from this run's newest checkpoint instead of model.init")
    parser.add_argument("--head-only", action="store_true",
                        help="train the head alone: a linear probe of the encoder's features")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps of --batch frames")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--videos", type=int, default=20000, help="training videos (generated as they are drawn)")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-frames", type=int, default=60)
    parser.add_argument("--save", help="write the encoder here at every evaluation (model.motion_init)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    probe = MotionProbe(TrainConfig.from_yaml(args.config), args.encoder, args.run, args.lr, args.batch, args.videos,
                        head_only=args.head_only)
    print(results_table(run(probe, args.steps, args.eval_every, args.eval_frames, save=args.save)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
