"""`strvos segment` on a tiny random checkpoint saved to a tmp dir."""
from __future__ import annotations

import cv2
import numpy as np

from strvos_core.checkpoint import save_checkpoint
from strvos_core.cli.main import main


def test_segment_frame_folder(tiny_backend, tmp_path):
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


def test_segment_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["segment", "--model", "random:tiny", "--prompt", "x", "--input", str(tmp_path / "none"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
