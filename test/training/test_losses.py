"""The mask losses and point sampling, checked against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from strvos_core.training import losses
from strvos_core.training.config import LossSection
from strvos_core.training.schedule import lr_factor


def test_point_sample_reads_pixel_centres_exactly():
    grid = torch.arange(12.0).reshape(1, 1, 3, 4)
    # pixel (row 1, col 2) has its centre at x = (2 + 0.5) / 4, y = (1 + 0.5) / 3
    coords = torch.tensor([[[2.5 / 4, 1.5 / 3], [0.5 / 4, 0.5 / 3]]])
    torch.testing.assert_close(losses.point_sample(grid, coords), torch.tensor([[[6.0, 0.0]]]))


def test_uncertain_points_pick_the_logits_nearest_zero():
    logits = torch.full((1, 1, 8, 8), 10.0)
    logits[..., :, :2] = 0.0  # the two leftmost columns are maximally uncertain
    coords = losses.uncertain_point_coords(logits, num_points=40, oversample_ratio=3.0, importance_sample_ratio=0.5,
                                           generator=torch.Generator().manual_seed(0))
    assert coords.shape == (1, 40, 2)
    important = coords[0, :20, 0]
    # among 120 uniform candidates about 30 fall within x < 0.25 (where the bilinear read is < 10): the 20 chosen are
    assert (important < 0.25).all()


def test_naive_dice_and_bce_match_hand_values():
    pred = torch.tensor([[0.0, 0.0], [100.0, -100.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # row 0: p = (.5, .5): 1 - (2*.5 + 1) / (1 + 1 + 1) = 1/3; row 1: p = (1, 0): 1 - 3/3 = 0
    assert losses.naive_dice(pred, target).item() == pytest.approx(1 / 6, abs=1e-6)
    assert losses.sigmoid_bce(pred, target).item() == pytest.approx(2 * math.log(2) / 4, abs=1e-6)


def test_mask_losses_rank_a_correct_mask_far_below_an_inverted_one():
    gt = torch.zeros(1, 16, 16)
    gt[:, 4:12, 4:12] = 1
    logits = (gt * 2 - 1)[:, None] * 50
    config = LossSection(num_points=32)
    bce, dice = losses.mask_losses(logits, gt, config, torch.Generator().manual_seed(0))
    bad_bce, bad_dice = losses.mask_losses(-logits, gt, config, torch.Generator().manual_seed(0))
    # uncertain points sit on the boundary, where the bilinear read is near 0 for both; the rest decide
    assert bce < 0.5 * bad_bce and dice < 0.5 * bad_dice
    terms = losses.combine(config, torch.tensor(1.0), torch.tensor(0.5), torch.tensor(0.2))
    assert terms.total.item() == pytest.approx(1.0 + 2.0 * 0.5 + 0.5 * 0.2)


def test_answer_cross_entropy_ignores_prompt_positions():
    logits = torch.zeros(3, 5)
    logits[1, 2] = 10.0
    total, count = losses.answer_cross_entropy(logits, torch.tensor([-100, 2, 4]))
    expected = -torch.log_softmax(logits[1], 0)[2] - torch.log_softmax(logits[2], 0)[4]
    assert count == 2 and total.item() == pytest.approx(expected.item(), abs=1e-6)


def test_schedule_warms_up_linearly_then_decays_to_zero():
    total, warm = 100, 0.05
    assert lr_factor(0, total, warm, 1e-5) == pytest.approx(1e-5)
    assert lr_factor(5, total, warm, 1e-5) == pytest.approx(1.0)
    assert lr_factor(52, total, warm, 1e-5) == pytest.approx(0.5, abs=0.02)
    assert lr_factor(100, total, warm, 1e-5) == pytest.approx(0.0, abs=1e-9)
