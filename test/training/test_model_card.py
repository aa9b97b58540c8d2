"""The model card copies its numbers from the run logs and eval summaries it is given, and names missing parts."""
from __future__ import annotations

import json

import pytest

from strvos_core.errors import StrvosError
from strvos_core.training.model_card import TARGETS, write_card


def _run(folder, stage, seconds, losses):
    folder.mkdir()
    (folder / "train_config.json").write_text(json.dumps({"data": {"stage": stage, "seed": 3, "num_videos": 7},
                                                          "model": {"seed": 0}}))
    (folder / "log.jsonl").write_text("".join(json.dumps({"step": i + 1, "seconds": seconds, "loss": v, "dice": v / 2})
                                              + "\n" for i, v in enumerate(losses)))


def _eval(folder, by_kind, overall):
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({
        "backend": "streamingrvos", "num_videos": 2, "num_expressions": sum(v["count"] for v in by_kind.values()),
        "metrics": {"J&F": overall}, "by_category": by_kind}))


def _one_stage(tmp_path, seconds):
    """An empty model folder, one image-stage run `s1` of one step of `seconds`, and appearance-only evaluations
    `on` / `off` (J&F 0.3 both): what a card needs besides the part under test."""
    model = tmp_path / "model"
    model.mkdir()
    _run(tmp_path / "s1", "image", seconds, [1.0])
    kinds = {"appearance": {"J": 0.3, "F": 0.3, "JF": 0.3, "count": 1}}
    _eval(tmp_path / "on", kinds, 0.3)
    _eval(tmp_path / "off", kinds, 0.3)
    return model


def test_card_numbers_come_from_the_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"x" * 2048)
    _run(tmp_path / "s1", "image", 60.0, [4.0, 2.0])
    _run(tmp_path / "s2", "video", 30.0, [1.0])
    kinds = {"appearance": {"J": 0.9, "F": 0.8, "JF": 0.85, "count": 4},
             "relation": {"J": 0.5, "F": 0.3, "JF": 0.4, "count": 2},
             "motion": {"J": 0.7, "F": 0.7, "JF": 0.7, "count": 1}}
    _eval(tmp_path / "on", kinds, 0.7)
    _eval(tmp_path / "off", {k: {**v, "JF": v["JF"] / 2} for k, v in kinds.items()}, 0.35)
    table = write_card(model, [tmp_path / "s1", tmp_path / "s2"], tmp_path / "on", tmp_path / "off", 2)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()[2:]}
    assert rows["appearance"] == ["4", "0.850", "0.425", f">= {TARGETS['appearance']:.2f}", "yes"]
    assert rows["relation"][1:3] == ["0.400", "0.200"] and rows["relation"][-1] == "no"
    assert rows["motion"][-1] == "yes" and rows["all"][:3] == ["7", "0.700", "0.350"]
    card = (model / "README.md").read_text()
    assert "bash scripts/train_tiny.sh" in card and "2.5 minutes" in card  # 2 x 60 s + 30 s of logged steps
    saved = json.loads((model / "scores.json").read_text())
    assert saved["runs"][0]["steps"] == 2 and saved["runs"][0]["final_loss"] == 3.0


def test_missing_summary_is_named(tmp_path):
    _run(tmp_path / "s1", "image", 1.0, [1.0])
    with pytest.raises(StrvosError, match="summary.json not found"):
        write_card(tmp_path, [tmp_path / "s1"], tmp_path / "nope", tmp_path / "nope", 1)


def test_probe_and_stage0_tables_are_copied_in(tmp_path):
    model = _one_stage(tmp_path, seconds=1.0)
    (tmp_path / "probe.md").write_text("log line\n| step | own_iou |\n|---|---|\n| 3000 | 0.412 |\n")
    (tmp_path / "s0.txt").write_text("run: 181 objects\n| click best | box |\n|---|---|\n| 0.721 | 0.733 |\n")
    write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, tmp_path / "probe.md", tmp_path / "s0.txt")
    card = (model / "README.md").read_text()
    assert "| 3000 | 0.412 |" in card and "| 0.721 | 0.733 |" in card and "log line" not in card
    assert "Targets not met for: appearance" in card
    with pytest.raises(StrvosError, match="missing.md not found"):
        write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, tmp_path / "missing.md")


