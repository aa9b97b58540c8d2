#!/usr/bin/env python3
"""Produce test/fixtures/metrics/*.json by RUNNING the reference's own metric code on small generated masks.

Nothing of the reference is committed: at run time this script exports, from the git mirror of
wkzhang636/StreamingRVOS, `third_parts/revos/utils/metrics.py`, `tools/eval/eval_{mevis,davis,revos}.py`,
`projects/streamingrvos/evaluation/dataset/RES.py` and `.../utils/utils_refcoco.py` into a temp dir, with only
these edits: the scripts use one worker process (their `while not q.empty(): q.get()` loop can hang
with several workers, and finds the queue still empty when run in-process before its feeder thread flushed), RES.py's broken import path (`projects.llava_sam2`) points at a two-line shim
exposing the exported utils, `.cuda()` is dropped and `torch.histc` gets float input (CPU histc has no
int kernel; counts of 0/1/2 values are unchanged), and `third_parts/__init__.py` is empty (the real one
imports a video reader that is not needed).

The reference needs scikit-image (disk), pandas (eval_revos) and matplotlib (REFER import chain, unused
here); they are installed into a scratch folder (`--site`, default /tmp/strvos-refmetrics-site) with
`pip install --target`, never into the project venv.

Usage (project venv active):  python tools/reference_metrics/make_fixture.py [--mirror DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import pickle
import queue
import re
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MIRROR = Path("/work/.mirror/wkzhang636+StreamingRVOS/repo")
DEFAULT_SITE = Path("/tmp/strvos-refmetrics-site")
SCRATCH_PACKAGES = ["scikit-image", "pandas", "matplotlib"]

EXPORTS = {
    "third_parts/revos/__init__.py": "third_parts/revos/__init__.py",
    "third_parts/revos/utils/__init__.py": "third_parts/revos/utils/__init__.py",
    "third_parts/revos/utils/metrics.py": "third_parts/revos/utils/metrics.py",
    "tools/eval/metrics.py": "tools/eval/metrics.py",
    "tools/eval/eval_mevis.py": "tools/eval/eval_mevis.py",
    "tools/eval/eval_davis.py": "tools/eval/eval_davis.py",
    "tools/eval/eval_revos.py": "tools/eval/eval_revos.py",
    "projects/streamingrvos/evaluation/dataset/RES.py": "res_eval/RES.py",
    "projects/streamingrvos/evaluation/utils/utils_refcoco.py": "projects/llava_sam2/evaluation/utils/utils_refcoco.py",
}


# --------------------------------------------------------------------------------------------- environment
def ensure_scratch_packages(site: Path) -> None:
    """Re-exec with the scratch site on PYTHONPATH, installing it first when missing."""
    try:
        import matplotlib  # noqa: F401
        import pandas  # noqa: F401
        import skimage  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("STRVOS_REFMETRICS_REEXEC"):
        sys.exit(f"scikit-image/pandas/matplotlib still not importable from {site}")
    if not (site / "skimage").is_dir():
        constraints = site.parent / "strvos-refmetrics-constraints.txt"
        constraints.write_text(f"numpy=={np.__version__}\n")
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(site),
                               "-c", str(constraints), *SCRATCH_PACKAGES])
    env = dict(os.environ, STRVOS_REFMETRICS_REEXEC="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def export_reference(mirror: Path, dest: Path) -> str:
    commit = subprocess.check_output(["git", "-C", str(mirror), "rev-parse", "HEAD"], text=True).strip()
    for src, dst in EXPORTS.items():
        text = subprocess.check_output(["git", "-C", str(mirror), "show", f"HEAD:{src}"], text=True)
        if dst.startswith("tools/eval/eval_"):
            text = re.sub(r"^NUM_WOEKERS = \d+", "NUM_WOEKERS = 1", text, flags=re.M)
            text = text.replace("if NUM_WOEKERS > 1:", "if NUM_WOEKERS >= 1:")
        if dst == "res_eval/RES.py":
            text = text.replace("from projects.llava_sam2.evaluation.utils import REFER, ",
                                "from projects.llava_sam2.evaluation.utils import ")
            text = text.replace(".int().cuda()", ".float()")
        out = dest / dst
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    (dest / "third_parts/__init__.py").write_text("")
    for pkg in ("projects", "projects/llava_sam2", "projects/llava_sam2/evaluation"):
        (dest / pkg / "__init__.py").write_text("")
    (dest / "projects/llava_sam2/evaluation/utils/__init__.py").write_text(
        "from .utils_refcoco import AverageMeter, Summary, intersectionAndUnionGPU\n"
        "def master_only(f):\n    return f\n")
    return commit


# --------------------------------------------------------------------------------------------- test masks
def blob(rng: np.random.Generator, h: int, w: int, touch_border: bool = False) -> np.ndarray:
    """An ellipse with ragged edges (random pixels flipped near its border)."""
    yy, xx = np.mgrid[:h, :w]
    cy = rng.uniform(0, h) if touch_border else rng.uniform(h * 0.3, h * 0.7)
    cx = rng.uniform(0, w) if touch_border else rng.uniform(w * 0.3, w * 0.7)
    ry, rx = rng.uniform(h * 0.1, h * 0.4), rng.uniform(w * 0.1, w * 0.4)
    d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    mask = d <= 1
    ragged = (np.abs(d - 1) < 0.25) & (rng.random((h, w)) < 0.3)
    return (mask ^ ragged).astype(np.uint8)


def perturb(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """A plausible prediction: shifted by a few pixels, with some noise."""
    dy, dx = rng.integers(-3, 4, size=2)
    shifted = np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    noise = rng.random(mask.shape) < 0.01
    return (shifted.astype(bool) ^ noise).astype(np.uint8)


def rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as coco_mask

    r = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    r["counts"] = r["counts"].decode()
    return r


def make_video_cases(rng: np.random.Generator) -> dict:
    """Videos in the MeViS/ReVOS json layout, with predictions covering the metric's corner cases."""
    sizes = [(24, 32), (37, 53), (60, 80), (90, 120), (150, 210)]
    meta, mask_dict, foreground, preds = {}, {}, {}, {}
    anno_counter = 0
    for v, (h, w) in enumerate(sizes):
        vid = f"vid{v:02d}"
        n_frames = 3 + v % 3
        frames = [f"{i:05d}" for i in range(n_frames)]
        objects = []
        for _ in range(3):
            masks = [blob(rng, h, w, touch_border=rng.random() < 0.3) for _ in frames]
            if rng.random() < 0.5:
                masks[rng.integers(n_frames)][:] = 0  # object absent on a frame
            objects.append(masks)
        ids = list(range(anno_counter, anno_counter + 3))
        anno_counter += 3
        for anno_id, masks in zip(ids, objects, strict=True):
            mask_dict[str(anno_id)] = [rle(m) if m.any() else None for m in masks]
        foreground[vid] = {"masks_rle": [rle(np.clip(sum(o[i] for o in objects), 0, 1)) for i in range(n_frames)]}
        exps, vid_preds = {}, {}
        # expression kinds: one object, two (possibly overlapping) objects, no object; each with a prediction style
        plans = [([ids[0]], "perturb", 0), ([ids[1], ids[2]], "perturb", 1), ([ids[0]], "empty", 0),
                 ([], "noise", 2), ([ids[2]], "exact", 1), ([ids[1]], "full", 0), ([], "empty", 2)]
        for e, (anno_ids, style, type_id) in enumerate(plans):
            gt = [np.clip(sum((objects[ids.index(a)][i] for a in anno_ids), np.zeros((h, w), np.uint8)), 0, 1)
                  for i in range(n_frames)]
            if style == "perturb":
                pred = [perturb(rng, g) for g in gt]
            elif style == "exact":
                pred = [g.copy() for g in gt]
            elif style == "full":
                pred = [np.ones((h, w), np.uint8) for _ in gt]
            elif style == "noise":
                pred = [(rng.random((h, w)) < 0.004).astype(np.uint8) for _ in gt]
            else:
                pred = [np.zeros((h, w), np.uint8) for _ in gt]
            exps[str(e)] = {"exp": f"object {e} of {vid}", "anno_id": anno_ids, "obj_id": anno_ids, "type_id": type_id}
            vid_preds[str(e)] = {"video_id": vid, "exp_id": str(e), "frames": frames,
                                 "prediction_masks": [rle(p) for p in pred]}
        meta[vid] = {"frames": frames, "expressions": exps, "height": h, "width": w}
        preds[vid] = vid_preds
    return {"meta": {"videos": meta}, "mask_dict": mask_dict, "foreground": foreground, "predictions": preds}


