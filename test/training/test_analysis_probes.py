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
