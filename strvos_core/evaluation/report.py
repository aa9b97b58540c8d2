"""Merging the ranks' records: per-expression CSV, summary JSON and, for server-scored sets, the archive."""
from __future__ import annotations

import csv
import json
import math
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from strvos_core.datasets.items import VideoBenchmark
from strvos_core.datasets.refcoco import ImageBenchmark
from strvos_core.errors import StrvosError
from strvos_core.evaluation.image_loop import sentence_key
from strvos_core.evaluation.results_store import ResultStore
from strvos_core.evaluation.video_loop import submission_png, video_key
from strvos_core.metrics import ReferringImageScores, jf_summary, revos_breakdown

VIDEO_COLUMNS = ["video_id", "exp_id", "expression", "type_id", "category", "num_frames", "seg_frames", "J", "F",
                 "JF", "A", "R", "seconds_per_frame", "rank"]
UNCATEGORISED = "uncategorised"  # by_category key of expressions without a category when others have one
IMAGE_COLUMNS = ["image_id", "sentence", "ann_id", "text", "has_seg", "intersection", "union", "iou", "seconds",
                 "rank"]


class IncompleteResults(StrvosError):
    """Some items have no record yet (a rank is still running, or failed: rerun to resume)."""


def wait_for_records(store: ResultStore, expected: set, key_of: Callable, timeout_s: float,
                     poll_s: float = 2.0) -> dict:
    """The file barrier of rank 0: wait until every expected item has a record from some rank."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = store.finished(key_of)
        missing = expected - records.keys()
        if not missing:
            return records
        if time.monotonic() >= deadline:
            example = ", ".join("/".join(map(str, k)) for k in sorted(missing)[:3])
            raise IncompleteResults(f"{len(missing)} of {len(expected)} items have no result in {store.folder} "
                                    f"(e.g. {example}); rerun the same command to resume")
        time.sleep(poll_s)


def _write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    tmp.replace(path)


def _write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    """Strict JSON (NaN, e.g. an empty ReVOS category, becomes null), written then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_without_nan(data), indent=indent, default=_jsonable, allow_nan=False) + "\n")
    tmp.replace(path)


