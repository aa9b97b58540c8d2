"""Does SAM 2, trained from scratch here, tell the clicked object from the others? (Its easiest prompt.)

    python -m strvos_core.training.click_probe --config configs/train/tiny_synthetic.yaml \
        [--learner sam2|unet] [--steps 600] [--clicks 4] [--lr 1e-3] [--encoder-lr-scale 0.1] \
        [--attention-init 1.0] [--eval-every 300] [--sheet clicks.png]

Trains SAM 2 alone (image encoder, prompt encoder, mask decoder; the LLM is built but unused), its decoder alone on
perfect per-object features (`--learner oracle`), or the sanity baseline (`--learner unet`: a plain conv U-Net
given the click as an input channel, click_baseline.py), on SAM 2's
promptable task: one positive click at a random pixel of an object, all clicks of a frame decoded on one image
encoding, the best of the three candidate masks trained toward the object's share of each low-res cell (soft
targets: the reference's nearest-resized targets alone cap the IoU scored here near 0.7, training.ceiling). Every `--eval-every` steps, on held-out frames (data seed + 1), for each click: the
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
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from strvos_core.metrics.region import jaccard_per_frame
from strvos_core.modeling.grounding import ImageFeatures
from strvos_core.processing import image as image_processing
from strvos_core.training import losses
from strvos_core.training.build import build_model
from strvos_core.training.ceiling import round_trip
from strvos_core.training.click_baseline import ClickUNet
from strvos_core.training.config import TrainConfig
from strvos_core.training.data import Click, Sample, SyntheticPool
from strvos_core.training.probe_loop import optimizer_step, scheduled_evaluations
from strvos_core.training.promptable import NOT_A_POINT, POSITIVE, sample_prompts


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


class Sam2Clicks:
    """SAM 2 of a model (image encoder, prompt encoder, mask decoder) as the probe's learner."""

    name = "sam2"

    def __init__(self, model) -> None:
        self.grounding = model.grounding_encoder
        sam = self.grounding.sam2_model
        self.parameters = [p for module in (sam.image_encoder, sam.sam_prompt_encoder, sam.sam_mask_decoder)
                           for p in module.parameters()] + [sam.no_mem_embed]

    def encode(self, sam_image: torch.Tensor, labels: np.ndarray):
        return self.grounding.image_features(sam_image)

    def candidates(self, encoded, points: torch.Tensor) -> torch.Tensor:
        """[N, 2] clicks in pixels of the SAM input -> [N, 3, S/4, S/4] candidate logits (all clicks decoded at once
        on the one image embedding, each led by a "not a point" token: the [SEG] path's layout)."""
        led = torch.cat([torch.zeros_like(points)[:, None], points[:, None]], dim=1)
        labels = torch.tensor([[NOT_A_POINT, POSITIVE]] * len(points))
        return self.grounding.prompt_masks(encoded, led, labels)[0]


