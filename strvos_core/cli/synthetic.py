"""`strvos synthetic`: write a split of the procedural referring-video dataset to disk."""
from __future__ import annotations

import argparse
import sys
import time

HELP = "Write a synthetic referring-video split (Ref-YouTube-VOS layout plus depth)."


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like WIDTHxHEIGHT, e.g. 320x240, got {text!r}") from None
    return width, height


def _objects(text: str) -> tuple[int, int]:
    try:
        low, _, high = text.partition("-")
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--objects must look like MIN-MAX, e.g. 2-5, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from strvos_core.datasets.synthetic.config import SPLITS

    parser.add_argument("--root", required=True, help="dataset root folder")
    parser.add_argument("--split", required=True, choices=SPLITS,
                        help="which split to write (splits never share a video seed)")
    parser.add_argument("--videos", type=int, required=True, help="number of videos")
    parser.add_argument("--seed", type=int, default=0, help="base seed (splits never share video seeds)")
    parser.add_argument("--frames", type=int, default=20, help="frames per video")
    parser.add_argument("--size", type=_size, default=(320, 240), help="WIDTHxHEIGHT (default 320x240)")
    parser.add_argument("--objects", type=_objects, default=(2, 5), help="objects per scene MIN-MAX (default 2-5)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from strvos_core.datasets.synthetic import SyntheticConfig, write_dataset

    try:
        config = SyntheticConfig(width=args.size[0], height=args.size[1], num_frames=args.frames,
                                 min_objects=args.objects[0], max_objects=args.objects[1])
        start = time.perf_counter()
        meta_path = write_dataset(args.root, args.split, args.videos, args.seed, config,
                                  progress=not args.no_progress)
    except ValueError as error:
        print(f"strvos synthetic: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.videos} videos of split {args.split!r} in {time.perf_counter() - start:.1f} s; "
          f"expressions: {meta_path}")
    return 0
