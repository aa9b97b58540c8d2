"""Can the LLM's vision path learn what each object is? A learner trained on per-cell attributes alone.

    python -m strvos_core.training.attribute_probe --config configs/train/tiny_stage1.yaml --learner vit --steps 1000
    python -m strvos_core.training.attribute_probe --config ... --learner vit --init runs/tiny_s2   (a run's ViT)
    python -m strvos_core.training.attribute_probe --config ... --learner conv                      (the baseline)
    python -m strvos_core.training.attribute_probe --config configs/train/tiny_vision.yaml --save FILE  (pre-training)

The learner maps a frame to the LLM's token grid (the ViT + pixel shuffle + mlp1 of the config, fresh or from a
run's newest checkpoint; or a plain conv net, the sanity baseline, on the same frames) and a linear head predicts
every cell's size / colour / texture / shape: the attribute head's soft shares (`attributes.AttributeHead`) plus a
cross-entropy over the values on the cells that one object covers for more than half (a few percent of the cells:
without it the background dominates). Scored on held-out frames: per attribute, the head's accuracy on those cells
and the share of the commonest value. If the conv net learns an attribute that the ViT does not, the data and the
scoring are sound and the gap is in the ViT.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from strvos_core.datasets.synthetic.vocabulary import ATTRIBUTES
from strvos_core.modeling.conv_trunk import conv_block
from strvos_core.modeling.vision import image_tokens
from strvos_core.processing import image as image_processing
from strvos_core.training import checkpointing
from strvos_core.training.attributes import GROUP_SIZES, AttributeHead, attribute_targets, object_cell_loss
from strvos_core.training.build import build_model
from strvos_core.training.config import TrainConfig
from strvos_core.training.data import SyntheticPool
from strvos_core.training.export import save_vision
from strvos_core.training.probe_loop import optimizer_step, scheduled_evaluations

LEARNERS = ("vit", "conv")


class ConvGrid(nn.Module):
    """RGB frame -> [side * side, dim] features of a side x side grid over it: four conv levels (the deepest at 1/8
    of a 168 px input sees a 25-55 px object whole), pooled to the grid."""

    def __init__(self, side: int, dim: int = 128, size: int = 168) -> None:
        super().__init__()
        self.side, self.size = side, size
        widths = (32, 64, 96, dim)
        self.levels = nn.ModuleList([conv_block(3, widths[0])] + [conv_block(widths[i], widths[i + 1])
                                                                  for i in range(3)])

    def forward(self, frame: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(frame).permute(2, 0, 1).float()[None] / 255.0
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        for level, block in enumerate(self.levels):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
        return F.adaptive_avg_pool2d(x, self.side)[0].flatten(1).T


class VisionGrid(nn.Module):
    """The LLM's vision path of a model (ViT, pixel shuffle, mlp1): frame -> [tokens, hidden] as the LLM gets them."""

    def __init__(self, model) -> None:
        super().__init__()
        self.config = model.config
        self.vision, self.mlp1 = model.vision_model.float(), model.mlp1.float()

    def forward(self, frame: np.ndarray) -> torch.Tensor:
        cfg = self.config
        tiles = image_processing.llm_tiles(frame, cfg.tile_size, cfg.min_dynamic_patch, cfg.max_dynamic_patch,
                                           cfg.use_thumbnail)
        tokens = image_tokens(self.vision, self.mlp1, tiles, cfg)
        return tokens.reshape(-1, tokens.shape[-1])


