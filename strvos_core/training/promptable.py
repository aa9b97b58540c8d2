"""SAM 2's promptable pre-training (stage "promptable"): what SAM 2 learned before the reference fine-tuned it.

The reference starts from a released SAM 2 that already turns a click or a box into the mask of that object; the
[SEG] token only has to become such a prompt. Trained from random weights, SAM 2 first has to learn that task, on
the synthetic world: per frame, `data.prompts_per_frame` prompts decoded on one image encoding (the decoder is cheap):
* a click: one positive point at a random pixel of an object; three candidates, the best one trained (SAM's
  multi-mask loss for an ambiguous prompt);
* a box: the object's box with SAM's jitter (each coordinate moved by up to 10 % of the box side, at most 20 px);
  one mask (SAM 2 gives a box a single output);
* a corrective click (`data.corrective_fraction` of the clicks): after the first prediction, a second point at the
  pixel of the largest error region farthest from its border (positive on a missed part, negative on a wrong one),
  as SAM 2's interactive training adds points; one mask;
* an exemplar (`data.exemplar_fraction`; ours, not SAM 2's): a token that says *what* the object looks like, not
  where it is: SAM 2's own image embedding averaged over the object (each cell weighted by its share of the object),
  in the [SEG] token's slot (after two "not a point" tokens), three candidates. A [SEG] token can then select by
  content: for "the red square" the LLM has to say what a red square looks like in SAM 2's feature space
  (`loss.seg_exemplar_weight`), not compute where it is.
Every prompt starts with a "not a point" token, the layout of the [SEG] path (two such tokens, then the [SEG]
token), so the decoder learns on the token layout it will be prompted with.
Losses per prompt: the reference's BCE + Dice on the low-res logits, and SAM's IoU head trained toward each
candidate's actual IoU (MSE), which the [SEG] path uses to pick its mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from strvos_core.training import losses
from strvos_core.training.config import LossSection
from strvos_core.training.targets import low_res_mask

MIN_PROMPT_AREA = 16  # pixels: slivers of occluded objects get no prompt
BOX_NOISE = 0.1  # SAM: box coordinates jittered by a fraction of the box side ...
BOX_NOISE_MAX = 20.0  # ... capped in pixels (of a 320x240 frame's scale, as SAM's 20 px of 1024)

NOT_A_POINT, NEGATIVE, POSITIVE, BOX_TOP_LEFT, BOX_BOTTOM_RIGHT = -1, 0, 1, 2, 3


@dataclass
class Prompt:
    """One prompt on a frame, in frame pixels, and the mask of the object it points at."""

    kind: str  # "click", "box" or "exemplar"
    points: np.ndarray  # float32 [K, 2] (x, y): one click, or a box's two corners (none for an exemplar)
    labels: np.ndarray  # int32 [K]: POSITIVE, or BOX_TOP_LEFT / BOX_BOTTOM_RIGHT
    mask: np.ndarray  # bool [H, W]
    corrective: bool = False  # a click that also gets a corrective second point


def sample_prompts(labels: np.ndarray, count: int, box_fraction: float, corrective_fraction: float,
                   rng: np.random.Generator, exemplar_fraction: float = 0.0) -> list[Prompt]:
    """`count` prompts over the frame's visible objects (every object once before any twice, then at random)."""
    ids, areas = np.unique(labels[labels > 0], return_counts=True)
    ids = ids[areas >= MIN_PROMPT_AREA]
    if len(ids) == 0 or count == 0:
        return []
    order = list(rng.permutation(ids))
    chosen = (order + [ids[int(i)] for i in rng.integers(len(ids), size=max(count - len(ids), 0))])[:count]
    prompts = []
    for obj_id in chosen:
        mask = labels == obj_id
        if exemplar_fraction > 0 and rng.random() < exemplar_fraction:
            prompts.append(Prompt("exemplar", np.zeros((0, 2), np.float32), np.zeros(0, np.int32), mask))
        elif rng.random() < box_fraction:
            prompts.append(Prompt("box", jittered_box(mask, rng), np.array([BOX_TOP_LEFT, BOX_BOTTOM_RIGHT],
                                                                              np.int32), mask))
        else:
            ys, xs = np.nonzero(mask)
            k = int(rng.integers(len(xs)))
            point = np.array([[xs[k] + 0.5, ys[k] + 0.5]], np.float32)
            prompts.append(Prompt("click", point, np.array([POSITIVE], np.int32), mask,
                                  bool(rng.random() < corrective_fraction)))
    return prompts


