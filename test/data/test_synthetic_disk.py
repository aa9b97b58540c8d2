"""The synthetic set on disk: Ref-YouTube-VOS layout plus depth, byte-identical by seed, lossless ground
truth, disjoint splits, the `strvos synthetic` command, and the dataset readers reading it back."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from strvos_core.cli import synthetic as synthetic_cli
from strvos_core.datasets.synthetic import (
    SPLITS,
    SyntheticConfig,
    generate_video,
    iter_split,
    video_name,
    video_seed,
    write_dataset,
)
from strvos_core.datasets.synthetic.render import intrinsics

CONFIG = SyntheticConfig(width=128, height=96, num_frames=8)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, "train", 3, seed=5, config=CONFIG)
    return root


def test_same_seed_writes_byte_identical_files(written, tmp_path):
    write_dataset(tmp_path, "train", 3, seed=5, config=CONFIG)
    again, first = _files(tmp_path), _files(written)
    assert again.keys() == first.keys() and len(first) == 3 * 8 * 3 + 2
    assert all(again[name] == first[name] for name in first)


def test_layout_and_expression_file_schema(written):
    meta = json.loads((written / "meta_expressions" / "train" / "meta_expressions.json").read_text())
    assert set(meta) == {"videos"}
    names = [video_name(video_seed("train", 5, i)) for i in range(3)]
    assert list(meta["videos"]) == names
    for name, entry in meta["videos"].items():
        assert entry["frames"] == [f"{t:05d}" for t in range(8)]
        video = generate_video(entry["seed"], CONFIG)
        assert entry["expressions"] == {e.exp_id: {"exp": e.text, "obj_id": str(e.obj_id), "kind": e.kind}
                                        for e in video.expressions}
        assert all(e["kind"] in ("appearance", "relation", "motion") for e in entry["expressions"].values())
        assert set(entry["objects"]) == {str(o.obj_id) for o in video.objects}
        for frame in entry["frames"]:
            for folder, ext in (("JPEGImages", "jpg"), ("Annotations", "png"), ("Depth", "png")):
                assert (written / "train" / folder / name / f"{frame}.{ext}").is_file()
    camera = json.loads((written / "train" / "camera_info.json").read_text())
    assert camera["width"] == 128 and camera["height"] == 96
    assert np.allclose(np.reshape(camera["K"], (3, 3)), intrinsics(CONFIG))
    assert camera["distortion_model"] == "plumb_bob" and camera["D"] == [0.0] * 5


def test_images_have_the_right_modes_and_hold_the_ground_truth(written):
    meta = json.loads((written / "meta_expressions" / "train" / "meta_expressions.json").read_text())
    for name, entry in meta["videos"].items():
        video = generate_video(entry["seed"], CONFIG)
        for t, frame in enumerate(entry["frames"]):
            jpeg = Image.open(written / "train" / "JPEGImages" / name / f"{frame}.jpg")
            assert jpeg.format == "JPEG" and jpeg.mode == "RGB" and jpeg.size == (128, 96)
            rgb = np.asarray(jpeg).astype(np.int16)
            assert np.abs(rgb - video.frames[t]).mean() < 4  # lossy, but the same picture

            mask = Image.open(written / "train" / "Annotations" / name / f"{frame}.png")
            assert mask.mode == "P" and mask.size == (128, 96)
            assert np.array_equal(np.asarray(mask), video.labels[t])
            palette = mask.getpalette()
            assert palette[:3] == [0, 0, 0] and palette[3:6] != [0, 0, 0]

            depth_path = written / "train" / "Depth" / name / f"{frame}.png"
            depth_image = Image.open(depth_path)
            assert depth_image.mode in ("I;16", "I;16B", "I")  # 16-bit greyscale PNG
            with open(depth_path, "rb") as handle:
                header = handle.read(26)
            assert header[24] == 16 and header[25] == 0  # IHDR: bit depth 16, colour type greyscale
            depth = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
            assert depth.dtype == np.uint16 and np.array_equal(depth, video.depth_mm[t])
            # millimetres: objects between 0.8 and 2 m, the background plane behind them
            objects = depth[(video.labels[t] > 0) & (depth > 0)]
            if objects.size:
                assert 800 <= objects.min() and objects.max() <= 2000
            assert np.median(depth[video.labels[t] == 0]) > 2000


def test_splits_never_share_videos(tmp_path):
    names = {}
    for split in SPLITS:
        write_dataset(tmp_path, split, 4, seed=0, config=CONFIG)
        meta = json.loads((tmp_path / "meta_expressions" / split / "meta_expressions.json").read_text())
        names[split] = set(meta["videos"])
        assert sorted(p.name for p in (tmp_path / split / "JPEGImages").iterdir()) == sorted(names[split])
    assert sum(len(v) for v in names.values()) == len(set().union(*names.values())) == 12
    # Whatever base seeds the splits use, their video seeds differ (the split is the seed modulo 3).
    seeds = {split: {video_seed(split, s, i) for s in range(5) for i in range(50)} for split in SPLITS}
    assert not (seeds["train"] & seeds["valid"]) and not (seeds["train"] & seeds["test"])
    assert not (seeds["valid"] & seeds["test"])
    assert len(seeds["train"]) == 250  # and no collisions within a split
    frames = [next(iter_split(split, 1, 0, CONFIG))[1].frames for split in SPLITS]
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[2])


def test_in_memory_split_matches_the_written_split(written):
    meta = json.loads((written / "meta_expressions" / "train" / "meta_expressions.json").read_text())
    for (name, video), (written_name, entry) in zip(iter_split("train", 3, 5, CONFIG), meta["videos"].items(),
                                                     strict=True):
        assert name == written_name and video.seed == entry["seed"]


@pytest.mark.parametrize("call, message", [
    (lambda root: write_dataset(root, "val", 1), "split"),
    (lambda root: write_dataset(root, "train", -1), "num_videos"),
    (lambda root: write_dataset(root, "train", 1, seed=-2), "seed"),
    (lambda root: write_dataset(root / "file.txt", "train", 1), "not a directory"),
])
def test_bad_arguments_are_clear_errors(tmp_path, call, message):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match=message):
        call(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]  # refused before writing anything


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="strvos synthetic")
    synthetic_cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_writes_a_split(tmp_path, capsys):
    args = _cli(["--root", str(tmp_path), "--split", "valid", "--videos", "2", "--seed", "1", "--frames", "8",
                 "--size", "96x64", "--objects", "2-3"])
    assert synthetic_cli.run(args) == 0
    meta = json.loads((tmp_path / "meta_expressions" / "valid" / "meta_expressions.json").read_text())
    assert len(meta["videos"]) == 2
    assert json.loads((tmp_path / "valid" / "camera_info.json").read_text())["width"] == 96
    captured = capsys.readouterr()
    assert "wrote 2 videos" in captured.out and "synthetic valid" in captured.err  # progress bar on stderr


def test_cli_rejects_bad_values(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _cli(["--root", str(tmp_path), "--split", "train", "--videos", "1", "--size", "320by240"])
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    args = _cli(["--root", str(tmp_path), "--split", "train", "--videos", "1", "--frames", "2", "--no-progress"])
    assert synthetic_cli.run(args) == 2
    assert "num_frames" in capsys.readouterr().err


def test_the_dataset_reader_reads_the_written_split(written):
    from strvos_core.datasets import read_video_benchmark

    benchmark = read_video_benchmark("synthetic", written, "train")
    meta = json.loads((written / "meta_expressions" / "train" / "meta_expressions.json").read_text())
    assert [v.video_id for v in benchmark.videos] == list(meta["videos"])
    video = benchmark.videos[0]
    truth = generate_video(meta["videos"][video.video_id]["seed"], CONFIG)
    for expression in video.expressions:
        target = next(e for e in truth.expressions if e.exp_id == expression.exp_id)
        assert expression.expression == target.text
        for t in range(len(video.frames)):
            mask = benchmark.ground_truth.frame_mask(video, expression, t, (96, 128))
            assert np.array_equal(mask.astype(bool), truth.masks[target.obj_id][t])


def test_strvos_command_runs_the_synthetic_subcommand(tmp_path):
    from strvos_core.cli.main import main

    argv = ["synthetic", "--root", str(tmp_path), "--split", "test", "--videos", "1", "--frames", "8",
            "--size", "96x64", "--no-progress"]
    assert main(argv) == 0
    assert len(list((tmp_path / "test" / "JPEGImages").rglob("*.jpg"))) == 8
