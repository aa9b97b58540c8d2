"""Finished items as JSON lines, one file per rank, appended atomically: the basis of resume and merge.

A line is written with a single `write` on an O_APPEND descriptor and fsync'ed, so an interrupted run
leaves at most one torn last line, which is skipped (and fenced off with a newline before new lines).
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ResultStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _part(self, rank: int) -> Path:
        return self.folder / f"part-rank{rank:03d}.jsonl"

    def append(self, record: dict[str, Any], rank: int = 0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._part(rank)
        line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if _ends_without_newline(path):
                os.write(fd, b"\n")
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every complete record of every rank (torn lines skipped with a warning)."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("part-rank*.jsonl")):
            with open(path, "rb") as f:
                for number, raw in enumerate(f, 1):
                    if not raw.strip():
                        continue
                    try:
                        yield json.loads(raw)
                    except json.JSONDecodeError:
                        warnings.warn(f"{path}:{number}: skipping a torn result line", stacklevel=2)

    def finished(self, key_of) -> dict[tuple, dict[str, Any]]:
        """Records by key (a later record of the same key wins)."""
        return {key_of(r): r for r in self.records()}


def _ends_without_newline(path: Path) -> bool:
    size = path.stat().st_size
    if size == 0:
        return False
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1) != b"\n"