def polygon(rng: np.random.Generator, h: int, w: int) -> list[float]:
    cx, cy = rng.uniform(w * 0.2, w * 0.8), rng.uniform(h * 0.2, h * 0.8)
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=int(rng.integers(5, 9))))
    radius = rng.uniform(0.1, 0.35) * min(h, w) * rng.uniform(0.6, 1.0, size=angles.size)
    pts = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
    return [round(float(v), 2) for v in pts.reshape(-1)]


def make_refcoco_cases(rng: np.random.Generator) -> dict:
    """Images with polygon annotations (some with two overlapping parts) and per-sentence predictions."""
    from pycocotools import mask as coco_mask

    images, annotations, results = [], [], []
    ann_id = 100
    for i, (h, w) in enumerate([(40, 60), (64, 48), (75, 100), (120, 90)]):
        images.append({"id": i + 1, "height": h, "width": w, "file_name": f"img{i}.jpg"})
        sentences, preds = [], []
        for k in range(4):
            parts = [polygon(rng, h, w)] + ([polygon(rng, h, w)] if k % 2 else [])
            if i == 0 and k == 3:
                parts = []  # an annotation without segmentation: empty truth
            annotations.append({"id": ann_id, "image_id": i + 1, "segmentation": parts, "category_id": 1})
            target = (np.sum(coco_mask.decode(coco_mask.frPyObjects(parts, h, w)), axis=2).astype(np.uint8)
                      if parts else np.zeros((h, w), np.uint8))
            for s in range(2):
                sentences.append({"ann_id": ann_id, "sent": f"thing {k} take {s}"})
                style = (k + s + i) % 5
                if style == 4 and i != 0:
                    preds.append(None)  # the model gave no [SEG]
                elif style == 3:
                    preds.append(np.zeros((h, w), np.uint8))
                else:
                    preds.append(perturb(rng, (target > 0).astype(np.uint8)))
            ann_id += 1
        results.append({"image_id": i + 1, "sentences": sentences,
                        "predictions": [None if p is None else rle(p) for p in preds]})
    return {"images": images, "annotations": annotations, "results": results}