def test_stage_v_table_is_copied_in_and_its_minutes_counted(tmp_path):
    from strvos_core.training.attribute_probe import results_table

    model = _one_stage(tmp_path, seconds=60.0)
    scores = {"size": (0.9, 0.84), "colour": (0.99, 0.19), "texture": (0.95, 0.29), "shape": (0.7, 0.23)}
    printed = "step 100: loss 2.000 ...\n" + results_table([(100, 2.0, scores, 30.0), (200, 1.5, scores, 120.0)])
    (tmp_path / "attr.txt").write_text(printed + "\n")
    (model / "config.json").write_text(json.dumps({"strvos": {"vision_trunk": "vit+conv"}}))
    write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, vision=tmp_path / "attr.txt")
    card = (model / "README.md").read_text()
    assert "| 200 | 1.500 | 0.900 | 0.990 | 0.950 | 0.700 | 120 |" in card
    assert "| commonest value | | 0.840 | 0.190 | 0.290 | 0.230 | |" in card
    assert "3.0 minutes" in card and f"| vision (attributes) | {tmp_path.name} | 200 | 2.0 |" in card  # 120 + 60 s
    assert json.loads((model / "scores.json").read_text())["runs"][0]["stage"] == "vision (attributes)"
    assert "InternViT with a conv trunk beside it" in card and "motion encoder" not in card
    (model / "config.json").write_text(json.dumps({"strvos": {"vision_trunk": "vit+conv", "vision_motion_input": True}}))
    write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, vision=tmp_path / "attr.txt")
    card = (model / "README.md").read_text()
    assert "InternViT with a conv trunk beside it and a motion encoder reading the previous frame" in card
    assert "and no previous frame to the motion encoder: what the streaming memory buys." in card
    assert "Stage 0 (SAM 2 alone on its promptable task) was not rerun" in card  # no promptable run was given
    (tmp_path / "cut.txt").write_text("step 100: loss 2.000 ...\n")
    with pytest.raises(StrvosError, match="no attribute_probe table"):
        write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, vision=tmp_path / "cut.txt")


def test_earlier_stages_are_copied_from_the_earlier_card_and_maskless_stages_show_no_dice(tmp_path):
    """Stage Q trains no masks (dice 0 on every step); stages 1-2 kept from an earlier export come from its card."""
    model = _one_stage(tmp_path, seconds=60.0)
    _run(tmp_path / "q", "image", 30.0, [0.0, 0.0])  # dice = loss / 2 = 0 on every step
    earlier = tmp_path / "earlier_scores.json"
    earlier.write_text(json.dumps({"runs": [
        {"run": str(tmp_path / "q"), "stage": "image", "steps": 9, "minutes": 99.0, "final_loss": 9.0},  # given again
        {"run": "runs/tiny_s2", "stage": "video", "steps": 400, "seed": 1, "num_videos": 600, "minutes": 5.0,
         "final_loss": 4.289, "final_dice": 0.593}]}))
    write_card(model, [tmp_path / "q", tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, earlier=earlier)
    card = (model / "README.md").read_text()
    assert "| video | tiny_s2 * | 400 | 5.0 | 600 (seed 1) | 4.289 | 0.593 |" in card
    assert "| image | q | 2 | 1.0 | 7 (seed 3) | 0.000 | - |" in card and "99.0" not in card
    assert "7.0 minutes" in card  # 5.0 earlier + 1.0 (q) + 1.0 (s1)
    assert "stages tiny_s2 -> q -> s1" in card
    runs = json.loads((model / "scores.json").read_text())["runs"]
    assert [r["run"].rsplit("/", 1)[-1] for r in runs] == ["tiny_s2", "q", "s1"] and runs[0]["earlier"] == str(earlier)
    earlier.write_text(json.dumps({"streaming": {}}))
    with pytest.raises(StrvosError, match="no list of training runs"):
        write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, earlier=earlier)
    earlier.write_text(json.dumps({"runs": [{"run": "runs/tiny_s2", "stage": "video", "minutes": 5.0}]}))
    with pytest.raises(StrvosError, match=r"'runs/tiny_s2' lacks \['final_loss', 'num_videos', 'seed', 'steps'\]"):
        write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, earlier=earlier)


