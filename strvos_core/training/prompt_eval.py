"""How well does a model's SAM 2 answer its own prompts? Held-out click and box IoU (stage "promptable" targets).

    python -m strvos_core.training.prompt_eval --run runs/tiny_s0 [--frames 60] [--seed 777]
    python -m strvos_core.training.prompt_eval --model models/tiny_s0            # an export

On held-out synthetic frames (data seed `--seed`, never a training seed), every visible object is prompted once
with a click at a random pixel of its own and once with its exact box; each prediction is upsampled to the frame
as the model upsamples its logits (bilinear, threshold 0) and scored against the object, at the frame's size:
* click best: the best of the three candidates (what the multi-mask loss trains; the click probe's "own");
* click chosen: the candidate SAM 2's IoU head ranks first (what the [SEG] path keeps);
* click others: the chosen mask's IoU with the frame's other objects (a mask of "every object" scores high here);
* box: the single mask SAM 2 gives a box;
* exemplar: the IoU-head-chosen mask for the object's exemplar token (its mean SAM 2 embedding, promptable.py).
Prompts use the training layout (a leading "not a point" token, as on the [SEG] path).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from strvos_core.metrics.region import jaccard_per_frame
from strvos_core.processing import image as image_processing
from strvos_core.training import checkpointing
from strvos_core.training.config import DataSection
from strvos_core.training.data import SyntheticPool
from strvos_core.training.promptable import (
    BOX_BOTTOM_RIGHT,
    BOX_TOP_LEFT,
    MIN_PROMPT_AREA,
    NOT_A_POINT,
    POSITIVE,
    exemplar_tokens,
)
from strvos_core.training.targets import low_res_mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(jaccard_per_frame(a, b))


def _upsampled(logits: torch.Tensor, height: int, width: int) -> np.ndarray:
    return (F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False) > 0).numpy()


@torch.no_grad()
def evaluate(model, data: DataSection, frames: int = 60, seed: int = 777) -> dict[str, float]:
    """Mean IoUs over every prompted object of `frames` held-out frames (see the module docstring)."""
    grounding = model.grounding_encoder
    size = model.config.grounding.image_size
    pool = SyntheticPool(dataclasses.replace(data, seed=seed, stage="promptable", prompts_per_frame=1))
    rows: dict[str, list[float]] = {"click_best": [], "click_chosen": [], "click_others": [], "box": [],
                                    "exemplar": []}
    for index in range(frames):
        sample = pool.sample(0, 0, 0, index)
        frame, labels = sample.frames[0], sample.labels[0]
        height, width = labels.shape
        rng = np.random.default_rng([seed, index])
        ids, areas = np.unique(labels[labels > 0], return_counts=True)
        ids = ids[areas >= MIN_PROMPT_AREA]
        scale = np.array([size / width, size / height], np.float32)
        clicks, boxes, masks = [], [], []
        for obj_id in ids:
            mask = labels == obj_id
            ys, xs = np.nonzero(mask)
            k = int(rng.integers(len(xs)))
            clicks.append([[0.0, 0.0], [(xs[k] + 0.5) * scale[0], (ys[k] + 0.5) * scale[1]]])
            boxes.append([[0.0, 0.0], [xs.min() * scale[0], ys.min() * scale[1]],
                          [(xs.max() + 1) * scale[0], (ys.max() + 1) * scale[1]]])
            masks.append(mask)
        image = image_processing.sam2_image(frame, size).to(model.device, model.dtype)
        features = grounding.image_features(image)
        click_labels = torch.tensor([[NOT_A_POINT, POSITIVE]] * len(ids))
        box_labels = torch.tensor([[NOT_A_POINT, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT]] * len(ids))
        click_logits, click_ious, _ = grounding.prompt_masks(features, torch.tensor(clicks), click_labels)
        box_logits, _, _ = grounding.prompt_masks(features, torch.tensor(boxes), box_labels, multimask=False)
        shares = torch.stack([low_res_mask(m, model.config, "area") for m in masks])
        exemplar_logits, exemplar_ious, _ = grounding.token_masks(features, exemplar_tokens(features.image_embed,
                                                                                             shares))
        click_masks, box_masks = _upsampled(click_logits, height, width), _upsampled(box_logits, height, width)
        exemplar_masks = _upsampled(exemplar_logits, height, width)
        chosen = click_ious.argmax(dim=1).numpy()
        exemplar_chosen = exemplar_ious.argmax(dim=1).numpy()
        for i, mask in enumerate(masks):
            others = (labels > 0) & ~mask
            rows["click_best"].append(max(_iou(mask, candidate) for candidate in click_masks[i]))
            rows["click_chosen"].append(_iou(mask, click_masks[i, chosen[i]]))
            rows["click_others"].append(_iou(others, click_masks[i, chosen[i]]) if others.any() else 0.0)
            rows["box"].append(_iou(mask, box_masks[i, 0]))
            rows["exemplar"].append(_iou(mask, exemplar_masks[i, exemplar_chosen[i]]))
    if not rows["box"]:
        raise ValueError("no held-out frame had a promptable object")
    return {key: float(np.mean(values)) for key, values in rows.items()} | {"objects": len(rows["box"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a training output folder (its newest checkpoint is scored)")
    source.add_argument("--model", help="an export folder (strvos convert) or any model spec load_model accepts")
    parser.add_argument("--frames", type=int, default=60, help="held-out frames (every visible object prompted)")
    parser.add_argument("--seed", type=int, default=777, help="data seed of the held-out frames")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be >= 1")
    torch.set_num_threads(args.threads)
    if args.run:
        checkpoints = checkpointing.list_checkpoints(args.run)
        if not checkpoints:
            parser.error(f"{args.run} holds no checkpoint")
        model = checkpointing.load_model(checkpoints[-1])
        data = checkpointing.load_train_config(checkpoints[-1]).data
        where = checkpoints[-1]
    else:
        from strvos_core.checkpoint import load_model

        model, data, where = load_model(args.model), DataSection(), Path(args.model)
    scores = evaluate(model.eval(), data, args.frames, args.seed)
    print(f"{where}: {scores['objects']} objects of {args.frames} held-out frames (seed {args.seed})")
    print("| click best | click chosen | click others | box | exemplar |")
    print("|---|---|---|---|---|")
    print(f"| {scores['click_best']:.3f} | {scores['click_chosen']:.3f} | {scores['click_others']:.3f} | "
          f"{scores['box']:.3f} | {scores['exemplar']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