# --------------------------------------------------------------------------------------------- reference runs
def per_frame_reference(ref_metrics, cases: dict) -> dict:
    """Per-frame J, F, A, R from the reference functions, on masks decoded the reference's way."""
    from pycocotools import mask as coco_mask

    out = {}
    for vid, entry in cases["meta"]["videos"].items():
        n, h, w = len(entry["frames"]), entry["height"], entry["width"]
        fg = np.stack([coco_mask.decode(r) for r in cases["foreground"][vid]["masks_rle"]]).astype(np.uint8)
        for exp_id, exp in entry["expressions"].items():
            gt = np.zeros((n, h, w), np.uint8)
            for i in range(n):
                for a in exp["anno_id"]:
                    r = cases["mask_dict"][str(a)][i]
                    if r:
                        gt[i] += coco_mask.decode(r)
            pred = np.stack([coco_mask.decode(r) for r in cases["predictions"][vid][exp_id]["prediction_masks"]])
            out[f"{vid}/{exp_id}"] = {
                "J": ref_metrics.db_eval_iou(gt, pred).tolist(),
                "F": ref_metrics.db_eval_boundary(gt, pred).tolist(),
                "A": ref_metrics.get_r2vos_accuracy(gt, pred).tolist(),
                "R": ref_metrics.get_r2vos_robustness(gt, pred, fg).tolist(),
            }
    return out


