"""Contact sheet of a demo run: per prompt segment of `out/demo/overlay.mp4`, the answered frame nearest its middle.

    python tools/demo_sheet.py out/demo/overlay.mp4 docs/figures/demo_overlay_tiny.png [--per-segment 20]

A frame the node answered carries a three-line label at its top-left (prompt, status and score, pose); a dropped
frame two lines ("no result"), so the label box's height tells them apart. Frames are halved and laid out three to
a row, one per prompt segment, as the README shows them.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

ANSWERED_LABEL_ROWS = (50, 70)  # pixel rows of a three-line label at the overlay's size (a two-line one is ~40)


def read_frames(path: str) -> list[np.ndarray]:
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    if not frames:
        raise SystemExit(f"demo_sheet: no frames in {path}")
    return frames


def label_rows(frame: np.ndarray, depth: int = 90) -> int:
    """Rows of the dark label box at the frame's top-left corner."""
    dark = frame[:depth, 1].astype(int).sum(axis=1) < 150
    return depth if dark.all() else int(np.argmin(dark))


def pick(frames: list[np.ndarray], per_segment: int) -> list[int]:
    low, high = ANSWERED_LABEL_ROWS
    picked = []
    for segment in range(len(frames) // per_segment):
        middle = segment * per_segment + per_segment // 2
        order = sorted(range(segment * per_segment, (segment + 1) * per_segment), key=lambda i: abs(i - middle))
        picked.append(next((i for i in order if low <= label_rows(frames[i]) <= high), order[0]))
    return picked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video")
    parser.add_argument("out")
    parser.add_argument("--per-segment", type=int, default=20, help="frames per prompt (demo.py: frames per clip / 2)")
    args = parser.parse_args(argv)
    frames = read_frames(args.video)
    picked = pick(frames, args.per_segment)
    small = [cv2.resize(frames[i], (frames[i].shape[1] // 2, frames[i].shape[0] // 2), interpolation=cv2.INTER_AREA)
             for i in picked]
    blank = np.zeros_like(small[0])
    small += [blank] * (-len(small) % 3)
    cv2.imwrite(args.out, np.vstack([np.hstack(small[r:r + 3]) for r in range(0, len(small), 3)]))
    print(f"frames {picked} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
