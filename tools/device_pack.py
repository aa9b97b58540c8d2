"""Move a training run's newest checkpoint through the device tool's file limits (8 files of 16 MiB, 64 MiB in all).

    python tools/device_pack.py pack RUN OUT_DIR      # on the GPU machine: RUN's newest checkpoint -> OUT_DIR
    python tools/device_pack.py unpack IN_DIR RUN     # here: the parts -> RUN/checkpoints/step_N (resumable)
    (files RUN_NAME.part0.. and RUN_NAME.manifest.json)

A checkpoint of the tiny model is ~85 MB (fp32 weights 39 MB, AdamW moments 44 MB). Packing keeps the weights in
fp32 (training continues from exactly them) and the optimizer moments in bfloat16 (they only steer the next steps;
unpacking widens them back to fp32), tars the checkpoint with the run's log and config, and splits the tar into
15 MiB parts (at most 7, so one run's parts and manifest fit the 8 files that come back). A run resumed from an unpacked checkpoint continues the same schedule and samples; only the rounding
of the moments differs from an uninterrupted run. `unpack` refuses parts that do not join up (checked by SHA-256).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import torch

PART_BYTES = 15 * 1024 * 1024
MAX_PARTS = 7  # the eighth file is the manifest


def _narrow(value, dtype):
    """Floating tensors of an optimizer state -> `dtype` (recursively); everything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() > 0:
        return value.to(dtype)
    if isinstance(value, dict):
        return {k: _narrow(v, dtype) for k, v in value.items()}
    if isinstance(value, list):
        return [_narrow(v, dtype) for v in value]
    return value


def newest_checkpoint(run: Path) -> Path:
    found = sorted((p for p in (run / "checkpoints").glob("step_*") if p.is_dir() and p.name[5:].isdigit()),
                   key=lambda p: int(p.name[5:]))
    if not found:
        raise SystemExit(f"device_pack: {run} holds no checkpoint")
    return found[-1]


def pack(run: Path, out: Path) -> list[Path]:
    checkpoint = newest_checkpoint(run)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(checkpoint.iterdir()):
            if path.name == "optimizer.pt":
                state = torch.load(path, map_location="cpu", weights_only=False)
                data = io.BytesIO()
                torch.save(_narrow(state, torch.bfloat16), data)
                info = tarfile.TarInfo(f"{checkpoint.name}/optimizer.bf16.pt")
                info.size = data.tell()
                data.seek(0)
                tar.addfile(info, data)
            else:
                tar.add(path, arcname=f"{checkpoint.name}/{path.name}")
        for name in ("log.jsonl", "train_config.json"):
            if (run / name).exists():
                tar.add(run / name, arcname=name)
    blob = buffer.getvalue()
    parts = [blob[i:i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)]
    if len(parts) > MAX_PARTS:
        raise SystemExit(f"device_pack: {checkpoint} packs to {len(blob) / 2**20:.0f} MiB, over the "
                         f"{MAX_PARTS * PART_BYTES / 2**20:.0f} MiB that can come back")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, part in enumerate(parts):
        path = out / f"{run.name}.part{index}"
        path.write_bytes(part)
        written.append(path)
    manifest = {"run": run.name, "checkpoint": checkpoint.name, "parts": len(parts),
                "sha256": hashlib.sha256(blob).hexdigest()}
    (out / f"{run.name}.manifest.json").write_text(json.dumps(manifest))
    return [*written, out / f"{run.name}.manifest.json"]


def unpack(source: Path, run: Path, name: str | None = None) -> Path:
    """The parts of run `name` (default: RUN's folder name) in `source` -> RUN/checkpoints/step_N."""
    manifest = json.loads((source / f"{name or run.name}.manifest.json").read_text())
    blob = b"".join((source / f"{manifest['run']}.part{i}").read_bytes() for i in range(manifest["parts"]))
    if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
        raise SystemExit(f"device_unpack: the parts in {source} do not join up (SHA-256 differs)")
    run.mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        tar.extractall(run / ".unpack", filter="data")
    staged = run / ".unpack"
    for name in ("log.jsonl", "train_config.json"):
        if (staged / name).exists():
            (staged / name).replace(run / name)
    checkpoint = staged / manifest["checkpoint"]
    narrow = checkpoint / "optimizer.bf16.pt"
    state = torch.load(narrow, map_location="cpu", weights_only=False)
    torch.save(_narrow(state, torch.float32), checkpoint / "optimizer.pt")
    narrow.unlink()
    final = run / "checkpoints" / manifest["checkpoint"]
    if final.exists():
        raise SystemExit(f"device_unpack: {final} exists already")
    checkpoint.replace(final)
    staged.rmdir()
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("pack", help="a run's newest checkpoint -> parts in OUT_DIR")
    p.add_argument("run", type=Path, help="training output folder")
    p.add_argument("out", type=Path, help="folder for the parts and the manifest (the device tool's $OUT)")
    u = sub.add_parser("unpack", help="parts in IN_DIR -> RUN/checkpoints/step_N")
    u.add_argument("source", type=Path, help="folder holding the parts and manifest.json")
    u.add_argument("run", type=Path, help="training output folder to restore into")
    u.add_argument("--name", help="the packed run's folder name, when it differs from RUN's")
    args = parser.parse_args(argv)
    if args.verb == "pack":
        for path in pack(args.run, args.out):
            print(path)
    else:
        print(unpack(args.source, args.run, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