def run_eval_queue(module, cases: dict, exp_dict: dict, mask_dict: dict) -> dict:
    """Call a reference script's `eval_queue` in-process (its globals set as its __main__ would)."""
    module.exp_dict = exp_dict
    module.mask_dict = mask_dict
    module.mask_pred_dict = cases["predictions"]
    module.mask_dict_foreground = cases["foreground"]
    q: queue.Queue = queue.Queue()
    for vid, entry in exp_dict.items():
        for exp_id in entry["expressions"]:
            q.put([vid, exp_id])
    out: dict = {}
    module.eval_queue(q, 0, out)
    return {k: [float(x) for x in v] for k, v in out.items()}


def run_script(ref_dir: Path, script: str, args: list[str]) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ref_dir), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, str(ref_dir / "tools/eval" / script), *args], check=True, env=env,
                   cwd=ref_dir, stdout=subprocess.DEVNULL)


def reference_refcoco(ref_dir: Path, cases: dict) -> dict:
    """cIoU/gIoU from RESDataset.evaluate, with ground truth from RESDataset.decode_mask."""
    res = importlib.import_module("RES")
    dataset = res.RESDataset.__new__(res.RESDataset)
    dataset.annotations = {a["id"]: a for a in json.loads(json.dumps(cases["annotations"]))}
    dataset.dataset_name, dataset.split = "fixture", "val"
    infos = {img["id"]: img for img in cases["images"]}
    result = []
    for item in cases["results"]:
        targets = dataset.decode_mask([s["ann_id"] for s in item["sentences"]], infos[item["image_id"]]).numpy()
        result.append({"gt_masks": [rle(t) for t in targets],
                       "prediction_masks": [None if p is None else [p] for p in item["predictions"]]})
    buf = io.StringIO()
    with redirect_stdout(buf):
        acc = dataset.evaluate(result, str(ref_dir))
    match = re.search(r"CIoU: ([^,]+), GIoU: (\S+)", buf.getvalue())
    return {"cIoU": float(acc["Acc"]), "cIoU_printed": float(match.group(1)), "gIoU": float(match.group(2))}


