"""Does SAM 2, trained from scratch here, tell the clicked object from the others? (Its easiest prompt.)

    python -m strvos_core.training.click_probe --config configs/train/tiny_synthetic.yaml \
        [--steps 600] [--lr 1e-3] [--eval-every 300] [--sheet clicks.png]

Trains SAM 2 alone (image encoder, prompt encoder, mask decoder; the LLM is built but unused) on its own promptable
task: one positive click at a random pixel of an object, the best of the three candidate masks trained (the click
loss of `training.forward`). Every `--eval-every` steps, on held-out frames (data seed + 1), for each click: the
candidate closest to the clicked object, upsampled to the frame as the model does, and its IoU with
* own: the clicked object;
* others: the frame's other objects together;
* objects: all objects together.
A decoder that selects scores own >> others. One that learned only "objects vs background" scores objects high and
own low: the [SEG] path cannot select either, since the prompt token is all that differs between targets.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from strvos_core.metrics.region import jaccard_per_frame
from strvos_core.training.build import build_model
from strvos_core.training.config import TrainConfig
from strvos_core.training.data import Click, Sample, SyntheticPool, prepare_frame
from strvos_core.training.forward import TrainingModel


@dataclasses.dataclass
class ClickScores:
    """Mean IoUs of the candidate closest to the clicked object (see the module docstring)."""

    step: int
    train_loss: float  # mean click loss over the steps since the previous evaluation
    own: float
    others: float
    objects: float
    clicks: int


def overlaps(pred: np.ndarray, labels: np.ndarray, own: np.ndarray) -> tuple[float, float, float]:
    """IoU of `pred` with the clicked object `own`, with the other objects of `labels` together, with all objects.
    A frame without other objects scores `others` 0 (nothing there to leak onto)."""
    objects = labels > 0
    others = objects & ~own
    leak = float(jaccard_per_frame(others, pred)) if others.any() else 0.0
    return float(jaccard_per_frame(own, pred)), leak, float(jaccard_per_frame(objects, pred))


class ClickProbe:
    """SAM 2 of a training config's model, trained on clicks alone."""

    def __init__(self, config: TrainConfig, lr: float = 1e-3, clicks_per_frame: int = 4, warmup: int = 30) -> None:
        self.config = dataclasses.replace(config, data=dataclasses.replace(
            config.data, clicks_per_frame=clicks_per_frame, stage="image"))
        self.model = build_model(self.config.model)
        self.model.eval()  # no dropout; gradients still flow
        self.trainer = TrainingModel(self.model, self.config.loss)
        sam = self.model.grounding_encoder.sam2_model
        self.parameters = [p for module in (sam.image_encoder, sam.sam_prompt_encoder, sam.sam_mask_decoder)
                           for p in module.parameters()]
        for p in self.parameters:
            p.requires_grad_(True)
        self.optimizer = torch.optim.AdamW(self.parameters, lr=lr, weight_decay=self.config.optim.weight_decay)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: min(1.0, (s + 1) / warmup))
        self.train_pool = SyntheticPool(self.config.data)
        self.held_out = SyntheticPool(dataclasses.replace(self.config.data, seed=self.config.data.seed + 1))
        self.size = self.model.config.grounding.image_size

    def _features(self, sample: Sample):
        frame = sample.frames[0]
        return self.trainer.frame_features(prepare_frame(frame, sample.targets[0].masks[0], self.model.config))[1]

    def train_step(self, step: int) -> float | None:
        """One frame's clicks; None when the frame had no clickable object."""
        sample = self.train_pool.sample(step, 0, 0, 0)
        if not sample.clicks or not sample.clicks[0]:
            return None
        losses = self.trainer.click_losses(self._features(sample), sample.clicks[0], sample.frames[0].shape[:2])
        loss = torch.stack(losses).mean()
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, self.config.optim.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        return float(loss.detach())

    @torch.no_grad()
    def candidates(self, sample: Sample, click: Click) -> torch.Tensor:
        """[3, H, W] candidate logits at the frame's size (bilinear, as the model upsamples its low-res logits)."""
        height, width = sample.frames[0].shape[:2]
        point = torch.tensor([click.x * self.size / width, click.y * self.size / height])
        low = self.model.grounding_encoder.point_masks(self._features(sample), point)
        return F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)[0]

    def evaluate(self, frames: int) -> tuple[float, float, float, int]:
        rows = []
        for index in range(frames):
            sample = self.held_out.sample(0, 0, 0, index)
            for click in sample.clicks[0] if sample.clicks else []:
                masks = (self.candidates(sample, click) > 0).numpy()
                scores = [overlaps(m, sample.labels[0], click.mask) for m in masks]
                rows.append(max(scores, key=lambda s: s[0]))
        if not rows:
            raise ValueError("no held-out frame had a clickable object")
        own, others, objects = np.mean(rows, axis=0)
        return float(own), float(others), float(objects), len(rows)

    def sheet(self, path: str | Path, frames: int = 4) -> None:
        """PNG: per held-out frame, the frame with its first click (red), the clicked object, the three candidates'
        probabilities."""
        import cv2

        rows = []
        for index in range(frames):
            sample = self.held_out.sample(0, 0, 0, index)
            if not sample.clicks or not sample.clicks[0]:
                continue
            click = sample.clicks[0][0]
            image = sample.frames[0].copy()
            cv2.circle(image, (int(click.x), int(click.y)), 4, (255, 0, 0), -1)
            probabilities = torch.sigmoid(self.candidates(sample, click)).numpy()
            grey = [np.repeat((p * 255).astype(np.uint8)[..., None], 3, axis=2)
                    for p in (click.mask.astype(np.float32), *probabilities)]
            rows.append(np.concatenate([image, *grey], axis=1))
        if not rows:
            raise ValueError("no held-out frame had a clickable object")
        if not cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")


def run(config: TrainConfig, steps: int, lr: float = 1e-3, eval_every: int = 300, eval_frames: int = 40,
        sheet: str | Path | None = None, log=print) -> list[ClickScores]:
    probe = ClickProbe(config, lr=lr)
    results, recent, start = [], [], time.perf_counter()
    for step in range(steps):
        loss = probe.train_step(step)
        if loss is not None:
            recent.append(loss)
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            own, others, objects, clicks = probe.evaluate(eval_frames)
            results.append(ClickScores(step + 1, float(np.mean(recent)) if recent else float("nan"),
                                       own, others, objects, clicks))
            recent = []
            log(f"step {step + 1}: click loss {results[-1].train_loss:.3f}  held-out IoU own {own:.3f}  "
                f"others {others:.3f}  objects {objects:.3f}  ({clicks} clicks, {time.perf_counter() - start:.0f} s)")
    if sheet is not None:
        probe.sheet(sheet)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="a training config (its model and data sections are used)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=300)
    parser.add_argument("--eval-frames", type=int, default=40)
    parser.add_argument("--sheet", help="write a PNG contact sheet of held-out clicks here at the end")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.eval_every < 1 or args.eval_frames < 1:
        parser.error("--steps, --eval-every and --eval-frames must be >= 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = run(TrainConfig.from_yaml(args.config), args.steps, args.lr, args.eval_every, args.eval_frames,
                  args.sheet)
    print("| steps | click loss | own IoU | others IoU | objects IoU |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r.step} | {r.train_loss:.3f} | {r.own:.3f} | {r.others:.3f} | {r.objects:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
