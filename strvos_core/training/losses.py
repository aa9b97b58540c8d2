"""The reference's training losses (llava_sam2_token.py, mmdet CrossEntropyLoss/DiceLoss, Mask2Former sampling).

* LM: next-token cross-entropy over the answer tokens only (prompt positions are ignored), weight 1.
* Mask: on `num_points` points per mask sampled from the low-res logits by uncertainty (|logit| smallest,
  `importance_sample_ratio` of them chosen among `oversample_ratio * num_points` random candidates, the rest
  uniform), sigmoid BCE averaged over all points (weight 2) and naive Dice with eps 1 averaged over masks
  (weight 0.5). Points are read with bilinear `grid_sample` (align_corners=False), the ground truth too.
  `point_sampling: false` takes every pixel instead (our from-scratch recipe).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from strvos_core.training.config import LossSection


def point_sample(inputs: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] sampled at [N, P, 2] coordinates in [0, 1] (x, y) -> [N, C, P] (mmcv's point_sample)."""
    return F.grid_sample(inputs, 2.0 * coords[:, :, None, :] - 1.0, align_corners=False)[..., 0]


def uncertain_point_coords(logits: torch.Tensor, num_points: int, oversample_ratio: float,
                           importance_sample_ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """[N, 1, H, W] logits -> [N, num_points, 2] coordinates, most uncertain first, then uniform ones."""
    n = logits.shape[0]
    candidates = int(num_points * oversample_ratio)
    coords = torch.rand(n, candidates, 2, device=logits.device, generator=generator)
    uncertainty = -point_sample(logits, coords)[:, 0].abs()  # [N, candidates]
    num_uncertain = int(importance_sample_ratio * num_points)
    top = torch.topk(uncertainty, k=num_uncertain, dim=1).indices
    chosen = torch.gather(coords, 1, top[..., None].expand(-1, -1, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        chosen = torch.cat([chosen, torch.rand(n, num_random, 2, device=logits.device, generator=generator)], dim=1)
    return chosen


def sigmoid_bce(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over every element (mmdet CrossEntropyLoss(use_sigmoid) with avg_factor = N * P)."""
    return F.binary_cross_entropy_with_logits(pred, target, reduction="mean")


def dice_per_mask(pred: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - (2 sum(p t) + eps) / (sum p + sum t + eps) per row of [N, P] logits / {0, 1} targets -> [N]."""
    probs = pred.sigmoid()
    numerator = 2 * (probs * target).sum(dim=1) + eps
    denominator = probs.sum(dim=1) + target.sum(dim=1) + eps
    return 1 - numerator / denominator


def naive_dice(pred: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """`dice_per_mask` averaged over rows (mmdet naive Dice)."""
    return dice_per_mask(pred, target, eps).mean()


def answer_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Sum of next-token CE over labelled positions ([L, V] logits at positions that predict [L] labels; -100
    ignored) and how many positions counted, so several frames/samples average over all their answer tokens."""
    total = F.cross_entropy(logits.float(), labels, ignore_index=-100, reduction="sum")
    return total, int((labels != -100).sum())


@dataclass
class LossTerms:
    """Weighted total and its unweighted parts (floats for logging come from `detached`)."""

    total: torch.Tensor
    lm: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor

    def detached(self) -> dict[str, float]:
        return {"loss": float(self.total), "lm": float(self.lm), "bce": float(self.bce), "dice": float(self.dice)}


def mask_losses(low_res_logits: torch.Tensor, gt_masks: torch.Tensor, config: LossSection,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, 1, h, w] logits and [N, h, w] {0,1} masks at the same size -> (BCE, Dice) on sampled points."""
    logits = low_res_logits.float()
    if not config.point_sampling:
        preds, targets = logits.flatten(1), gt_masks.flatten(1).float()
        return sigmoid_bce(preds, targets), naive_dice(preds, targets)
    with torch.no_grad():
        coords = uncertain_point_coords(logits, config.num_points, config.oversample_ratio,
                                        config.importance_sample_ratio, generator)
        targets = point_sample(gt_masks[:, None].float(), coords)[:, 0]
    preds = point_sample(logits, coords)[:, 0]
    return sigmoid_bce(preds, targets), naive_dice(preds, targets)


def weighted_mask_loss(config: LossSection, bce: torch.Tensor, dice: torch.Tensor) -> torch.Tensor:
    """The reference's mask loss: bce_weight x BCE + dice_weight x Dice (elementwise for per-mask tensors)."""
    return config.bce_weight * bce + config.dice_weight * dice


def candidate_mask_losses(config: LossSection, logits: torch.Tensor, goals: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[N, C, h, w] candidate logits of N prompts, [N, h, w] {0, 1} or soft goals -> (weighted BCE + Dice, BCE, Dice),
    each [N, C]: every pixel counted (SAM 2's own prompts are trained on whole low-res masks)."""
    goals = goals.to(logits.device)[:, None].expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, goals, reduction="none").mean(dim=(2, 3))
    dice = dice_per_mask(logits.flatten(2).flatten(0, 1), goals.flatten(2).flatten(0, 1)).view(bce.shape)
    return weighted_mask_loss(config, bce, dice), bce, dice


def best_candidate_loss(config: LossSection, logits: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
    """[N]: per prompt the lowest loss of its candidates (SAM's multi-mask loss: only the best candidate learns)."""
    return candidate_mask_losses(config, logits, goals)[0].min(dim=1).values


def combine(config: LossSection, lm: torch.Tensor, bce: torch.Tensor, dice: torch.Tensor) -> LossTerms:
    total = config.lm_weight * lm + config.seg_mask_weight * weighted_mask_loss(config, bce, dice)
    return LossTerms(total, lm, bce, dice)


def object_score_loss(logits: torch.Tensor, in_view: list[bool]) -> torch.Tensor:
    """SAM 2's object score loss: BCE of each decoded mask's object score logit [N] against its target being in view
    (SAM 2 trains it with a sigmoid focal loss; plain BCE here, the classes being far less unbalanced)."""
    goal = torch.tensor(in_view, dtype=torch.float32, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float(), goal)