def check_summaries_complete(data: Path, per_expression: dict) -> None:
    """The scripts' summaries must cover every expression (the mean of the in-process per-expression J)."""
    for script, out in [("eval_mevis", "mevis.json"), ("eval_davis", "davis.json")]:
        summary = json.loads((data / out).read_text())
        expected = round(100 * float(np.mean([v[0] for v in per_expression[script].values()])), 2)
        if summary["J"] != expected:
            raise RuntimeError(f"{script} summary J {summary['J']} != {expected}: a reference worker missed items")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR)
    parser.add_argument("--out", type=Path, default=ROOT / "test/fixtures/metrics")
    parser.add_argument("--site", type=Path, default=DEFAULT_SITE)
    parser.add_argument("--seed", type=int, default=20260)
    args = parser.parse_args()
    ensure_scratch_packages(args.site)

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="strvos-refmetrics-") as tmp:
        ref_dir = Path(tmp)
        commit = export_reference(args.mirror, ref_dir)
        sys.path[:0] = [str(ref_dir), str(ref_dir / "tools/eval"), str(ref_dir / "res_eval")]
        ref_metrics = importlib.import_module("third_parts.revos.utils.metrics")
        # eval_mevis/davis/revos import third_parts' copy; tools/eval/metrics.py must be the same code
        if (ref_dir / "tools/eval/metrics.py").read_text() != (ref_dir / "third_parts/revos/utils/metrics.py").read_text():
            raise RuntimeError("the reference's two metrics.py copies differ: decide which one the scripts use")

        cases = make_video_cases(rng)
        data = ref_dir / "data"
        data.mkdir()
        for name, obj in [("meta_expressions.json", cases["meta"]), ("mask_dict.json", cases["mask_dict"]),
                          ("mask_dict_foreground.json", cases["foreground"]), ("results.json", cases["predictions"])]:
            (data / name).write_text(json.dumps(obj))

        # eval_davis numbers anno_ids over sorted videos / sorted exp ids and reads a pickle keyed the same way
        davis_exp = importlib.import_module("eval_davis").get_meta_exp(data / "meta_expressions.json")
        davis_masks, davis_source = {}, {}
        for vid, entry in davis_exp.items():
            for exp_id, exp in entry["expressions"].items():
                # the DAVIS pickle holds one mask list per expression: reuse the expression's first object
                src = (cases["meta"]["videos"][vid]["expressions"][exp_id]["anno_id"] or [None])[0]
                davis_source[str(exp["anno_id"][0])] = src
                davis_masks[str(exp["anno_id"][0])] = (
                    [None] * len(entry["frames"]) if src is None else cases["mask_dict"][str(src)])
        with open(data / "mask_dict.pkl", "wb") as f:
            pickle.dump(davis_masks, f)

        fixture = {
            "reference_commit": commit,
            "seed": args.seed,
            "inputs": cases,
            "davis_anno_source": davis_source,
            "per_frame": per_frame_reference(ref_metrics, cases),
            "per_expression": {
                "eval_mevis": run_eval_queue(importlib.import_module("eval_mevis"), cases,
                                             cases["meta"]["videos"], cases["mask_dict"]),
                "eval_revos": run_eval_queue(importlib.import_module("eval_revos"), cases,
                                             cases["meta"]["videos"], cases["mask_dict"]),
                "eval_davis": run_eval_queue(importlib.import_module("eval_davis"), cases, davis_exp, davis_masks),
            },
        }
        run_script(ref_dir, "eval_mevis.py", ["--pred_path", str(data / "results.json"), "--mevis_exp_path",
                                              str(data / "meta_expressions.json"), "--mevis_mask_path",
                                              str(data / "mask_dict.json"), "--save_name", "mevis.json"])
        run_script(ref_dir, "eval_davis.py", ["--pred_path", str(data / "results.json"), "--mevis_exp_path",
                                              str(data / "meta_expressions.json"), "--mevis_mask_path",
                                              str(data / "mask_dict.pkl"), "--save_name", "davis.json"])
        run_script(ref_dir, "eval_revos.py", ["--pred_path", str(data / "results.json"), "--exp_path",
                                              str(data / "meta_expressions.json"), "--mask_path",
                                              str(data / "mask_dict.json"), "--foreground_mask_path",
                                              str(data / "mask_dict_foreground.json")])
        check_summaries_complete(data, fixture["per_expression"])
        fixture["summary"] = {
            "eval_mevis": json.loads((data / "mevis.json").read_text()),
            "eval_davis": json.loads((data / "davis.json").read_text()),
            "eval_revos": json.loads((data / "revos_valid.json").read_text()),
        }

        refcoco = make_refcoco_cases(rng)
        refcoco_fixture = {"reference_commit": commit, "seed": args.seed, "inputs": refcoco,
                           "reference": reference_refcoco(ref_dir, refcoco)}

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reference_vos.json").write_text(json.dumps(fixture, separators=(",", ":")))
    (args.out / "reference_refcoco.json").write_text(json.dumps(refcoco_fixture, separators=(",", ":")))
    print(f"wrote {args.out}/reference_vos.json and reference_refcoco.json from reference {commit[:7]}")


if __name__ == "__main__":
    main()
