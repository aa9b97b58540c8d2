"""Readers of the published referring-video layouts (paths as in the reference's evaluation/ref_vos_eval.py).

Each reader takes the dataset's root folder and a split, checks that every listed frame exists,
and returns a VideoBenchmark. Ground truth is read lazily, frame by frame, while evaluating.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from strvos_core.datasets.errors import DatasetError
from strvos_core.datasets.files import load_json, load_plain_pickle
from strvos_core.datasets.ground_truth import MaskDictGroundTruth, PaletteGroundTruth, parse_ids
from strvos_core.datasets.items import Video, VideoBenchmark
from strvos_core.datasets.meta_expressions import build_videos, check_frames_exist, read_meta_expressions


def _first_existing(candidates: list[Path], what: str) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    raise DatasetError(f"{what} not found; looked for: " + ", ".join(str(p) for p in candidates))


def _anno_ids_from_meta(meta: dict, path: Path) -> dict[tuple[str, str], list[int]]:
    ids = {}
    for vid, entry in meta.items():
        for exp_id, exp in entry["expressions"].items():
            if "anno_id" not in exp:
                raise DatasetError(f"expression file {path}, video {vid!r}, expression {exp_id!r}: no 'anno_id'")
            ids[(vid, exp_id)] = parse_ids(exp["anno_id"], f"expression file {path}, video {vid!r}")
    return ids


def _split_root(root: Path, split: str, marker: str) -> Path:
    """`root/<split>` when it holds `marker`, else `root` itself (the split folder was given directly)."""
    if (root / split / marker).exists():
        return root / split
    if (root / marker).exists():
        return root
    raise DatasetError(f"{marker} not found in {root / split} or {root}")


def read_mevis(root: Path, split: str = "valid_u") -> VideoBenchmark:
    """MeViS: <root>/<split>/{meta_expressions.json, JPEGImages/, mask_dict.json (valid_u, train)}.

    `valid` has no public masks: it is scored by the server, from the submission archive.
    """
    base = _split_root(root, split, "meta_expressions.json")
    meta_path = base / "meta_expressions.json"
    meta = read_meta_expressions(meta_path)
    videos = build_videos(meta, base / "JPEGImages")
    check_frames_exist(videos)
    mask_path = base / "mask_dict.json"
    if not mask_path.is_file():
        return VideoBenchmark("MEVIS", split, root, videos, None, "submission")
    gt = MaskDictGroundTruth(load_json(mask_path, "mask file"), mask_path, _anno_ids_from_meta(meta, meta_path))
    gt.validate(videos)
    return VideoBenchmark("MEVIS_U" if split == "valid_u" else "MEVIS", split, root, videos, gt, "jf")


def read_ref_davis(root: Path, split: str = "valid") -> VideoBenchmark:
    """Ref-DAVIS17: meta_expressions/<split>/meta_expressions.json, <split>/JPEGImages/, <split>/mask_dict.pkl.

    anno_ids are numbered over sorted videos then sorted expression ids, as tools/eval/eval_davis.py does.
    """
    meta_path = root / "meta_expressions" / split / "meta_expressions.json"
    meta = read_meta_expressions(meta_path)
    videos = build_videos({vid: meta[vid] for vid in sorted(meta)}, root / split / "JPEGImages")
    check_frames_exist(videos)
    anno_ids = {}
    for video in videos:
        for exp in video.expressions:
            anno_ids[exp.key] = [len(anno_ids)]
    mask_path = _first_existing([root / split / "mask_dict.pkl", root / split / "mask_dict.json"], "Ref-DAVIS17 mask file")
    masks = load_plain_pickle(mask_path, "mask file") if mask_path.suffix == ".pkl" else load_json(mask_path, "mask file")
    gt = MaskDictGroundTruth(masks, mask_path, anno_ids)
    gt.validate(videos)
    return VideoBenchmark("DAVIS", split, root, videos, gt, "jf")


def read_ref_youtube_vos(root: Path, split: str = "valid") -> VideoBenchmark:
    """Ref-YouTube-VOS: <split>/JPEGImages/ with <split>/meta_expressions_challenge.json (the reference's file)
    or meta_expressions/<split>/meta_expressions.json. No public masks for valid: scored by the server."""
    meta_path = _first_existing(
        [root / split / "meta_expressions_challenge.json", root / "meta_expressions" / split / "meta_expressions.json"],
        "Ref-YouTube-VOS expression file")
    videos = build_videos(read_meta_expressions(meta_path), root / split / "JPEGImages")
    check_frames_exist(videos)
    return VideoBenchmark("REFYTVOS", split, root, videos, None, "submission", {"expression_file": str(meta_path)})


REVOS_SPLITS = ("valid", "referring", "reasoning")


def read_revos(root: Path, split: str = "valid") -> VideoBenchmark:
    """ReVOS: <root>/{JPEGImages/, meta_expressions_valid_.json, mask_dict.json, mask_dict_foreground.json}.

    split `valid`: all expressions, reported as referring / reason / overall by type_id;
    `referring`: refering_split.json when present (the reference's REREVOS), else valid's type_id 0;
    `reasoning`: valid's type_id 1.
    """
    if split not in REVOS_SPLITS:
        raise DatasetError(f"unknown ReVOS split {split!r}; choose one of {', '.join(REVOS_SPLITS)}")
    valid_path = root / "meta_expressions_valid_.json"
    meta_path = root / "refering_split.json" if split == "referring" and (root / "refering_split.json").is_file() \
        else valid_path
    meta = read_meta_expressions(meta_path)
    keep_type = {"referring": 0, "reasoning": 1}.get(split) if meta_path == valid_path else None
    for vid, entry in meta.items():
        for exp_id, exp in entry["expressions"].items():
            if exp.get("type_id") not in (0, 1, 2):
                raise DatasetError(f"expression file {meta_path}, video {vid!r}, expression {exp_id!r}: "
                                   f"'type_id' must be 0, 1 or 2")
    if keep_type is not None:
        meta = {vid: {**e, "expressions": {k: x for k, x in e["expressions"].items() if x["type_id"] == keep_type}}
                for vid, e in meta.items()}
        meta = {vid: e for vid, e in meta.items() if e["expressions"]}
    videos = build_videos(meta, root / "JPEGImages")
    check_frames_exist(videos)
    mask_path = root / "mask_dict.json"
    fg_path = root / "mask_dict_foreground.json"
    gt = MaskDictGroundTruth(load_json(mask_path, "mask file"), mask_path, _anno_ids_from_meta(meta, meta_path),
                             load_json(fg_path, "foreground mask file"), fg_path)
    gt.validate(videos)
    return VideoBenchmark("REVOS", split, root, videos, gt, "revos", {"expression_file": str(meta_path)})


def read_synthetic(root: Path, split: str = "valid") -> VideoBenchmark:
    """The synthetic set (docs/ARCHITECTURE.md): Ref-YouTube-VOS layout, palette PNG truth, plus Depth/."""
    meta_path = root / "meta_expressions" / split / "meta_expressions.json"
    if not meta_path.is_file() and (root / "meta_expressions").is_dir():
        found = sorted(p.name for p in (root / "meta_expressions").iterdir() if p.is_dir())
        raise DatasetError(f"expression file not found: {meta_path} (splits present: {', '.join(found) or 'none'})")
    meta = read_meta_expressions(meta_path)
    videos = build_videos(meta, root / split / "JPEGImages", category_key="kind", source=meta_path)
    check_frames_exist(videos)
    obj_ids = {}
    for vid, entry in meta.items():
        for exp_id, exp in entry["expressions"].items():
            if "obj_id" not in exp:
                raise DatasetError(f"expression file {meta_path}, video {vid!r}, expression {exp_id!r}: no 'obj_id'")
            obj_ids[(vid, exp_id)] = parse_ids(exp["obj_id"], f"expression file {meta_path}, video {vid!r}")
    annotations = root / split / "Annotations"
    if not annotations.is_dir():
        raise DatasetError(f"annotation folder not found: {annotations}")
    return VideoBenchmark("synthetic", split, root, videos, PaletteGroundTruth(annotations, obj_ids), "jf")


def _mevis_valid(root: Path, split: str = "valid") -> VideoBenchmark:
    return read_mevis(root, split)


VIDEO_READERS: dict[str, tuple[Callable[[Path, str], VideoBenchmark], str]] = {
    "DAVIS": (read_ref_davis, "valid"),
    "MEVIS_U": (read_mevis, "valid_u"),
    "MEVIS": (_mevis_valid, "valid"),
    "REVOS": (read_revos, "valid"),
    "REFYTVOS": (read_ref_youtube_vos, "valid"),
    "synthetic": (read_synthetic, "valid"),
}


def read_video_benchmark(name: str, root: str | Path, split: str | None = None) -> VideoBenchmark:
    if name not in VIDEO_READERS:
        raise DatasetError(f"unknown video benchmark {name!r}; choose one of {', '.join(VIDEO_READERS)}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"data root of {name} not found: {root}")
    reader, default_split = VIDEO_READERS[name]
    return reader(root, split or default_split)


__all__ = ["VIDEO_READERS", "Video", "read_video_benchmark"]
