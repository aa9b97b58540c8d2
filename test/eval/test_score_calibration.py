"""Score calibration: the fit recovers a known logistic map, AUROC matches its definition, the map travels with an
export and changes the scores the model returns (monotonely) and nothing else, and the collector streams a real
benchmark through the real tiny model."""
from __future__ import annotations

import json

import numpy as np
import pytest
from eval_layouts import make_synthetic

from strvos_core import backends
from strvos_core.config import GroundingConfig
from strvos_core.datasets import read_video_benchmark
from strvos_core.errors import StrvosError
from strvos_core.evaluation.score_calibration import (
    auroc,
    collect,
    fit_calibration,
    main,
    threshold_table,
    write_calibration,
)
from strvos_core.modeling.score_calibration import calibrate, score_logit


def test_the_fit_recovers_a_known_map_and_refuses_what_it_cannot_fit():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.02, 0.98, 20000)
    good = rng.random(raw.size) < calibrate(raw, (1.5, -0.4))
    a, b = fit_calibration(raw, good)
    assert a == pytest.approx(1.5, abs=0.06) and b == pytest.approx(-0.4, abs=0.05)
    with pytest.raises(StrvosError, match="good and with bad"):
        fit_calibration(raw[:10], np.ones(10, bool))
    with pytest.raises(StrvosError, match="does not mean a better mask"):
        fit_calibration(raw, ~good)


def test_auroc_is_the_share_of_good_bad_pairs_ranked_right_ties_half():
    rng = np.random.default_rng(1)
    score = rng.integers(0, 5, 300) / 4.0  # many ties
    good = rng.random(300) < 0.3 + 0.4 * score
    pairs = [(1.0 if s > t else 0.5 if s == t else 0.0) for s in score[good] for t in score[~good]]
    assert auroc(score, good) == pytest.approx(np.mean(pairs), abs=1e-12)
    assert np.isnan(auroc(score, np.ones(300, bool)))


def test_the_map_is_monotone_and_finite_at_the_ends():
    raw = np.array([0.0, 1e-6, 0.2, 0.5, 0.8, 1.0])
    mapped = calibrate(raw, (2.0, 0.3))
    assert np.all(np.diff(mapped) >= 0) and np.all(np.isfinite(mapped)) and np.all((mapped > 0) & (mapped < 1))
    assert score_logit(0.5) == 0.0 and calibrate(0.5, (2.0, 0.0)) == 0.5


def test_config_refuses_a_bad_map():
    for bad in ([1.0], [0.0, 1.0], [-1.0, 0.0], [float("nan"), 0.0], "1,2"):
        with pytest.raises(StrvosError, match="score_calibration"):
            GroundingConfig(score_calibration=bad)
    assert GroundingConfig(score_calibration=[2, 1]).score_calibration == (2.0, 1.0)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synthetic"), {"clip_a": (3, 24, 32)})


def test_the_map_travels_with_an_export_and_changes_scores_only(synthetic_root, tmp_path):
    from strvos_core.checkpoint import save_checkpoint

    plain = backends.create("streamingrvos", model="random:tiny")
    model = plain.model
    folder = save_checkpoint(model, model.tokenizer, tmp_path / "export")
    assert json.loads((folder / "config.json").read_text())["strvos"]["sam2_score_calibration"] is None
    write_calibration(folder, (2.0, 0.5))
    calibrated = backends.create("streamingrvos", model=str(folder))
    assert calibrated.model.config.grounding.score_calibration == (2.0, 0.5)
    bench = read_video_benchmark("synthetic", synthetic_root)
    video = bench.videos[0]
    from strvos_core.datasets.files import load_rgb

    sessions = [b.start_session({e.exp_id: e.expression for e in video.expressions}) for b in (plain, calibrated)]
    for index in range(len(video.frames)):
        frame = load_rgb(video.frame_path(index))
        raw, mapped = (s.step(frame) for s in sessions)
        for key, target in raw.targets.items():
            np.testing.assert_array_equal(target.mask, mapped.targets[key].mask)
            assert mapped.targets[key].score == pytest.approx(float(calibrate(target.score, (2.0, 0.5))), abs=1e-12)
    # the collector sets the model's own map aside and puts it back
    frames = collect(bench, calibrated, expressions_per_session=2)
    assert calibrated.model.config.grounding.score_calibration == (2.0, 0.5)
    expected_rows = len(video.frames) * len(video.expressions)
    assert len(frames.kind) == expected_rows and frames.score.shape == frames.j.shape == (expected_rows,)
    direct = collect(bench, plain, expressions_per_session=2)
    np.testing.assert_allclose(frames.score, direct.score, rtol=0, atol=0)  # raw scores either way
    assert np.all((frames.j >= 0) & (frames.j <= 1))
    table = threshold_table(frames, (2.0, 0.5))
    assert "| raw | all |" in table and "| calibrated | all |" in table
    with pytest.raises(StrvosError, match="not found"):
        write_calibration(tmp_path / "nowhere", (1.0, 0.0))
    plain.release()
    calibrated.release()


def test_the_command_reports_and_names_errors(synthetic_root, capsys):
    code = main(["--model", "random:tiny", "--data-root", str(synthetic_root), "--split", "valid",
                 "--calibration", "1.0", "0.0"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "AUROC of the raw score" in out.out and "(given)" in out.out and "| calibrated | all |" in out.out
    assert main(["--model", "random:tiny", "--data-root", str(synthetic_root / "missing"), "--split", "valid"]) == 2
