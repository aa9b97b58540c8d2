"""The two analysis tools behind the training README's "where it fails" numbers: the logits-grid J&F ceiling and
the click-only SAM 2 probe (real SAM 2 modules, micro sizes)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from strvos_core.training import ceiling, click_probe


def test_round_trip_keeps_a_large_box_and_loses_a_thin_bar():
    box = np.zeros((1, 240, 320), bool)
    box[0, 60:180, 80:240] = True
    bar = np.zeros((1, 240, 320), bool)
    bar[0, 100:103, 20:300] = True  # 3 px thin: below a 40x40 grid's 6 px rows
    for mode in ceiling.MODES:
        kept = ceiling.round_trip(box, 80, mode)
        assert (kept & box).sum() / (kept | box).sum() > 0.97
        lost = ceiling.round_trip(bar, 40, mode)
        assert (lost & bar).sum() / max((lost | bar).sum(), 1) < 0.9
    with pytest.raises(ValueError, match="mode"):
        ceiling.round_trip(box, 40, "bicubic")


def test_ceiling_rises_with_the_grid_and_soft_logits_beat_the_nearest_target():
    rows = ceiling.ceiling([20, 80], videos=3, seed=5)
    assert rows[20]["objects"] == rows[80]["objects"] > 0
    for row in rows.values():
        assert all(0.0 <= row[k] <= 1.0 for k in ceiling.MODES)
    assert rows[80]["area"] > rows[20]["area"] + 0.05
    assert rows[20]["area"] > rows[20]["nearest"]


def test_overlaps_tell_selection_from_objectness():
    labels = np.zeros((10, 10), np.uint8)
    labels[0:4, 0:4] = 1   # 16 px, the clicked object
    labels[6:10, 6:8] = 2  # 8 px, another object
    own = labels == 1
    assert click_probe.overlaps(own, labels, own) == pytest.approx((1.0, 0.0, 16 / 24))
    objects = labels > 0  # "objects vs background": the failure the probe looks for
    assert click_probe.overlaps(objects, labels, own) == pytest.approx((16 / 24, 8 / 24, 1.0))
    alone = np.where(labels == 1, 1, 0).astype(np.uint8)
    assert click_probe.overlaps(own, alone, own)[1] == 0.0  # nothing else in the frame


def test_click_probe_trains_sam2_and_reports_held_out_ious(micro_config, tmp_path):
    config = micro_config(data={"width": 128, "height": 96, "num_videos": 3})
    torch.manual_seed(0)
    probe = click_probe.ClickProbe(config, lr=1e-3, warmup=1)
    decoder = probe.model.grounding_encoder.sam2_model.sam_mask_decoder
    before = [p.detach().clone() for p in decoder.parameters()]
    losses = [probe.train_step(step) for step in range(3)]
    assert any(loss is not None and np.isfinite(loss) for loss in losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, decoder.parameters(), strict=True))
    own, others, objects, clicks = probe.evaluate(frames=3)
    assert clicks > 0 and all(0.0 <= v <= 1.0 for v in (own, others, objects))
    sheet = tmp_path / "clicks.png"
    probe.sheet(sheet, frames=2)
    import cv2
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[1] == 5 * 128 and image.shape[0] % 96 == 0


@pytest.mark.parametrize("learner", ["sam2", "oracle", "unet", "unet-full"])
def test_click_probe_cli_prints_a_table(micro_config, tmp_path, capsys, learner):
    config = micro_config(data={"width": 128, "height": 96, "num_videos": 3})
    path = tmp_path / "micro.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert click_probe.main(["--config", str(path), "--learner", learner, "--steps", "2", "--eval-every", "1",
                             "--eval-frames", "2", "--threads", "1", "--encoder-lr-scale", "0.1",
                             "--attention-init", "1.0"]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 3 and table[1].startswith("| 1 |") and table[2].startswith("| 2 |")  # header, 2 rows
    ceiling = float(out.split("scores own IoU ")[1].split()[0])
    assert 0.0 < ceiling <= 1.0


def test_the_ceiling_is_higher_on_a_finer_output_grid(micro_config):
    config = micro_config(data={"width": 128, "height": 96, "num_videos": 3})
    coarse = click_probe.ClickProbe(config, learner="unet").ceiling(3)  # 32x32 at 128 px
    fine = click_probe.ClickProbe(config, learner="unet-full").ceiling(3)  # 128x128
    assert 0.0 < coarse < fine <= 1.0


def test_unet_baseline_trains_on_the_same_clicks_and_sees_the_click(micro_config):
    config = micro_config(data={"width": 128, "height": 96, "num_videos": 3})
    torch.manual_seed(0)
    probe = click_probe.ClickProbe(config, lr=1e-3, warmup=1, learner="unet")
    before = [p.detach().clone() for p in probe.learner.net.parameters()]
    assert any(probe.train_step(step) is not None for step in range(2))
    assert any(not torch.equal(a, b) for a, b in zip(before, probe.learner.net.parameters(), strict=True))
    net = probe.learner.net
    maps = net.click_maps(torch.tensor([[10.0, 20.0]]), 32)
    assert maps.shape == (1, 1, 32, 32) and np.unravel_index(int(maps.argmax()), (32, 32)) == (19, 9)
    logits = net(torch.zeros(1, 3, 32, 32), torch.tensor([[10.0, 20.0], [1.0, 1.0]]))
    assert logits.shape == (2, 3, 8, 8) and not torch.equal(logits[0], logits[1])  # the click changes the output


def test_best_candidate_loss_keeps_the_lowest_per_prompt():
    from strvos_core.training import losses
    from strvos_core.training.config import LossSection

    goal = torch.zeros(1, 4, 4)
    goal[0, :2] = 1.0
    right = goal[:, None] * 20 - 10  # confident and right
    wrong = -right
    candidates = torch.cat([wrong, right, wrong], dim=1)
    loss = losses.best_candidate_loss(LossSection(), candidates, goal)
    single = losses.best_candidate_loss(LossSection(), right, goal)
    assert loss.shape == (1,) and torch.allclose(loss, single) and float(loss) < 0.05


def test_oracle_features_mark_each_object_with_its_own_vector(micro_config):
    config = micro_config(data={"width": 128, "height": 96, "num_videos": 3})
    probe = click_probe.ClickProbe(config, learner="oracle")
    labels = np.zeros((128, 128), np.uint8)
    labels[:64, :64] = 1
    labels[64:, 64:] = 2
    features = probe.learner.encode(torch.zeros(1, 3, 128, 128), labels)
    embed = features.image_embed[0]  # [C, 8, 8]
    assert embed.shape[1:] == (8, 8) and [f.shape[-1] for f in features.high_res] == [32, 16]
    assert torch.equal(embed[:, 0, 0], embed[:, 3, 3]) and not torch.equal(embed[:, 0, 0], embed[:, 7, 7])
    assert not embed[:, 0, 7].any()  # background
    sam = probe.model.grounding_encoder.sam2_model
    assert {id(p) for p in probe.parameters}.isdisjoint(id(p) for p in sam.image_encoder.parameters())


def test_object_cells_keep_the_cells_one_object_covers_for_more_than_half():
    from strvos_core.training.cell_probe import object_cells

    labels = np.zeros((4, 4), dtype=np.uint8)
    labels[:2, :2] = 3  # the whole top-left cell of a 2x2 grid
    labels[2:, 2:] = [[5, 5], [5, 0]]  # three quarters of the bottom-right cell
    labels[0, 2:] = 7  # half of the top-right cell: not more than half
    assert object_cells(labels, 2) == [(0, 3), (3, 5)]


def test_held_out_accuracy_separates_learnable_from_random_labels():
    from strvos_core.training.cell_probe import held_out_accuracy

    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 6))
    learnable = (features[:, 0] > 0).astype(int) + 2 * (features[:, 1] > 0).astype(int)  # 4 classes, linear
    assert held_out_accuracy(features, learnable, 4) > 0.9
    assert held_out_accuracy(features, rng.integers(0, 4, size=300), 4) < 0.45  # chance is 0.25


@pytest.mark.parametrize("motion", [False, True])
def test_cell_probe_reports_every_attribute_on_a_trained_checkpoint(micro_config, tmp_path, capsys, motion):
    from strvos_core.datasets.synthetic.vocabulary import ATTRIBUTES
    from strvos_core.training.cell_probe import MOTION_ROW, STAGES, main
    from strvos_core.training.trainer import train

    config = micro_config(run={"steps": 1}, data={"num_videos": 3})
    config.model.overrides["vision"]["image_size"] = 224  # 8x8 token cells of 12x8 px: objects cover some
    if motion:  # a model that sees the frame before: which way each object moved gets its own row
        config.model.overrides["vision"].update({"trunk": "vit+conv", "conv_widths": [8, 16], "motion_input": True})
    train(config, tmp_path / "run", progress=False)
    assert main(["--run", str(tmp_path / "run"), "--frames", "6"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "object cells" in lines[0] and int(lines[0].split()[0]) >= 3
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[3:]}
    assert sorted(rows) == sorted([*ATTRIBUTES, *([MOTION_ROW] if motion else [])])
    for line in rows.values():
        numbers = [float(v) for v in line.strip("| ").split(" | ")[1:]]
        assert len(numbers) == len(STAGES) + 1 and all(0.0 <= v <= 1.0 for v in numbers)


def test_object_cell_loss_counts_only_cells_mostly_covered_by_one_object():
    from strvos_core.training.attribute_probe import object_cell_loss
    from strvos_core.training.attributes import GROUP_SIZES, attribute_targets

    labels = np.zeros((4, 4), dtype=np.uint8)
    labels[:2, :2] = 1  # the whole top-left cell of a 2x2 grid; the other cells are background
    targets = attribute_targets(labels, {1: {"size": "small", "colour": "red", "texture": "plain",
                                             "shape": "circle"}}, (2, 2))
    logits = torch.zeros(4, sum(GROUP_SIZES))
    uniform = sum(np.log(size - 1) for size in GROUP_SIZES)  # one cell, every value equally likely
    assert float(object_cell_loss(logits, targets)) == pytest.approx(uniform, rel=1e-6)
    logits[1:] = torch.randn(3, sum(GROUP_SIZES))  # background cells do not count
    assert float(object_cell_loss(logits, targets)) == pytest.approx(uniform, rel=1e-6)


@pytest.mark.parametrize("learner", ["vit", "conv"])
def test_attribute_probe_trains_a_learner_and_scores_held_out_cells(micro_config, learner):
    from strvos_core.datasets.synthetic.vocabulary import ATTRIBUTES
    from strvos_core.training.attribute_probe import AttributeProbe, run

    config = micro_config(data={"num_videos": 3})
    config.model.overrides["vision"]["image_size"] = 224  # 8x8 token cells of 12x8 px: objects cover some
    probe = AttributeProbe(config, learner, batch=2, videos=4)
    assert probe.side == 8
    before = [p.detach().clone() for p in probe.parameters]
    lines = []
    results = run(probe, steps=2, eval_every=1, eval_frames=6, log=lines.append)
    assert [r[0] for r in results] == [1, 2] and len(lines) == 2 and all(np.isfinite(r[1]) for r in results)
    assert sorted(results[-1][2]) == sorted(ATTRIBUTES)
    assert all(0.0 <= acc <= 1.0 and 0.0 < common <= 1.0 for acc, common in results[-1][2].values())
    assert any(not torch.equal(a, b) for a, b in zip(before, probe.parameters, strict=True))  # it trained


def test_a_pool_that_keeps_no_videos_regenerates_the_same_frames(micro_config):
    from strvos_core.training.data import SyntheticPool

    data = micro_config(data={"num_videos": 2}).data
    kept, regenerated = SyntheticPool(data), SyntheticPool(data, keep_videos=False)
    for step in range(3):
        a, b = kept.sample(step, 0, 0, 0), regenerated.sample(step, 0, 0, 0)
        np.testing.assert_array_equal(a.frames[0], b.frames[0])
        np.testing.assert_array_equal(a.labels[0], b.labels[0])
    assert kept._videos and not regenerated._videos


def test_the_probes_evaluate_every_n_steps_and_at_the_end_with_the_mean_loss_since_the_last():
    from strvos_core.training.probe_loop import scheduled_evaluations

    losses = {0: 1.0, 1: 3.0, 2: None, 3: None, 4: None, 5: None, 6: 5.0}
    evaluated = iter(["a", "b", "c", "d"])
    rows = list(scheduled_evaluations(losses.get, lambda: next(evaluated), 7, 2))
    assert [(r[0], r[2]) for r in rows] == [(2, "a"), (4, "b"), (6, "c"), (7, "d")]
    assert rows[0][1] == 2.0 and rows[3][1] == 5.0  # a step returning None trained nothing ...
    assert all(np.isnan(r[1]) for r in rows[1:3])  # ... and an evaluation after only such steps has no loss
    assert all(b[3] >= a[3] >= 0 for a, b in zip(rows[:-1], rows[1:], strict=True))
