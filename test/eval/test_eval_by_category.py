"""Per-kind J&F of the synthetic set (appearance / relation / motion), through `strvos eval` itself, run
in-process on a split written by the synthetic generator, with the no-state ablation backend."""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from strvos_core.cli.eval import default_out
from strvos_core.cli.eval import main as eval_main
from strvos_core.datasets import DatasetError, read_video_benchmark
from strvos_core.datasets.synthetic import SyntheticConfig, write_dataset
from strvos_core.evaluation.report import UNCATEGORISED, category_breakdown, format_category_table

# 64x64 frames, 8 frames, 2 objects: each video has up to 6 expressions covering every kind that applies
CONFIG = SyntheticConfig(width=64, height=64, num_frames=8, min_objects=2, max_objects=2)


@pytest.fixture(scope="module")
def synthetic_test_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_kinds")
    meta_path = write_dataset(root, "test", 2, seed=0, config=CONFIG)
    return root, json.loads(meta_path.read_text())


def test_reader_carries_the_kind(synthetic_test_split):
    root, meta = synthetic_test_split
    bench = read_video_benchmark("synthetic", root, "test")
    kinds = {(vid, exp_id): exp["kind"] for vid, entry in meta["videos"].items()
             for exp_id, exp in entry["expressions"].items()}
    assert {e.key: e.category for e in bench.expressions} == kinds
    assert set(kinds.values()) == {"appearance", "relation", "motion"}  # the fixture exercises every kind


def test_eval_cli_reports_each_kind_with_the_no_state_backend(synthetic_test_split, tmp_path, capsys):
    root, meta = synthetic_test_split
    out = tmp_path / "out"
    code = eval_main(["--dataset", "synthetic", "--data-root", str(root), "--split", "test",
                      "--model", "random:tiny", "--backend", "streamingrvos-no-state", "--out", str(out),
                      "--expressions-per-session", "8", "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "streamingrvos-no-state"

    kinds = {(vid, exp_id): exp["kind"] for vid, entry in meta["videos"].items()
             for exp_id, exp in entry["expressions"].items()}
    by_category = summary["by_category"]
    assert {k: v["count"] for k, v in by_category.items()} == dict(Counter(kinds.values()))

    with open(out / "per_expression.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["video_id"], r["exp_id"]): r["category"] for r in rows} == kinds
    for kind, scores in by_category.items():
        mine = [r for r in rows if r["category"] == kind]
        for column in ("J", "F", "JF"):
            assert scores[column] == pytest.approx(float(np.mean([float(r[column]) for r in mine])), abs=1e-12)
    # the overall numbers stay the mean over all expressions, whatever the kinds
    assert summary["metrics"]["J&F"] == pytest.approx(float(np.mean([float(r["JF"]) for r in rows])), abs=1e-12)
    assert format_category_table(by_category) in printed.out
    assert printed.out.count("\n") >= len(by_category) + 1


def test_breakdown_only_when_some_expression_has_a_category():
    assert category_breakdown([{"J": 0.5, "F": 0.7, "category": None}]) == {}
    rows = [{"J": 0.2, "F": 0.4, "category": "motion"}, {"J": 0.6, "F": 0.8, "category": "motion"},
            {"J": 1.0, "F": 0.0, "category": None}]
    out = category_breakdown(rows)
    assert list(out) == ["motion", UNCATEGORISED]
    assert out["motion"] == pytest.approx({"J": 0.4, "F": 0.6, "JF": 0.5, "count": 2})
    assert out[UNCATEGORISED] == pytest.approx({"J": 1.0, "F": 0.0, "JF": 0.5, "count": 1})
    table = format_category_table(out).splitlines()
    assert table[0].split() == ["kind", "count", "J", "F", "J&F"]
    assert table[1].split() == ["motion", "2", "0.4000", "0.6000", "0.5000"]


def test_a_malformed_kind_names_the_file(synthetic_test_split, tmp_path):
    root, meta = synthetic_test_split
    broken = json.loads(json.dumps(meta))
    vid = sorted(broken["videos"])[0]
    broken["videos"][vid]["expressions"]["0"]["kind"] = 3
    copy = tmp_path / "copy"
    (copy / "meta_expressions" / "test").mkdir(parents=True)
    (copy / "test").symlink_to(root / "test", target_is_directory=True)
    meta_path = copy / "meta_expressions" / "test" / "meta_expressions.json"
    meta_path.write_text(json.dumps(broken))
    with pytest.raises(DatasetError, match=rf"{meta_path}.*'kind' must be a non-empty string, got 3"):
        read_video_benchmark("synthetic", copy, "test")


def test_the_ablation_never_resumes_from_the_main_runs_folder():
    assert default_out("synthetic", "test", "streamingrvos") == Path("eval_out/synthetic_test")
    assert default_out("synthetic", "test", "streamingrvos-no-state") == Path(
        "eval_out/synthetic_test_streamingrvos-no-state")