class OracleClicks(Sam2Clicks):
    """SAM 2's prompt encoder and mask decoder alone, on perfect features instead of the image encoder's: every pixel
    carries a fixed random vector of its object (zero on the background), pooled to each feature level. Tells a
    decoder that cannot select from one whose image features do not allow it."""

    name = "oracle"
    SLOTS = 256  # object ids of a labels map (uint8)

    def __init__(self, model) -> None:
        super().__init__(model)
        sam = self.grounding.sam2_model
        self.parameters = [p for module in (sam.sam_prompt_encoder, sam.sam_mask_decoder) for p in module.parameters()]
        size = model.config.grounding.image_size
        generator = torch.Generator().manual_seed(1)
        self.levels = []  # (grid side, [SLOTS, channels]) for the embedding and the two high-res levels
        for stride, channels in ((16, sam.hidden_dim), (8, 64), (4, 32)):
            table = torch.randn(self.SLOTS, channels, generator=generator)
            table[0] = 0.0
            self.levels.append((size // stride, table))

    def encode(self, sam_image: torch.Tensor, labels: np.ndarray):
        one_hot = F.one_hot(torch.from_numpy(labels.astype(np.int64)), self.SLOTS).permute(2, 0, 1).float()[None]
        maps = [torch.einsum("bkhw,kc->bchw", F.adaptive_avg_pool2d(one_hot, side), table)
                for side, table in self.levels]
        return ImageFeatures(maps[0], [maps[2], maps[1]])


class UNetClicks:
    """The plain conv U-Net of `click_baseline` as the probe's learner: the sanity baseline."""

    def __init__(self, full_resolution: bool = False) -> None:
        self.name = "unet-full" if full_resolution else "unet"
        self.net = ClickUNet(full_resolution=full_resolution)
        self.parameters = list(self.net.parameters())

    def encode(self, sam_image: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
        return sam_image

    def candidates(self, encoded: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return self.net(encoded, points)


LEARNERS = ("sam2", "oracle", "unet", "unet-full")
EVAL_CLICKS = 8  # more than a synthetic frame has objects


class ClickProbe:
    """A learner (SAM 2 of a training config's model, or the U-Net baseline) trained on clicks alone."""

    def __init__(self, config: TrainConfig, lr: float = 1e-3, clicks_per_frame: int = 4, warmup: int = 30,
                 learner: str = "sam2", attention_init: float | None = None, encoder_lr_scale: float = 1.0) -> None:
        if learner not in LEARNERS:
            raise ValueError(f"learner must be one of {LEARNERS}, got {learner!r}")
        model_section = config.model
        if attention_init is not None:
            model_section = dataclasses.replace(model_section, decoder_attention_init=attention_init)
        self.config = dataclasses.replace(config, model=model_section, data=dataclasses.replace(
            config.data, clicks_per_frame=clicks_per_frame, stage="image"))
        self.model = build_model(self.config.model)  # the SAM 2 learner's modules; sizes and processing for both
        self.model.eval()  # no dropout; gradients still flow
        self.learner = UNetClicks(learner == "unet-full") if learner.startswith("unet") else \
            {"sam2": Sam2Clicks, "oracle": OracleClicks}[learner](self.model)
        self.parameters = self.learner.parameters
        for p in self.parameters:
            p.requires_grad_(True)
        encoder = {id(p) for p in self.model.grounding_encoder.sam2_model.image_encoder.parameters()}
        groups = [{"params": [p for p in self.parameters if id(p) not in encoder]},
                  {"params": [p for p in self.parameters if id(p) in encoder], "lr": lr * encoder_lr_scale}]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr,
                                           weight_decay=self.config.optim.weight_decay)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: min(1.0, (s + 1) / warmup))
        self.train_pool = SyntheticPool(self.config.data)
        # every visible object of a held-out frame clicked once, whatever the training clicks: one evaluation set
        self.held_out = SyntheticPool(dataclasses.replace(self.config.data, seed=self.config.data.seed + 1,
                                                          clicks_per_frame=EVAL_CLICKS))
        self.size = self.model.config.grounding.image_size
        self.clicks_per_frame = clicks_per_frame

    def _encode(self, sample: Sample):
        return self.learner.encode(image_processing.sam2_image(sample.frames[0], self.size), sample.labels[0])

    def _points(self, sample: Sample, clicks: list[Click]) -> torch.Tensor:
        """Clicks in frame pixels -> [N, 2] pixels of the squashed SAM input."""
        height, width = sample.frames[0].shape[:2]
        return torch.tensor([[c.x * self.size / width, c.y * self.size / height] for c in clicks])

    def train_step(self, step: int) -> float | None:
        """One frame's `clicks_per_frame` clicks (every visible object once, then objects again at random: SAM 2
        decodes many prompts per image encoding); None when the frame had no clickable object."""
        sample = self.train_pool.sample(step, 0, 0, 0)
        rng = np.random.default_rng([self.config.data.seed, step, 7])
        clicks = [Click(float(p.points[0, 0]), float(p.points[0, 1]), p.mask) for p in
                  sample_prompts(sample.labels[0], self.clicks_per_frame, 0.0, 0.0, rng)]
        if not clicks:
            return None
        candidates = self.learner.candidates(self._encode(sample), self._points(sample, clicks))
        side = candidates.shape[-1]
        goals = torch.stack([F.interpolate(torch.from_numpy(c.mask.astype(np.float32))[None, None], size=(side, side),
                                           mode="area")[0, 0] for c in clicks])
        loss = losses.best_candidate_loss(self.config.loss, candidates, goals).mean()
        value = optimizer_step(self.optimizer, self.parameters, loss, self.config.optim.grad_clip)
        self.schedule.step()
        return value

    @torch.no_grad()
    def candidates(self, sample: Sample, clicks: list[Click]) -> torch.Tensor:
        """[N, 3, H, W] candidate logits at the frame's size (bilinear, as the model upsamples its low-res logits)."""
        height, width = sample.frames[0].shape[:2]
        low = self.learner.candidates(self._encode(sample), self._points(sample, clicks))
        return F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)

    def evaluate(self, frames: int) -> tuple[float, float, float, int]:
        rows = []
        for index in range(frames):
            sample = self.held_out.sample(0, 0, 0, index)
            clicks = sample.clicks[0] if sample.clicks else []
            if not clicks:
                continue
            for click, masks in zip(clicks, (self.candidates(sample, clicks) > 0).numpy(), strict=True):
                scores = [overlaps(m, sample.labels[0], click.mask) for m in masks]
                rows.append(max(scores, key=lambda s: s[0]))
        if not rows:
            raise ValueError("no held-out frame had a clickable object")
        own, others, objects = np.mean(rows, axis=0)
        return float(own), float(others), float(objects), len(rows)

    def ceiling(self, frames: int) -> float:
        """The mean own IoU a perfect learner reaches on the held-out clicks at this learner's output grid: each
        object's share of every grid cell, upsampled as the candidates are (training.ceiling's "area" round trip).
        SAM 2 at 160 px predicts a 40x40 grid: no model scores above this there, whatever it learned."""
        side, masks = None, []
        for index in range(frames):
            sample = self.held_out.sample(0, 0, 0, index)
            clicks = sample.clicks[0] if sample.clicks else []
            if clicks and side is None:
                with torch.no_grad():
                    side = self.learner.candidates(self._encode(sample), self._points(sample, clicks[:1])).shape[-1]
            masks.extend(c.mask for c in clicks)
        if not masks:
            raise ValueError("no held-out frame had a clickable object")
        back = round_trip(np.stack(masks), side, "area")
        return float(np.mean([jaccard_per_frame(a, b) for a, b in zip(masks, back, strict=True)]))

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
            probabilities = torch.sigmoid(self.candidates(sample, [click])[0]).numpy()
            grey = [np.repeat((p * 255).astype(np.uint8)[..., None], 3, axis=2)
                    for p in (click.mask.astype(np.float32), *probabilities)]
            rows.append(np.concatenate([image, *grey], axis=1))
        if not rows:
            raise ValueError("no held-out frame had a clickable object")
        if not cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")


def run(config: TrainConfig, steps: int, lr: float = 1e-3, eval_every: int = 300, eval_frames: int = 40,
        sheet: str | Path | None = None, log=print, **probe_options) -> list[ClickScores]:
    probe = ClickProbe(config, lr=lr, **probe_options)
    log(f"{probe.learner.name}: a perfect fit of its output grid scores own IoU {probe.ceiling(eval_frames):.3f} "
        f"on these held-out clicks")
    results = []
    for step, loss, (own, others, objects, clicks), seconds in scheduled_evaluations(
            probe.train_step, lambda: probe.evaluate(eval_frames), steps, eval_every):
        results.append(ClickScores(step, loss, own, others, objects, clicks))
        log(f"step {step}: click loss {loss:.3f}  held-out IoU own {own:.3f}  "
            f"others {others:.3f}  objects {objects:.3f}  ({clicks} clicks, {seconds:.0f} s)")
    if sheet is not None:
        probe.sheet(sheet)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="a training config (its model and data sections are used)")
    parser.add_argument("--learner", choices=LEARNERS, default="sam2",
                        help="sam2: the config's SAM 2; oracle: its decoder on perfect per-object features; unet: the "
                             "plain conv baseline (click as an input channel) at SAM 2's logits size; unet-full: the same at the "
                             "input size (whether the data allow more than that grid)")
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps (one frame each)")
    parser.add_argument("--clicks", type=int, default=4,
                        help="clicks per training frame (every visible object once, then again at random)")
    parser.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    parser.add_argument("--encoder-lr-scale", type=float, default=1.0,
                        help="SAM 2 image encoder's learning rate relative to --lr")
    parser.add_argument("--attention-init", type=float, default=None,
                        help="mimetic init of SAM 2's decoder attention at this scale (default: the config's)")
    parser.add_argument("--eval-every", type=int, default=300, help="steps between held-out evaluations")
    parser.add_argument("--eval-frames", type=int, default=40, help="held-out frames per evaluation")
    parser.add_argument("--sheet", help="write a PNG contact sheet of held-out clicks here at the end")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    if min(args.steps, args.eval_every, args.eval_frames, args.clicks) < 1:
        parser.error("--steps, --clicks, --eval-every and --eval-frames must be >= 1")
    if args.encoder_lr_scale <= 0 or (args.attention_init is not None and args.attention_init <= 0):
        parser.error("--encoder-lr-scale and --attention-init must be > 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = run(TrainConfig.from_yaml(args.config), args.steps, args.lr, args.eval_every, args.eval_frames,
                  args.sheet, learner=args.learner, clicks_per_frame=args.clicks, attention_init=args.attention_init,
                  encoder_lr_scale=args.encoder_lr_scale)
    print("| steps | click loss | own IoU | others IoU | objects IoU |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r.step} | {r.train_loss:.3f} | {r.own:.3f} | {r.others:.3f} | {r.objects:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
