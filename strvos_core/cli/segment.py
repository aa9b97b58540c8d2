"""`strvos segment`: one referring expression through a video file or a folder of frames, frame by frame as a
camera would deliver them; writes a PNG mask per frame and an overlay video (mask, state, score).

It runs the same real-time pipeline as the ROS node (realtime.pipeline): the prompt is checked the same way,
and the overlay shows the same tracking state (a mask below --score-threshold is a dashed outline). It says
what it is doing while it loads (a model can take minutes) and where it wrote.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = "segment one referring expression in a video (file or frame folder): PNG masks + overlay mp4"
FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="default",
                        help="default (the tiny model shipped with strvos; the default), an HF export folder, a hub "
                             "id, or random:<preset> (random weights, for trying the pipeline)")
    parser.add_argument("--prompt", required=True, help="the referring expression, e.g. 'the red mug on the left'")
    parser.add_argument("--input", required=True, help="a video file or a folder of frames (sorted by name)")
    parser.add_argument("--out", required=True, help="output folder (masks/NNNNN.png, overlay.mp4)")
    parser.add_argument("--backend", default="streamingrvos",
                        help="a registered backend: streamingrvos (default), streamingrvos-no-state, sa2va-offline")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:N")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                        help="weights dtype (default float32; bfloat16 on GPUs)")
    parser.add_argument("--score-threshold", type=float, default=0.5,
                        help="the overlay calls a mask TRACKING (filled) from this score on, as the node does; "
                             "the PNG masks are written whatever the score (default 0.5)")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of overlay.mp4 (default 10)")


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


def frame_count(source: Path) -> int | None:
    """How many frames ``source`` holds, when that is cheap to know (for the progress bar)."""
    if source.is_dir():
        return sum(1 for p in source.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    import cv2

    capture = cv2.VideoCapture(str(source))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    return count or None


def _say(text: str) -> None:
    print(f"strvos segment: {text}", file=sys.stderr, flush=True)


def _model_description(spec: str) -> str:
    from strvos_core.checkpoint import DEFAULT_MODEL_DIR, DEFAULT_MODEL_SPEC

    return f"{spec} ({DEFAULT_MODEL_DIR})" if spec == DEFAULT_MODEL_SPEC else spec


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np
    from tqdm import tqdm

    from strvos_core import backends
    from strvos_core.errors import StrvosError
    from strvos_core.realtime.commands import SetPrompt
    from strvos_core.realtime.overlay import draw_targets
    from strvos_core.realtime.pipeline import CameraFrame, Pipeline, PipelineSettings
    from strvos_core.realtime.tracking import TrackingState

    out = Path(args.out)
    pipeline = Pipeline(PipelineSettings(score_threshold=args.score_threshold, max_prompt_chars=1000))
    ack = pipeline.submit(SetPrompt(args.prompt))
    if not ack.accepted:
        _say(f"error: prompt refused: {ack.message}")
        return 2
    try:
        source = Path(args.input)
        frames = iter_frames(source)
        first = next(frames)
        count = frame_count(source)
        _say(f"reading {source} ({first.shape[1]}x{first.shape[0]}" + (f", {count} frames)" if count else ")"))
        _say(f"loading model {_model_description(args.model)} on {args.device} ({args.dtype}) ...")
        started = time.monotonic()
        pipeline.attach(backends.create(args.backend, model=args.model, device=args.device, dtype=args.dtype))
        _say(f"model loaded in {time.monotonic() - started:.1f} s; segmenting {ack.prompt!r}")
    except StrvosError as exc:
        _say(f"error: {exc}")
        return 2
    (out / "masks").mkdir(parents=True, exist_ok=True)
    height, width = first.shape[:2]
    writer = cv2.VideoWriter(str(out / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), args.fps, (width, height))

    def all_frames():
        yield first
        yield from frames

    written, tracked = 0, 0
    try:
        for index, frame in enumerate(tqdm(all_frames(), desc="segment", unit="frame", total=count)):
            (target,) = pipeline.process(CameraFrame(frame)).targets
            cv2.imwrite(str(out / "masks" / f"{index:05d}.png"), target.mask.astype(np.uint8) * 255)
            overlay = draw_targets(frame, [target], threshold=args.score_threshold)
            writer.write(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
            written += 1
            tracked += int(target.state is TrackingState.TRACKING)
    except StrvosError as exc:
        _say(f"error: {exc}")
        return 2
    finally:
        writer.release()
        pipeline.release()
    _say(f"wrote {written} masks to {out / 'masks'}/ and the overlay video {out / 'overlay.mp4'} "
         f"(TRACKING in {tracked} of {written} frames at score >= {args.score_threshold:g})")
    return 0