def jittered_box(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[2, 2] corners (x0, y0), (x1, y1) of a non-empty mask's box in pixel edges, each coordinate moved by up to
    BOX_NOISE of the box side (at most BOX_NOISE_MAX px at 240 px), clipped to the frame."""
    ys, xs = np.nonzero(mask)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    side = np.array([box[2] - box[0], box[3] - box[1]] * 2, np.float32)
    cap = BOX_NOISE_MAX * min(mask.shape) / 240.0
    box += rng.uniform(-1.0, 1.0, size=4).astype(np.float32) * np.minimum(side * BOX_NOISE, cap)
    height, width = mask.shape
    box = np.clip(box, 0.0, [width, height, width, height])
    x0, x1 = sorted((box[0], box[2]))
    y0, y1 = sorted((box[1], box[3]))
    return np.array([[x0, y0], [x1, y1]], np.float32)


def corrective_click(predicted: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The next click of an interactive user: in the larger error region (missed object pixels or wrongly masked
    ones), the pixel farthest from the region's border; positive on a miss, negative on a wrong pixel. None when the
    prediction is already exact. Same-shape bool arrays; the click is in their pixels."""
    missed, wrong = goal & ~predicted, predicted & ~goal
    region, label = (missed, POSITIVE) if missed.sum() >= wrong.sum() else (wrong, NEGATIVE)
    if not region.any():
        return None
    padded = np.pad(region.astype(np.uint8), 1)  # the frame's edge counts as border
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return np.array([x + 0.5, y + 0.5], np.float32), label


class PromptableLoss:
    """The promptable losses of one frame's prompts, decoded in batches on the frame's SAM 2 features."""

    def __init__(self, grounding, model_config, loss_config: LossSection) -> None:
        self.grounding = grounding
        self.model_config = model_config
        self.size = model_config.grounding.image_size
        self.low = self.size // 4
        self.loss_config = loss_config

    def _to_sam(self, points: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
        height, width = frame_hw
        return points * np.array([self.size / width, self.size / height], np.float32)

    def _goals(self, prompts: list[Prompt]) -> torch.Tensor:
        """[N, h, w] soft targets: each low-res cell's share of the object (area resize). The reference's nearest
        resize caps what a perfect fit scores at 160 px to J&F 0.72; area shares allow 0.91 (training.ceiling)."""
        return torch.stack([low_res_mask(p.mask, self.model_config, "area") for p in prompts])

    def _decode(self, features, points: list[np.ndarray], labels: list[np.ndarray], frame_hw, multimask: bool):
        """Prompts of equal point count, each led by a not-a-point token -> (logits, predicted IoUs)."""
        sam_points = np.stack([np.concatenate([np.zeros((1, 2), np.float32), self._to_sam(p, frame_hw)])
                               for p in points])
        sam_labels = np.stack([np.concatenate([[NOT_A_POINT], lab]).astype(np.int32) for lab in labels])
        masks, ious, _ = self.grounding.prompt_masks(features, torch.from_numpy(sam_points),
                                                     torch.from_numpy(sam_labels), multimask=multimask)
        return masks, ious

    def _terms(self, logits: torch.Tensor, ious: torch.Tensor, goals: torch.Tensor, best_of: bool):
        """Per prompt: mask loss (best candidate if `best_of`), and the IoU head's MSE against actual IoUs."""
        mask_loss, bce, dice = losses.candidate_mask_losses(self.loss_config, logits, goals)
        with torch.no_grad():
            predicted, goal = logits > 0, goals.to(logits.device)[:, None] > 0.5
            actual = (predicted & goal).sum(dim=(2, 3)) / (predicted | goal).sum(dim=(2, 3)).clamp_min(1)
        iou_loss = F.mse_loss(ious, actual.float(), reduction="none").mean(dim=1)
        mask_loss = mask_loss.min(dim=1).values if best_of else mask_loss[:, 0]
        return mask_loss, iou_loss, bce.detach().mean(), dice.detach().mean()

    def __call__(self, features, prompts: list[Prompt], frame_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        mask_terms, iou_terms, bce_terms, dice_terms = [], [], [], []

        def add(logits, ious, goals, best_of):
            mask_loss, iou_loss, bce, dice = self._terms(logits, ious, goals, best_of)
            mask_terms.append(mask_loss)
            iou_terms.append(iou_loss)
            bce_terms.append(bce)
            dice_terms.append(dice)

        clicks = [p for p in prompts if p.kind == "click"]
        boxes = [p for p in prompts if p.kind == "box"]
        if clicks:
            logits, ious = self._decode(features, [p.points for p in clicks], [p.labels for p in clicks], frame_hw,
                                        multimask=True)
            goals = self._goals(clicks)
            add(logits, ious, goals, best_of=True)
            corrections = self._corrections(logits.detach(), goals, clicks, frame_hw)
            if corrections:
                indices, points, labels = zip(*corrections, strict=True)
                logits2, ious2 = self._decode(features, list(points), list(labels), frame_hw, multimask=False)
                add(logits2, ious2, goals[list(indices)], best_of=False)
        if boxes:
            logits, ious = self._decode(features, [p.points for p in boxes], [p.labels for p in boxes], frame_hw,
                                        multimask=False)
            add(logits, ious, self._goals(boxes), best_of=False)
        exemplars = [p for p in prompts if p.kind == "exemplar"]
        if exemplars:
            goals = self._goals(exemplars)
            tokens = exemplar_tokens(features.image_embed, goals)
            logits, ious, _ = self.grounding.token_masks(features, tokens)
            add(logits, ious, goals, best_of=True)
        if not mask_terms:
            raise ValueError("promptable training needs at least one prompt per frame")
        return {"mask": torch.cat(mask_terms).mean(), "iou": torch.cat(iou_terms).mean(),
                "bce": torch.stack(bce_terms).mean(), "dice": torch.stack(dice_terms).mean()}

    def _corrections(self, logits: torch.Tensor, goals: torch.Tensor, clicks: list[Prompt], frame_hw):
        """(index, points, labels) of the second round: the first click plus a corrective one, found on the low-res
        grid where the loss is computed (its best candidate's mask against the goal)."""
        out = []
        scale = np.array([frame_hw[1] / self.low, frame_hw[0] / self.low], np.float32)
        best = self._best_candidates(logits, goals)
        for i, prompt in enumerate(clicks):
            if not prompt.corrective:
                continue
            click = corrective_click(best[i], goals[i].numpy() > 0.5)
            if click is None:
                continue
            point, label = click
            out.append((i, np.concatenate([prompt.points, (point * scale)[None]]),
                        np.array([POSITIVE, label], np.int32)))
        return out

    @staticmethod
    def _best_candidates(logits: torch.Tensor, goals: torch.Tensor) -> np.ndarray:
        """[N, C, h, w] logits -> [N, h, w] bool: per prompt the candidate with the highest IoU with its goal."""
        predicted = logits > 0
        goal = goals[:, None] > 0.5
        iou = (predicted & goal).sum(dim=(2, 3)) / (predicted | goal).sum(dim=(2, 3)).clamp_min(1)
        rows = torch.arange(logits.shape[0])
        return predicted[rows, iou.argmax(dim=1)].numpy()


def exemplar_tokens(image_embed: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """[1, C, g, g] image embedding, [N, h, w] objects' shares of the low-res cells -> [N, C]: the embedding averaged
    over each object, every cell weighted by its share of the object (the shares pooled to the embedding's grid)."""
    weights = F.adaptive_avg_pool2d(shares.to(image_embed.device, image_embed.dtype)[:, None],
                                    image_embed.shape[-2:])[:, 0].flatten(1)  # [N, g*g]
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-8)
    return weights @ image_embed[0].flatten(1).T
