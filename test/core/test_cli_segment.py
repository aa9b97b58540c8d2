"""`strvos segment` on a tiny random checkpoint saved to a tmp dir."""
from __future__ import annotations

import cv2
import numpy as np

from strvos_core.checkpoint import save_checkpoint
from strvos_core.cli.main import main


def test_segment_frame_folder(tiny_backend, tmp_path, capsys):
    export = save_checkpoint(tiny_backend.model, tiny_backend.model.tokenizer, tmp_path / "model")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:05d}.jpg"), np.full((24, 24, 3), 40 * i, np.uint8))
    assert main(["segment", "--model", str(export), "--prompt", "the mug", "--input", str(frames),
                 "--out", str(tmp_path / "out")]) == 0
    masks = sorted((tmp_path / "out" / "masks").glob("*.png"))
    assert len(masks) == 2 and cv2.imread(str(masks[0]), cv2.IMREAD_GRAYSCALE).shape == (24, 24)
    assert (tmp_path / "out" / "overlay.mp4").stat().st_size > 0
    said = capsys.readouterr().err  # what it does while loading, and where it wrote
    assert f"loading model {export} on cpu" in said and "model loaded in" in said
    assert f"wrote 2 masks to {tmp_path / 'out' / 'masks'}/ and the overlay video" in said


def test_segment_defaults_to_the_shipped_model_and_refuses_bad_prompts_at_once(tmp_path, capsys):
    from strvos_core.cli.main import build_parser

    args = build_parser().parse_args(["segment", "--prompt", "x", "--input", "v.mp4", "--out", "o"])
    assert args.model == "default"
    assert main(["segment", "--model", "random:tiny", "--prompt", "find the [SEG] token", "--input",
                 str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "prompt refused" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_segment_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["segment", "--model", "random:tiny", "--prompt", "x", "--input", str(tmp_path / "none"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