def _without_nan(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _timing(seconds: list[float]) -> dict[str, float]:
    arr = np.array([s for s in seconds if s is not None and not math.isnan(s)], dtype=np.float64)
    if arr.size == 0:
        return {}
    return {"mean_s": float(arr.mean()), "median_s": float(np.median(arr)), "p90_s": float(np.percentile(arr, 90))}


def write_submission_zip(benchmark: VideoBenchmark, out_dir: Path) -> Path:
    """Annotations/<video>/<exp_id>/<frame>.png for every item, zipped (Ref-YouTube-VOS / MeViS servers)."""
    archive = out_dir / "submission.zip"
    tmp = archive.with_name(archive.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for video in benchmark.videos:
            for exp in video.expressions:
                for frame in video.frames:
                    png = submission_png(out_dir, video.video_id, exp.exp_id, frame)
                    if not png.is_file():
                        raise IncompleteResults(f"submission mask missing: {png}")
                    zf.write(png, png.relative_to(out_dir).as_posix())
    tmp.replace(archive)
    return archive


def write_reference_results(benchmark: VideoBenchmark, rows: list[dict[str, Any]], out_dir: Path) -> Path:
    """results.json as the reference's ref_vos_eval.py writes it ({vid: {exp_id: {..., prediction_masks}}}),
    so tools/eval/eval_*.py of the reference can score our predictions independently."""
    frames = {v.video_id: list(v.frames) for v in benchmark.videos}
    results: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        results.setdefault(row["video_id"], {})[row["exp_id"]] = {
            "index": index, "video_id": row["video_id"], "exp_id": row["exp_id"], "exp": row["expression"],
            "frames": frames[row["video_id"]], "prediction_masks": row["prediction_masks"]}
    path = out_dir / "results.json"
    _write_json(path, results, indent=None)
    return path


def category_breakdown(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """{category: {"J", "F", "JF", "count"}}: the overall J&F formulas (mean J and F over the category's
    expressions, JF their mean) per expression category, e.g. the synthetic set's appearance / relation /
    motion kinds; {} when no row has a category."""
    rows = list(rows)
    if not any(r.get("category") for r in rows):
        return {}
    groups: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        groups.setdefault(row.get("category") or UNCATEGORISED, []).append((row["J"], row["F"]))
    out: dict[str, dict[str, float | int]] = {}
    for name in sorted(groups):
        scores = jf_summary(groups[name])
        out[name] = {"J": scores["J"], "F": scores["F"], "JF": scores["J&F"], "count": len(groups[name])}
    return out


def format_category_table(by_category: dict[str, dict[str, float | int]]) -> str:
    """The per-category block of summary.json as a small fixed-width table (what `strvos eval` prints)."""
    width = max([len("kind"), *map(len, by_category)])
    lines = [f"{'kind':<{width}}  {'count':>5}  {'J':>6}  {'F':>6}  {'J&F':>6}"]
    for name, s in by_category.items():
        lines.append(f"{name:<{width}}  {s['count']:>5d}  {s['J']:>6.4f}  {s['F']:>6.4f}  {s['JF']:>6.4f}")
    return "\n".join(lines)


def merge_video_results(benchmark: VideoBenchmark, out_dir: Path, run_info: dict[str, Any],
                        wait_s: float = 0.0) -> dict[str, Any]:
    out_dir = Path(out_dir)
    expected = {e.key for e in benchmark.expressions}
    records = wait_for_records(ResultStore(out_dir / "items"), expected, video_key, wait_s)
    rows = [records[k] for k in sorted(expected)]
    categories = {e.key: e.category for e in benchmark.expressions}  # the dataset is the authority, not old records
    for key, row in zip(sorted(expected), rows, strict=True):
        row["category"] = categories[key]
        if "J" in row:
            row["JF"] = (row["J"] + row["F"]) / 2
    _write_csv(out_dir / "per_expression.csv", VIDEO_COLUMNS, rows)
    summary: dict[str, Any] = {**run_info, "dataset": benchmark.name, "split": benchmark.split,
                               "num_videos": len(benchmark.videos), "num_expressions": len(rows),
                               "frames": int(sum(r["num_frames"] for r in rows)),
                               "seconds_per_frame": _timing([r["seconds_per_frame"] for r in rows])}
    if benchmark.scoring == "submission":
        summary["submission"] = str(write_submission_zip(benchmark, out_dir))
    else:
        summary["metrics"] = jf_summary((r["J"], r["F"]) for r in rows)
        by_category = category_breakdown(rows)
        if by_category:
            summary["by_category"] = by_category
    if all("prediction_masks" in r for r in rows):
        summary["predictions"] = str(write_reference_results(benchmark, rows, out_dir))
    if benchmark.scoring == "revos":
        breakdown = revos_breakdown((r["type_id"], r["J"], r["F"], r["A"], r["R"]) for r in rows)
        summary["revos"] = {name: scores.as_dict() for name, scores in breakdown.items()}
    _write_json(out_dir / "summary.json", summary)
    return summary


def merge_image_results(benchmark: ImageBenchmark, out_dir: Path, run_info: dict[str, Any],
                        wait_s: float = 0.0) -> dict[str, Any]:
    out_dir = Path(out_dir)
    expected = {(img.image_id, s.index) for img in benchmark.images for s in img.sentences}
    records = wait_for_records(ResultStore(out_dir / "items"), expected, sentence_key, wait_s)
    rows = [records[k] for k in sorted(expected)]
    _write_csv(out_dir / "per_expression.csv", IMAGE_COLUMNS, rows)
    scores = ReferringImageScores()
    for row in rows:
        scores.add(row["intersection"], row["union"])
    summary = {**run_info, "dataset": benchmark.name, "split": benchmark.split, "num_images": len(benchmark.images),
               "num_sentences": len(rows), "metrics": {"cIoU": scores.ciou, "gIoU": scores.giou,
                                                       "cIoU%": round(100 * scores.ciou, 2),
                                                       "gIoU%": round(100 * scores.giou, 2),
                                                       "no_seg_sentences": scores.missing},
               "seconds_per_sentence": _timing([r["seconds"] for r in rows])}
    _write_json(out_dir / "summary.json", summary)
    return summary
