"""`strvos segment`: run a backend over a video file or a folder of frames; write PNG masks and an overlay video."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "segment one referring expression in a video (file or frame folder): PNG masks + overlay mp4"
FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="default (the shipped tiny model), export directory, hub id, "
                                                       "or random:<preset>")
    parser.add_argument("--prompt", required=True, help="the referring expression")
    parser.add_argument("--input", required=True, help="a video file or a folder of frames (sorted by name)")
    parser.add_argument("--out", required=True, help="output folder (masks/NNNNN.png, overlay.mp4)")
    parser.add_argument("--backend", default="streamingrvos")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])


def iter_frames(source: Path):
    """RGB uint8 frames from a frame folder or a video file; StrvosError when the input is unusable."""
    import cv2

    from strvos_core.errors import StrvosError

    if not source.exists():
        raise StrvosError(f"input {source} does not exist")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise StrvosError(f"input folder {source} has no image frames ({sorted(FRAME_SUFFIXES)})")
        for path in files:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise StrvosError(f"cannot read frame {path}")
            yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise StrvosError(f"cannot open video {source}")
    count = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        count += 1
        yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    capture.release()
    if count == 0:
        raise StrvosError(f"video {source} has no readable frames")


def run(args: argparse.Namespace) -> int:
    import sys

    import cv2
    import numpy as np
    from tqdm import tqdm

    from strvos_core import backends
    from strvos_core.errors import StrvosError

    out = Path(args.out)
    try:
        frames = iter_frames(Path(args.input))
        first = next(frames)
        backend = backends.create(args.backend, model=args.model, device=args.device, dtype=args.dtype)
        session = backend.start_session({"target": args.prompt})
    except StrvosError as exc:
        print(f"strvos segment: error: {exc}", file=sys.stderr)
        return 2
    (out / "masks").mkdir(parents=True, exist_ok=True)
    height, width = first.shape[:2]
    writer = cv2.VideoWriter(str(out / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (width, height))

    def all_frames():
        yield first
        yield from frames

    try:
        for index, frame in enumerate(tqdm(all_frames(), desc="segment", unit="frame")):
            mask = session.step(frame).targets["target"].mask
            cv2.imwrite(str(out / "masks" / f"{index:05d}.png"), mask.astype(np.uint8) * 255)
            overlay = frame.copy()
            overlay[mask] = (0.5 * overlay[mask] + 0.5 * np.array([255, 0, 0])).astype(np.uint8)
            writer.write(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    except StrvosError as exc:
        print(f"strvos segment: error: {exc}", file=sys.stderr)
        return 2
    finally:
        writer.release()
        backend.release()
    return 0