def test_stage_vm_follows_the_earlier_stages_its_table_copied_in_and_its_minutes_counted(tmp_path):
    """A card built on an earlier export's stages, with stage VM (the motion encoder pre-trained alone) after them."""
    from strvos_core.training.motion_probe import results_table

    model = _one_stage(tmp_path, seconds=60.0)
    earlier = tmp_path / "earlier_scores.json"
    earlier.write_text(json.dumps({"runs": [
        {"run": "artifacts/tiny_vision/attribute_probe.txt", "stage": "vision (attributes)", "steps": 2000,
         "minutes": 21.4, "final_loss": 1.016},
        {"run": "runs/tiny_qa", "stage": "image", "steps": 800, "seed": 25, "num_videos": 800, "minutes": 17.4,
         "final_loss": 6.778}]}))
    vm = tmp_path / "tiny_motion"
    vm.mkdir()
    (vm / "motion_probe.md").write_text(results_table([(100, 1.5, 0.46, 0.33, 45.0), (1500, 0.199, 0.961, 0.329,
                                                                                        675.0)]) + "\n")
    write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, earlier=earlier,
               motion=vm / "motion_probe.md")
    card = (model / "README.md").read_text()
    assert "| motion (steps) | tiny_motion | 1500 | 11.2 | 20000 drawn, 20 frames each | 0.199 | - |" in card
    assert "stages tiny_vision -> tiny_qa -> tiny_motion -> s1" in card
    assert "| 1500 | 0.199 | 0.961 | 0.329 | 675 |" in card and "The motion encoder after stage VM" in card
    assert "51.0 minutes" in card  # 21.4 + 17.4 earlier, 11.25 VM, 1.0 s1
    assert [r["stage"] for r in json.loads((model / "scores.json").read_text())["runs"]] == [
        "vision (attributes)", "image", "motion (steps)", "image"]
    (vm / "cut.md").write_text("step 100: loss 1.500 ...\n")
    with pytest.raises(StrvosError, match="no motion_probe table"):
        write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, motion=vm / "cut.md")


def test_the_misses_report_is_copied_in_whole_and_named_in_the_verdict(tmp_path):
    """`--misses`: the tables `evaluation.misses` wrote, headings and all, and the verdict points at them."""
    from strvos_core.evaluation.misses import TargetFrame, report

    model = _one_stage(tmp_path, seconds=1.0)
    frames = [TargetFrame("appearance", 0.0, 0.0), TargetFrame("appearance", 0.01, 0.8, True, True)]
    (tmp_path / "misses.md").write_text("default on synthetic test (1 videos)\n\n" + report(frames, 76800))
    write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, misses=tmp_path / "misses.md")
    card = (model / "README.md").read_text()
    assert "## Where the masks miss on the test split (evaluation.misses) (`misses.md`)" in card
    assert "**appearance**: 2 target-frames, mean frame J 0.400" in card
    assert "| target out of view | 1 | 0.500 | 0.000 | 0.500 |" in card and "default on synthetic test" in card
    assert "which frames lose the J, in the misses tables" in card
    (tmp_path / "empty.md").write_text("the run was cut short\n")
    with pytest.raises(StrvosError, match="holds no table"):
        write_card(model, [tmp_path / "s1"], tmp_path / "on", tmp_path / "off", 1, misses=tmp_path / "empty.md")
