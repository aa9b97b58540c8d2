"""What do the LLM's image tokens say about the object under each cell? Linear probes on held-out synthetic frames.

    python -m strvos_core.training.cell_probe --run runs/tiny_s2 [--frames 150] [--seed 777]

An appearance expression ("the small striped star") can select its object in the [SEG] attention only if the image
tokens' keys say those attributes. For every token cell that one object covers for more than half, and for each
attribute (size, colour, texture, shape), a multinomial logistic regression is fit on the first 2/3 of the cells and
scored on the rest, at three points of the chain: the image tokens the LLM receives (mlp1's output), the last
decoder layer's input at the image positions, and that layer's keys (pre-RoPE). Accuracy near the majority rate
means the attribute is not there (linearly). For a model that sees the previous frame (vision.motion_input), a row
"motion step" does the same for which way the object moved since the frame before (training/motion.py; cells of
frames that have a frame before).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from strvos_core.datasets.synthetic.vocabulary import ATTRIBUTE_VALUES, ATTRIBUTES
from strvos_core.modeling.vision import token_grid_side
from strvos_core.training import checkpointing
from strvos_core.training.data import SyntheticPool
from strvos_core.training.forward import TrainingModel, layer_inputs
from strvos_core.training.motion import STEP_CLASSES

MOTION_ROW = "motion step"

STAGES: tuple[str, ...] = ("tokens", "last_input", "last_keys")


def object_cells(labels: np.ndarray, side: int) -> list[tuple[int, int]]:
    """[H, W] object ids -> (row-major cell index, object id) of each cell of a side x side grid over the image that
    one object covers for more than half."""
    height, width = labels.shape
    cells = []
    for row in range(side):
        for col in range(side):
            block = labels[row * height // side:(row + 1) * height // side, col * width // side:(col + 1) * width // side]
            ids, counts = np.unique(block, return_counts=True)
            best = int(np.argmax(counts))
            if ids[best] != 0 and counts[best] > block.size / 2:
                cells.append((row * side + col, int(ids[best])))
    return cells


def held_out_accuracy(features: np.ndarray, labels: np.ndarray, classes: int, l2: float = 1e-3) -> float:
    """Multinomial logistic regression (standardised features, L-BFGS, L2 `l2`) fit on the first 2/3 of the rows,
    accuracy on the rest."""
    split = len(labels) * 2 // 3
    x = torch.as_tensor(features, dtype=torch.float64)
    mean, std = x[:split].mean(dim=0), x[:split].std(dim=0) + 1e-6
    x = (x - mean) / std
    y = torch.as_tensor(labels, dtype=torch.long)
    linear = torch.nn.Linear(x.shape[1], classes, dtype=torch.float64)
    optimiser = torch.optim.LBFGS(linear.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(linear(x[:split]), y[:split]) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return float((linear(x[split:]).argmax(dim=1) == y[split:]).double().mean())


def cell_probe(run: str | Path, frames: int = 150, seed: int = 777) -> dict[str, dict[str, float]]:
    """attribute -> {stage: held-out accuracy, "majority": the commonest value's share of the held-out cells}."""
    directory = checkpointing.list_checkpoints(run)[-1]
    config = checkpointing.load_train_config(directory)
    model = checkpointing.load_model(directory)
    model.eval()
    trainer = TrainingModel(model, dataclasses.replace(config.loss, seg_attention_weight=0.0, value_position_weight=0.0,
                                                       seg_attribute_weight=0.0))
    pool = SyntheticPool(dataclasses.replace(config.data, seed=seed, stage="image", clicks_per_frame=0,
                                             expressions_per_sample=1, kinds=("appearance",)))
    layers = model.language_model.model.layers
    features: dict[str, list[np.ndarray]] = {stage: [] for stage in STAGES}
    values: dict[str, list[int]] = {attribute: [] for attribute in ATTRIBUTES}
    motion_features: dict[str, list[np.ndarray]] = {stage: [] for stage in STAGES}
    motion_values: list[int] = []
    with torch.no_grad(), layer_inputs(layers[0]) as first, layer_inputs(layers[-1]) as last:
        for index in range(frames):
            sample = pool.sample(0, 0, 0, index)
            first.clear()
            last.clear()
            trainer([sample])
            ids = model.prompt_ids(sample.targets[0].expression, 1)[0]
            image = ids == model.token_ids.img_context
            side = token_grid_side(int(image.sum()), "cell_probe")
            cells = object_cells(sample.labels[0], side)
            if not cells:
                continue
            rows = [cell for cell, _ in cells]
            prefix = first[0].shape[1]  # the first pass is the prompt's shared start, all image tokens included
            last_input = last[0][0][image[:prefix]]
            attention = layers[-1].self_attn
            stage_features = {"tokens": first[0][0][image[:prefix]], "last_input": last_input,
                              "last_keys": attention.k_proj(layers[-1].input_layernorm(last_input))}
            for stage, tensor in stage_features.items():
                features[stage].append(tensor[rows].float().numpy())
            steps = sample.steps[0] if model.uses_previous_frame and sample.steps else {}
            moved = [(cell, obj_id) for cell, obj_id in cells if obj_id in steps]
            for stage, tensor in stage_features.items():
                motion_features[stage].append(tensor[[cell for cell, _ in moved]].float().numpy())
            motion_values.extend(STEP_CLASSES.index(steps[obj_id]) for _, obj_id in moved)
            for _, obj_id in cells:
                for attribute in ATTRIBUTES:
                    values[attribute].append(ATTRIBUTE_VALUES[attribute].index(sample.attributes[obj_id][attribute]))
    if not values[ATTRIBUTES[0]]:
        raise ValueError(f"cell_probe: no token cell of {frames} frames is mostly one object")
    result = {}
    rows_to_fit = [(attribute, features, np.array(values[attribute]), len(ATTRIBUTE_VALUES[attribute]))
                   for attribute in ATTRIBUTES]
    if len(motion_values) >= 3:
        rows_to_fit.append((MOTION_ROW, motion_features, np.array(motion_values), len(STEP_CLASSES)))
    for name, table, labels, classes in rows_to_fit:
        held_out = labels[len(labels) * 2 // 3:]
        row = {stage: held_out_accuracy(np.concatenate(table[stage]), labels, classes) for stage in STAGES}
        row["majority"] = float(np.bincount(held_out).max() / len(held_out))
        result[name] = row
    result["cells"] = {"count": float(len(values[ATTRIBUTES[0]]))}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a training output folder (its newest checkpoint is probed)")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--seed", type=int, default=777, help="data seed of the held-out frames")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = cell_probe(args.run, args.frames, args.seed)
    cells = int(result.pop("cells")["count"])
    print(f"{cells} object cells, fit on 2/3, scored on 1/3 (held-out accuracy; majority = the commonest value)")
    print("| attribute | " + " | ".join(STAGES) + " | majority |")
    print("|" + "---|" * (len(STAGES) + 2))
    for attribute, row in result.items():
        print(f"| {attribute} | " + " | ".join(f"{row[stage]:.3f}" for stage in STAGES) + f" | {row['majority']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
