"""Does a training checkpoint's mask follow the expression? Cheap probes on held-out synthetic frames.

    python -m strvos_core.training.probe --run runs/tiny_s1 [--frames 120] [--seed 777]

Per frame, several expressions of distinct targets (appearance + relation) go through the training forward:
* own / other IoU: the [SEG] mask's IoU (at the low-res logits' size) with its own target and with the frame's other
  targets. A model that ignores the text scores the same on both.
* min cosine: the smallest cosine between the projected [SEG] tokens of one frame's expressions (1.000 = one token).
* position R^2: how well the target's centre is predicted linearly (fit on 2/3 of the targets, scored on the rest)
  from the [SEG] state and from the projected token: the decoder follows positions, so the token must carry one.
* the LLM's last layer, link by link: the [SEG] attention's mass on the target's token cells (and the mass a uniform
  attention would put there), and the position R^2 of the image token at the target's centre and of the
  attention-weighted mix of image tokens the [SEG] row reads (both at the last layer's input), and of what it
  actually reads: the attention-weighted value contributions (`read`). Attention on the target with no position in
  what it reads means the values, not the search, fail.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from strvos_core.metrics.region import jaccard_per_frame
from strvos_core.modeling.vision import token_grid_side
from strvos_core.training import checkpointing
from strvos_core.training.data import SyntheticPool, low_res_mask
from strvos_core.training.forward import TrainingModel, mask_centre, value_contributions


def _held_out_r2(features: np.ndarray, goal: np.ndarray, ridge: float = 0.1) -> float:
    """Ridge regression (penalty `ridge` x the mean feature variance, so a few hundred targets do not overfit 256
    dimensions) fit on the first 2/3, R^2 on the last third (negative: worse than the mean)."""
    split = len(goal) * 2 // 3
    if split < 2 or len(goal) - split < 2:
        return float("nan")
    mean = features[:split].mean(axis=0)
    x = np.c_[features - mean, np.ones(len(features))]
    gram = x[:split].T @ x[:split]
    penalty = ridge * np.trace(gram[:-1, :-1]) / max(gram.shape[0] - 1, 1) * np.eye(gram.shape[0])
    penalty[-1, -1] = 0.0  # the intercept is not penalised
    weights = np.linalg.solve(gram + penalty, x[:split].T @ goal[:split])
    residual = ((x[split:] @ weights - goal[split:]) ** 2).sum()
    spread = ((goal[split:] - goal[split:].mean(axis=0)) ** 2).sum()
    return float(1.0 - residual / max(spread, 1e-12))


def probe(run: str | Path, frames: int = 120, seed: int = 777,
          kinds: tuple[str, ...] = ("appearance", "relation")) -> dict[str, float]:
    """The newest checkpoint of `run` (a training output folder) probed on `frames` held-out frames, with expressions
    of `kinds` (single-frame kinds: appearance, relation)."""
    directory = checkpointing.list_checkpoints(run)[-1]
    config = checkpointing.load_train_config(directory)
    model = checkpointing.load_model(directory)
    model.eval()
    # the [SEG] attention row is wanted whatever the run trained with (eager attention computes what sdpa does)
    # (and the masks, whatever the run trained: an LLM-side stage decodes none)
    trainer = TrainingModel(model, dataclasses.replace(config.loss, seg_attention_weight=1.0, seg_mask_weight=1.0))
    trainer.keep_image_inputs = True
    data = dataclasses.replace(config.data, seed=seed, stage="image", clicks_per_frame=0,
                               expressions_per_sample=max(config.data.expressions_per_sample, 4),
                               kinds=tuple(kinds), absent_per_sample=0)
    pool = SyntheticPool(data)
    own, other, cosines, states, tokens, centres = [], [], [], [], [], []
    mass, uniform, at_centre, attended, read = [], [], [], [], []
    with torch.no_grad():
        for index in range(frames):
            sample = pool.sample(0, 0, 0, index)
            trainer([sample])
            outputs = [frames_of_target[0] for frames_of_target in trainer.last_frames]
            truth = [low_res_mask(t.masks[0], model.config).numpy() > 0.5 for t in sample.targets]
            for k, out in enumerate(outputs):
                pred = out.low_res_logits[0, 0].numpy() > 0
                own.append(float(jaccard_per_frame(truth[k], pred)))
                other.extend(float(jaccard_per_frame(truth[j], pred)) for j in range(len(truth))
                             if j != k and not np.array_equal(truth[j], truth[k]))
                mask = sample.targets[k].masks[0]
                if mask.any():
                    centres.append(mask_centre(mask))
                    states.append(out.seg_hidden[0].float().numpy())
                    tokens.append(out.prompt[0].float().numpy())
                    link = _attention_link(model, out.image_inputs, out.seg_attention.float(), mask)
                    for values, value in zip((mass, uniform, at_centre, attended, read), link, strict=True):
                        values.append(value)
            if len(outputs) > 1:
                unit = torch.nn.functional.normalize(torch.cat([o.prompt for o in outputs]).float(), dim=1)
                similarity = unit @ unit.T
                cosines.append(float(similarity[~torch.eye(len(outputs), dtype=torch.bool)].min()))
    centres_arr = np.array(centres)
    return {
        "step": int(directory.name.split("_")[-1]),
        "own_iou": float(np.mean(own)) if own else float("nan"),
        "other_iou": float(np.mean(other)) if other else float("nan"),
        "min_cosine": float(np.mean(cosines)) if cosines else float("nan"),
        "state_position_r2": _held_out_r2(np.array(states), centres_arr) if states else float("nan"),
        "token_position_r2": _held_out_r2(np.array(tokens), centres_arr) if tokens else float("nan"),
        "attention_on_target": float(np.mean(mass)) if mass else float("nan"),
        "uniform_on_target": float(np.mean(uniform)) if uniform else float("nan"),
        "centre_token_position_r2": _held_out_r2(np.array(at_centre), centres_arr) if at_centre else float("nan"),
        "attended_position_r2": _held_out_r2(np.array(attended), centres_arr) if attended else float("nan"),
        "read_position_r2": _held_out_r2(np.array(read), centres_arr) if read else float("nan"),
        "targets": len(own),
    }


def _attention_link(model, image: torch.Tensor, attention: torch.Tensor,
                    mask: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """For one target: the [SEG] attention's mass on the target's token cells, a uniform attention's mass there, the
    image token at the target's centre cell, the attention-weighted image tokens (`image`: the last layer's input
    there) and what the attention reads: the attention-weighted value contributions (`forward.value_contributions`)."""
    with torch.no_grad():
        values = value_contributions(model.language_model.model.layers[-1], image).float()
    image = image.float()
    side = token_grid_side(image.shape[0], "probe")
    share = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(mask.astype(np.float32))[None, None],
                                                    (side, side)).flatten()
    inside = share > 0
    x, y = mask_centre(mask)
    cell = min(int(y * side), side - 1) * side + min(int(x * side), side - 1)
    return (float(attention[inside].sum()), float(inside.float().mean()), image[cell].numpy(),
            (attention[:, None] * image).sum(dim=0).numpy(), (attention[:, None] * values).sum(dim=0).numpy())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a training output folder (its newest checkpoint is probed)")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--seed", type=int, default=777, help="data seed of the held-out frames")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--kinds", default="appearance,relation",
                        help="expression kinds, comma-separated (one of them alone: where the link fails per kind)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = probe(args.run, args.frames, args.seed, tuple(args.kinds.split(",")))
    print("| " + " | ".join(result) + " |")
    print("|" + "---|" * len(result))
    print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in result.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
