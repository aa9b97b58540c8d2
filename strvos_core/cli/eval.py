"""`strvos eval`: stream a benchmark through the model frame by frame and score it like the paper.

Sharding: run under torchrun (or set RANK / WORLD_SIZE yourself); each rank takes every WORLD_SIZE-th
video, rank 0 waits for all records (a file barrier, --wait-timeout) and merges. `--merge` only merges.
Rerunning the same command resumes: finished (video, expression) items are never recomputed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "evaluate on a referring segmentation benchmark (J&F, ReVOS, cIoU/gIoU, submission archives)"

VIDEO_DATASETS = ("DAVIS", "MEVIS_U", "MEVIS", "REVOS", "REFYTVOS", "synthetic")
IMAGE_DATASETS = ("refcoco", "refcoco_plus", "refcocog")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=VIDEO_DATASETS + IMAGE_DATASETS,
                        help="the benchmark (its layout: docs/EVALUATION.md)")
    parser.add_argument("--data-root", required=True, type=Path, help="the dataset's root folder")
    parser.add_argument("--model", help="default (the shipped tiny model), HF export folder, hub id, or "
                                         "random:<preset> (not needed with --merge)")
    parser.add_argument("--split", help="default: DAVIS/MEVIS/REVOS/REFYTVOS/synthetic valid, MEVIS_U valid_u, "
                                        "RefCOCO* val; REVOS also referring / reasoning")
    parser.add_argument("--out", type=Path, help="output folder (default: eval_out/<dataset>_<split>, plus "
                                                 "_<backend> for a backend other than streamingrvos)")
    parser.add_argument("--backend", default="streamingrvos",
                        help="a registered backend, e.g. streamingrvos, streamingrvos-no-state (ablation: the "
                             "[SEG] state is never fed back), sa2va-offline")
    parser.add_argument("--device", default="cpu", help="cpu, cuda (cuda:LOCAL_RANK per rank) or cuda:N")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="weights dtype (default float32; bfloat16 on GPUs)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N videos (images for RefCOCO)")
    parser.add_argument("--expressions-per-session", type=int, default=1,
                        help="expressions of a video streamed together in one session (shares frame decoding)")
    parser.add_argument("--save-predictions", action="store_true",
                        help="also keep every predicted mask (COCO RLE) and write the reference's results.json")
    parser.add_argument("--image-root", type=Path, help="RefCOCO: folder of the COCO train2014 images")
    parser.add_argument("--merge", action="store_true", help="only merge the ranks' results (no model)")
    parser.add_argument("--plan", action="store_true",
                        help="only read the dataset and print its size (videos, expressions, model steps)")
    parser.add_argument("--wait-timeout", type=float, default=6 * 3600,
                        help="seconds rank 0 waits for the other ranks before merging (default 6 h)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def default_out(dataset: str, split: str, backend: str) -> Path:
    """eval_out/<dataset>_<split>, plus _<backend> for any other backend than streamingrvos: runs resume from
    their folder's records, so an ablation must never pick up the main model's results (or the reverse)."""
    suffix = "" if backend == "streamingrvos" else f"_{backend}"
    return Path("eval_out") / f"{dataset}_{split}{suffix}"


def _read(args):
    from strvos_core.datasets import read_refcoco, read_video_benchmark

    if args.dataset in IMAGE_DATASETS:
        return read_refcoco(args.dataset, args.data_root, args.split, args.image_root).limited(args.limit)
    return read_video_benchmark(args.dataset, args.data_root, args.split).limited(args.limit)


def _plan(benchmark, is_image: bool) -> dict:
    """Work size: one model step per (frame, expression) for videos, per sentence for images."""
    if is_image:
        return {"dataset": benchmark.name, "split": benchmark.split, "images": len(benchmark.images),
                "sentences": sum(len(i.sentences) for i in benchmark.images),
                "model_steps": sum(len(i.sentences) for i in benchmark.images)}
    return {"dataset": benchmark.name, "split": benchmark.split, "videos": len(benchmark.videos),
            "expressions": len(benchmark.expressions),
            "model_steps": sum(len(v.frames) * len(v.expressions) for v in benchmark.videos)}


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from strvos_core.errors import StrvosError
    from strvos_core.evaluation import (
        ImageEvaluator,
        Shard,
        VideoEvaluator,
        merge_image_results,
        merge_video_results,
    )

    try:
        shard = Shard.from_env()
        benchmark = _read(args)
        out = args.out or default_out(args.dataset, benchmark.split, args.backend)
        is_image = args.dataset in IMAGE_DATASETS
        if args.plan:
            print(json.dumps(_plan(benchmark, is_image)))
            return 0
        if not args.merge:
            if not args.model:
                raise StrvosError("--model is required (or pass --merge to only merge results)")
            from strvos_core import backends

            backend = backends.create(args.backend, model=args.model, device=shard.device(args.device),
                                      dtype=args.dtype)
            try:
                if is_image:
                    ImageEvaluator(benchmark, backend, out, shard, progress=not args.no_progress).run()
                else:
                    VideoEvaluator(benchmark, backend, out, shard, args.expressions_per_session,
                                   progress=not args.no_progress, save_predictions=args.save_predictions).run()
            finally:
                backend.release()
            if shard.rank != 0:
                print(f"rank {shard.rank}: shard done; rank 0 merges into {out}")
                return 0
        run_info = {"model": args.model, "backend": args.backend, "device": args.device, "dtype": args.dtype,
                    "world_size": shard.world_size, "limit": args.limit}
        wait = 0.0 if args.merge or shard.world_size == 1 else args.wait_timeout
        merge = merge_image_results if is_image else merge_video_results
        summary = merge(benchmark, out, run_info, wait_s=wait)
    except (StrvosError, ValueError, OSError) as e:
        print(f"strvos eval: error: {e}", file=sys.stderr)
        return 1
    metrics = summary.get("revos") or summary.get("metrics") or {"submission": summary.get("submission")}
    print(f"{args.dataset} {benchmark.split}: {metrics}")
    if summary.get("by_category"):
        from strvos_core.evaluation.report import format_category_table

        print(format_category_table(summary["by_category"]))
    print(f"results in {out} (summary.json, per_expression.csv)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m strvos_core.cli.eval ...`: the same as `strvos eval ...`."""
    parser = argparse.ArgumentParser(prog="strvos eval", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