class AttributeProbe:
    """A learner + attribute head trained on frames of the config's synthetic pool (its own seed and size)."""

    def __init__(self, config: TrainConfig, learner: str = "vit", init: str | Path | None = None, lr: float = 3e-4,
                 batch: int = 8, videos: int = 20000, frames_per_video: int = 8, seed: int = 0) -> None:
        if learner not in LEARNERS:
            raise ValueError(f"attribute_probe: learner must be one of {LEARNERS}, got {learner!r}")
        torch.manual_seed(seed)
        model = checkpointing.load_model(checkpointing.list_checkpoints(init)[-1]) if init is not None \
            else build_model(config.model)
        self.model = model
        vision = VisionGrid(model)
        self.side = int(round(vision(np.zeros((config.data.height, config.data.width, 3), np.uint8)).shape[0] ** 0.5))
        self.learner = vision if learner == "vit" else ConvGrid(self.side)
        dim = model.config.language.hidden_size if learner == "vit" else 128
        self.head = AttributeHead(dim, position=True)
        self.parameters = list(self.learner.parameters()) + list(self.head.parameters())
        for parameter in self.parameters:
            parameter.requires_grad_(True)
        self.optimizer = torch.optim.AdamW(self.parameters, lr=lr, weight_decay=0.05)
        self.batch = batch
        # many short videos, generated as drawn and not kept (20000 would take ~50 GB): with the 600 of the [SEG]
        # stages a learner can recall each object's shape instead of seeing it (the ViT's training loss fell while
        # held-out shape stayed at chance)
        self.train_pool = SyntheticPool(dataclasses.replace(
            config.data, seed=seed + 11, stage="image", num_videos=videos, frames_per_video=frames_per_video,
            clicks_per_frame=0, expressions_per_sample=1), keep_videos=False)
        self.held_out = SyntheticPool(dataclasses.replace(config.data, seed=777, stage="image", clicks_per_frame=0,
                                                          expressions_per_sample=1))

    def _loss(self, frame: np.ndarray, labels: np.ndarray, attributes: dict) -> torch.Tensor:
        features = self.learner(frame)
        targets = attribute_targets(labels, attributes, (self.side, self.side))
        grid = (self.side, self.side)
        return self.head.loss(features, targets, grid) + object_cell_loss(self.head.linear(features), targets)

    def train_step(self, step: int) -> float:
        self.learner.train()
        loss = sum(self._loss(s.frames[0], s.labels[0], s.attributes)
                   for s in (self.train_pool.sample(step, micro, 0, 0) for micro in range(self.batch))) / self.batch
        return optimizer_step(self.optimizer, self.parameters, loss, 1.0)

    @torch.no_grad()
    def evaluate(self, frames: int) -> dict[str, tuple[float, float]]:
        """attribute -> (held-out accuracy on the cells one object mostly covers, the commonest value's share)."""
        self.learner.eval()
        hits = dict.fromkeys(ATTRIBUTES, 0)
        counts: dict[str, dict[int, int]] = {a: {} for a in ATTRIBUTES}
        cells = 0
        for index in range(frames):
            sample = self.held_out.sample(0, 0, 0, index)
            targets = attribute_targets(sample.labels[0], sample.attributes, (self.side, self.side))
            logits = self.head.linear(self.learner(sample.frames[0]))
            start = 0
            for attribute, size in zip(ATTRIBUTES, GROUP_SIZES, strict=True):
                keep = targets[:, start + size - 1] < 0.5
                values = slice(start, start + size - 1)
                gold = targets[keep, values].argmax(dim=1)
                hits[attribute] += int((logits[keep, values].argmax(dim=1) == gold).sum())
                for value in gold.tolist():
                    counts[attribute][value] = counts[attribute].get(value, 0) + 1
                start += size
            cells += int((targets[:, GROUP_SIZES[0] - 1] < 0.5).sum())
        if cells == 0:
            raise ValueError(f"attribute_probe: no cell of {frames} held-out frames is mostly one object")
        return {a: (hits[a] / cells, max(counts[a].values()) / cells) for a in ATTRIBUTES}


def run(probe: AttributeProbe, steps: int, eval_every: int = 100, eval_frames: int = 40, log=print,
        save: str | Path | None = None) -> list[tuple[int, float, dict[str, tuple[float, float]], float]]:
    """Trains `steps` steps, evaluating every `eval_every` and at the end: (step, mean loss, scores, seconds so far)
    rows. With `save`, the model's vision path is written there (`export.save_vision`) at every evaluation."""
    if save is not None and not isinstance(probe.learner, VisionGrid):
        raise ValueError("attribute_probe: --save writes the model's vision path; the conv baseline is not one")
    results = []
    for row in scheduled_evaluations(probe.train_step, lambda: probe.evaluate(eval_frames), steps, eval_every):
        results.append(row)
        step, loss, scores, seconds = row
        log(f"step {step}: loss {loss:.3f}  " + "  ".join(
            f"{a} {acc:.3f} (commonest {common:.2f})" for a, (acc, common) in scores.items()) + f"  ({seconds:.0f} s)")
        if save is not None:
            save_vision(probe.model, save)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="a training config (its model and data sections are used)")
    parser.add_argument("--learner", choices=LEARNERS, default="vit")
    parser.add_argument("--init", help="take the ViT + mlp1 from this run's newest checkpoint (default: fresh)")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps of --batch frames")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--videos", type=int, default=20000, help="training videos (generated as they are drawn)")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-frames", type=int, default=40)
    parser.add_argument("--vision-position-init", type=float, default=None,
                        help="a fresh ViT's position embeddings start as a 2D sine-cosine table of this RMS "
                             "(model.vision_position_init; default: the config's)")
    parser.add_argument("--save", help="write the trained vision path (vision_model + mlp1) here at every "
                        "evaluation: the file stage 1's model.vision_init loads")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = TrainConfig.from_yaml(args.config)
    if args.vision_position_init is not None:
        config.model.vision_position_init = args.vision_position_init
    probe = AttributeProbe(config, args.learner, args.init, args.lr, args.batch, args.videos)
    results = run(probe, args.steps, args.eval_every, args.eval_frames, save=args.save)
    print(results_table(results))
    return 0


def results_table(results: list[tuple[int, float, dict[str, tuple[float, float]], float]]) -> str:
    """Markdown: held-out accuracy per attribute at each evaluation (the model card copies it)."""
    lines = ["| step | loss | " + " | ".join(ATTRIBUTES) + " | seconds |", "|---" * (len(ATTRIBUTES) + 3) + "|"]
    for step, loss, scores, seconds in results:
        lines.append(f"| {step} | {loss:.3f} | " + " | ".join(f"{scores[a][0]:.3f}" for a in ATTRIBUTES)
                     + f" | {seconds:.0f} |")
    common = results[-1][2]
    lines.append("| commonest value | | " + " | ".join(f"{common[a][1]:.3f}" for a in ATTRIBUTES) + " | |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
