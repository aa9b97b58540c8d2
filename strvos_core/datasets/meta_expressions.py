"""meta_expressions.json (Ref-YouTube-VOS / MeViS / ReVOS / Ref-DAVIS17 style) into validated Videos."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from strvos_core.datasets.errors import DatasetError
from strvos_core.datasets.files import load_json
from strvos_core.datasets.items import Video, VideoExpression


def read_meta_expressions(path: Path) -> dict[str, dict[str, Any]]:
    """The {video_id: {"frames": [...], "expressions": {exp_id: {...}}}} mapping, checked for shape."""
    data = load_json(path, "expression file")
    if not isinstance(data, dict) or not isinstance(data.get("videos"), dict):
        raise DatasetError(f"expression file {path} has no 'videos' mapping")
    for vid, entry in data["videos"].items():
        where = f"expression file {path}, video {vid!r}"
        if not isinstance(entry, dict):
            raise DatasetError(f"{where}: expected an object")
        frames = entry.get("frames")
        if not isinstance(frames, list) or not frames or not all(isinstance(f, str) for f in frames):
            raise DatasetError(f"{where}: 'frames' must be a non-empty list of frame names")
        if len(set(frames)) != len(frames):
            raise DatasetError(f"{where}: 'frames' lists a frame twice")
        expressions = entry.get("expressions")
        if not isinstance(expressions, dict):
            raise DatasetError(f"{where}: 'expressions' must be an object")
        for exp_id, exp in expressions.items():
            if not isinstance(exp, dict) or not isinstance(exp.get("exp"), str):
                raise DatasetError(f"{where}, expression {exp_id!r}: needs an 'exp' string")
    return data["videos"]


def build_videos(meta: dict[str, dict[str, Any]], frame_root: Path, category_key: str | None = None,
                 source: Path | None = None) -> list[Video]:
    """Videos with frames sorted by name and expressions sorted by id (the reference's order).

    category_key: an optional per-expression string field (the synthetic set's "kind") copied into
    `VideoExpression.category`, so results can be broken down by it; absent keys give None. `source` only
    names the file in errors.
    """
    videos = []
    for vid, entry in meta.items():
        order = sorted(range(len(entry["frames"])), key=lambda i: entry["frames"][i])
        expressions = tuple(
            VideoExpression(vid, exp_id, entry["expressions"][exp_id]["exp"],
                            entry["expressions"][exp_id].get("type_id"),
                            _category(entry["expressions"][exp_id], category_key, source, vid, exp_id))
            for exp_id in sorted(entry["expressions"])
        )
        videos.append(Video(
            video_id=vid,
            frames=tuple(entry["frames"][i] for i in order),
            frame_dir=frame_root / vid,
            expressions=expressions,
            annotation_index=tuple(order),
        ))
    return videos


def _category(exp: dict[str, Any], key: str | None, source: Path | None, vid: str, exp_id: str) -> str | None:
    if key is None or exp.get(key) is None:
        return None
    value = exp[key]
    if not isinstance(value, str) or not value:
        raise DatasetError(f"expression file {source or '(meta_expressions)'}, video {vid!r}, expression {exp_id!r}: "
                           f"{key!r} must be a non-empty string, got {value!r}")
    return value


def check_frames_exist(videos: list[Video]) -> None:
    """Fail before any model time is spent when a listed frame is missing on disk."""
    for video in videos:
        if not video.frame_dir.is_dir():
            raise DatasetError(f"frame folder of video {video.video_id!r} not found: {video.frame_dir}")
        for i in range(len(video.frames)):
            path = video.frame_path(i)
            if not path.is_file():
                raise DatasetError(f"frame {video.frames[i]!r} of video {video.video_id!r} not found: {path}")
