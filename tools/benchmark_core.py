#!/usr/bin/env python3
"""Per-frame latency and peak memory of the streaming session vs. the offline Sa2VA baseline, per stage.

What it shows: StreamingRVOS carries one vector per target between frames, so its per-frame cost and memory stay
flat as the video grows; the `sa2va-offline` baseline re-processes the clip so far, so its cost grows with it.

Method, per backend and preset:
  * streaming: `--repeats` fresh sessions each step through the clip frame by frame; the measured frames
    (e.g. 1, 10, 100) give `repeats` samples each.
  * offline: the baseline keeps nothing between steps but the frames, so frame k is measured by handing a
    fresh session the clip's first k-1 frames and stepping the k-th (the same work as stepping through).
  * latency: the session's own stage timings (preprocess, vision, llm, sam2, total); p50/p95 over the samples.
  * peak memory per window (one step, and each stage inside it): on CPU the process RSS high-water mark
    (Linux VmHWM, reset through /proc/self/clear_refs before every window; before each measured step glibc's
    malloc_trim returns cached free memory to the OS, so windows start from live memory), on CUDA
    torch.cuda.max_memory_allocated (reset likewise). Stage windows are the forward calls of the stage's
    modules (vision: InternViT + mlp1; llm: Qwen2 backbone + lm_head; sam2: SAM 2 encoder + prompt encoder +
    mask decoder).
The clip is deterministic random frames; the random model is steered to answer "[SEG]" so every stage runs
(`--answer none`: steered to answer without [SEG], the frames on which SAM 2's image encoder is skipped).

Usage (CPU, the committed benchmarks/core_cpu.md):
  python tools/benchmark_core.py --out benchmarks/core_cpu.md
On a CUDA machine, e.g.:
  python tools/benchmark_core.py --device cuda --dtype bfloat16 --presets tiny,1b,4b --large-repeats 3 \
      --offline-large-frames 1,2,4,8,16 --out benchmarks/core_cuda.md
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

STAGES = ("preprocess", "vision", "llm", "sam2", "total")
MEMORY_STAGES = ("vision", "llm", "sam2")
EXPRESSION = "the red mug on the left"
WARMUP_EXPRESSION = "the person in the middle"
MIB = 1024 * 1024


# -- peak memory --------------------------------------------------------------------------------------------
class RssPeak:
    """Process RSS high-water mark with a resettable window (Linux: VmHWM + /proc/self/clear_refs)."""

    unit = "RSS"

    def __init__(self) -> None:
        try:
            self._malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            self._malloc_trim = None
        try:
            self.reset()
            self.read()
        except OSError as exc:
            raise SystemExit(f"peak RSS needs Linux /proc/self/clear_refs and /proc/self/status: {exc}") from None

    def trim(self) -> None:
        """Return the C allocator's free memory to the OS (glibc malloc_trim), so that the next window's RSS
        starts from live memory instead of whatever earlier steps left cached."""
        if self._malloc_trim is not None:
            self._malloc_trim(0)

    def reset(self) -> None:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5: reset the peak RSS to the current RSS

    def read(self) -> float:
        """Peak bytes since the last reset."""
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) * 1024
        raise OSError("no VmHWM in /proc/self/status")

    def current(self) -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) * 1024
        raise OSError("no VmRSS in /proc/self/status")


class CudaPeak:
    """torch.cuda.max_memory_allocated with a resettable window."""

    unit = "CUDA allocated"

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def trim(self) -> None:
        """Nothing to do: allocated (not reserved) memory is already live memory."""

    def reset(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)

    def read(self) -> float:
        return float(torch.cuda.max_memory_allocated(self.device))

    def current(self) -> float:
        return float(torch.cuda.memory_allocated(self.device))


class StagePeaks:
    """Forward hooks that record the peak memory of each stage's modules, and of the whole step.

    Every reset first folds the peak so far into the step's peak, so the step window stays exact."""

    def __init__(self, model, meter) -> None:
        self.meter = meter
        self.stage_peak: dict[str, float] = {}
        self.step_peak = 0.0
        sam = model.grounding_encoder.sam2_model
        modules = {
            "vision": [model.vision_model, model.mlp1],
            "llm": [model.language_model.model, model.language_model.lm_head],
            "sam2": [sam.image_encoder, sam.sam_prompt_encoder, sam.sam_mask_decoder],
        }
        self.handles = []
        for stage, parts in modules.items():
            for module in parts:
                self.handles.append(module.register_forward_pre_hook(self._enter))
                self.handles.append(module.register_forward_hook(self._exit(stage)))

    def _fold(self) -> float:
        peak = self.meter.read()
        self.step_peak = max(self.step_peak, peak)
        return peak

    def _enter(self, *_args) -> None:
        self._fold()
        self.meter.reset()

    def _exit(self, stage: str):
        def hook(*_args) -> None:
            self.stage_peak[stage] = max(self.stage_peak.get(stage, 0.0), self._fold())
        return hook

    def start_step(self) -> None:
        self.stage_peak, self.step_peak = {}, 0.0
        self.meter.reset()

    def end_step(self) -> tuple[float, dict[str, float]]:
        self._fold()
        return self.step_peak, dict(self.stage_peak)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


# -- measuring ----------------------------------------------------------------------------------------------
@dataclass
class Sample:
    timings: dict[str, float]
    peak: float
    stage_peaks: dict[str, float]


@dataclass
class Series:
    """Samples of one backend + preset at each measured frame number (1-based)."""

    backend: str
    preset: str
    idle_memory: float
    samples: dict[int, list[Sample]] = field(default_factory=dict)


def make_clip(count: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def timed_step(session, frame: np.ndarray, probe: StagePeaks, answer: str = "seg") -> Sample:
    probe.meter.trim()
    probe.start_step()
    result = session.step(frame)
    peak, stages = probe.end_step()
    has_seg = [target.has_seg for target in result.targets.values()]
    if answer == "seg" and not all(has_seg):
        raise SystemExit("the steered random model gave no [SEG]: SAM 2 decoding was not measured")
    if answer == "none" and any(has_seg):
        raise SystemExit("the model steered to answer without [SEG] gave one: the frame is not a no-[SEG] frame")
    return Sample(dict(result.timings), peak, stages)


def measure_streaming(backend, probe: StagePeaks, clip: list[np.ndarray], frames: list[int], repeats: int,
                      series: Series, answer: str = "seg") -> None:
    for _ in range(repeats):
        session = backend.start_session({"target": EXPRESSION})
        for index, frame in enumerate(clip[: max(frames)], start=1):
            if index in frames:
                series.samples.setdefault(index, []).append(timed_step(session, frame, probe, answer))
            else:
                session.step(frame)


def measure_offline(backend, probe: StagePeaks, clip: list[np.ndarray], frames: list[int], repeats: int,
                    series: Series, answer: str = "seg") -> None:
    for _ in range(repeats):
        for index in frames:
            session = backend.start_session({"target": EXPRESSION})
            session.frames = list(clip[: index - 1])  # the baseline's only carried state: the clip so far
            series.samples.setdefault(index, []).append(timed_step(session, clip[index - 1], probe, answer))


def run_backend(name: str, preset: str, args, clip: list[np.ndarray], frames: list[int], repeats: int) -> Series:
    from strvos_core import backends

    backend = backends.create(name, model=f"random:{preset}:{args.answer}", device=args.device, dtype=args.dtype)
    model = backend.model
    if args.max_dynamic_patch:
        model.config.max_dynamic_patch = args.max_dynamic_patch
    meter = CudaPeak(model.device) if model.device.type == "cuda" else RssPeak()
    probe = StagePeaks(model, meter)
    try:
        # Warm-up on another expression: frame 1 below still pays its own prompt's tokenisation.
        backend.start_session({"warmup": WARMUP_EXPRESSION}).step(clip[0])
        meter.trim()
        series = Series(name, preset, meter.current())
        measure = measure_streaming if name == "streamingrvos" else measure_offline
        measure(backend, probe, clip, frames, repeats, series, args.answer)
    finally:
        probe.remove()
        backend.release()
    return series


def run_in_subprocess(name: str, preset: str, argv: list[str]) -> Series:
    """One backend + preset in a fresh process, so its RSS (and its idle baseline) is its own."""
    print(f"# {name} {preset}: measuring in a fresh process", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "series.json"
        command = [sys.executable, __file__, *argv, "--worker", f"{name}:{preset}", "--worker-out", str(result)]
        subprocess.run(command, check=True)
        data = json.loads(result.read_text())
    series = Series(data["backend"], data["preset"], data["idle_memory"])
    series.samples = {int(k): [Sample(**s) for s in v] for k, v in data["samples"].items()}
    return series


def worker(args) -> int:
    name, _, preset = args.worker.partition(":")
    tiny = preset == "tiny"
    if name == "streamingrvos":
        frames, repeats = (args.tiny_frames, args.tiny_repeats) if tiny else (args.large_frames, args.large_repeats)
    else:
        frames = args.offline_tiny_frames if tiny else args.offline_large_frames
        repeats = args.tiny_repeats if tiny else args.large_repeats
    clip = make_clip(max(frames), *args.size)
    series = run_backend(name, preset, args, clip, frames, repeats)
    args.worker_out.write_text(json.dumps(dataclasses.asdict(series)))
    return 0


# -- reporting ----------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def series_rows(series: Series, mib: bool = True) -> list[str]:
    rows = []
    for index in sorted(series.samples):
        samples = series.samples[index]
        totals = [s.timings["total"] for s in samples]
        stage_p50 = [percentile([s.timings[k] for s in samples], 50) for k in STAGES[:-1]]
        peak = max(s.peak for s in samples)
        stage_peaks = [max(s.stage_peaks.get(k, 0.0) for s in samples) for k in MEMORY_STAGES]
        cells = [
            series.backend, series.preset, str(index), str(len(samples)),
            f"{percentile(totals, 50):.3f}", f"{percentile(totals, 95):.3f}", f"{1 / percentile(totals, 50):.2f}",
            *(f"{v:.3f}" for v in stage_p50),
            f"{peak / MIB:.0f}", f"{(peak - series.idle_memory) / MIB:+.0f}",
            *(f"{v / MIB:.0f}" for v in stage_peaks),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


TITLE = "# strvos_core per-frame benchmark (tools/benchmark_core.py)\n\n"
TABLE_HEADER = (
    "| backend | preset | frame | n | total p50 (s) | total p95 (s) | fps (p50) | preprocess p50 | vision p50 | "
    "llm p50 | sam2 p50 | peak step (MiB) | peak - idle (MiB) | peak vision | peak llm | peak sam2 |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def growth_lines(all_series: list[Series]) -> list[str]:
    """Last measured frame vs. frame 1, per series: the flat-vs-growing claim in two numbers."""
    lines = []
    for s in all_series:
        first, last = min(s.samples), max(s.samples)
        if first == last:
            continue
        t_first = percentile([x.timings["total"] for x in s.samples[first]], 50)
        t_last = percentile([x.timings["total"] for x in s.samples[last]], 50)
        m_first = max(x.peak for x in s.samples[first]) - s.idle_memory
        m_last = max(x.peak for x in s.samples[last]) - s.idle_memory
        lines.append(f"- {s.backend} {s.preset}: frame {last} / frame {first} latency x{t_last / t_first:.2f}; "
                     f"step memory above idle {m_first / MIB:+.0f} -> {m_last / MIB:+.0f} MiB")
    return lines


def machine_lines(args) -> list[str]:
    lines = [f"- host: {platform.node()}, {platform.platform()}, Python {platform.python_version()}"]
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        lines.append(f"- CPU: {fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs")
    except (OSError, subprocess.CalledProcessError):
        lines.append(f"- CPU: {platform.processor() or '?'}, {os.cpu_count()} CPUs")
    import transformers

    lines.append(f"- torch {torch.__version__} ({torch.get_num_threads()} intra-op threads), "
                 f"transformers {transformers.__version__}")
    if args.device.startswith("cuda"):
        lines.append(f"- GPU: {torch.cuda.get_device_name(torch.device(args.device))}")
    return lines


def tile_lines(args) -> list[str]:
    from strvos_core.config import preset
    from strvos_core.processing.tiling import num_tiles

    lines = []
    for name in args.presets:
        cfg = preset(name)
        limit = args.max_dynamic_patch or cfg.max_dynamic_patch
        tiles = num_tiles(*args.size, cfg.min_dynamic_patch, limit, cfg.use_thumbnail, cfg.tile_size)
        lines.append(f"- {name}: streaming LLM view {tiles} tile(s) of {cfg.tile_size} per frame "
                     f"(max_dynamic_patch={limit}{', overridden' if args.max_dynamic_patch else ''}); "
                     f"offline baseline: one {cfg.tile_size} view for each of the first 5 frames; "
                     f"SAM 2 {cfg.grounding.sam2_variant} at {cfg.grounding.image_size}")
    return lines


def parse_frames(text: str) -> list[int]:
    """'1,10,100' or '1-8' (or a mix) -> sorted frame numbers >= 1."""
    frames: set[int] = set()
    try:
        for part in filter(None, text.split(",")):
            low, _, high = part.partition("-")
            frames.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"frames must look like '1,10,100' or '1-8', got {text!r}") from None
    if not frames or min(frames) < 1:
        raise argparse.ArgumentTypeError(f"frame numbers start at 1, got {text!r}")
    return sorted(frames)


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                        help="weights dtype (default float32)")
    parser.add_argument("--presets", default="tiny,1b", help="comma list of tiny, 1b, 4b")
    parser.add_argument("--answer", default="seg", choices=["seg", "none"],
                        help="steer the random model to answer with [SEG] (every stage runs; default) or without "
                             "(SAM 2 is skipped: the cost of a frame where the target is not referred to)")
    parser.add_argument("--size", type=parse_size, default=(320, 240), help="frame WIDTHxHEIGHT (default 320x240)")
    parser.add_argument("--tiny-frames", type=parse_frames, default=parse_frames("1,10,100"),
                        help="streaming frames measured for the tiny preset, e.g. 1,10,100 or 1-8")
    parser.add_argument("--large-frames", type=parse_frames, default=parse_frames("1-8"),
                        help="streaming frames measured for 1b/4b")
    parser.add_argument("--offline-tiny-frames", type=parse_frames, default=parse_frames("1,10,100"),
                        help="frames measured for the offline baseline, tiny preset")
    parser.add_argument("--offline-large-frames", type=parse_frames, default=parse_frames("1,2,4,8"),
                        help="frames measured for the offline baseline, 1b/4b")
    parser.add_argument("--tiny-repeats", type=int, default=3, help="fresh sessions per measured frame, tiny")
    parser.add_argument("--large-repeats", type=int, default=1, help="fresh sessions per measured frame, 1b/4b")
    parser.add_argument("--no-offline", action="store_true", help="skip the sa2va-offline baseline")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--max-dynamic-patch", type=int, default=0,
                        help="override the presets' tile limit (e.g. 12 to run tiny with the released tiling)")
    parser.add_argument("--out", type=Path, help="also write the report (markdown) here")
    parser.add_argument("--append", action="store_true", help="append to --out instead of replacing it")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: BACKEND:PRESET in this process
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    from strvos_core.config import PRESETS

    unknown = [p for p in args.presets if p not in PRESETS]
    if unknown:
        parser.error(f"unknown presets {unknown}; choose from {sorted(PRESETS)}")
    if min(args.tiny_repeats, args.large_repeats) < 1:
        parser.error("repeats must be >= 1")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        return worker(args)
    command = "python tools/benchmark_core.py " + " ".join(sys.argv[1:] if argv is None else argv)
    load_before = os.getloadavg()
    started = time.time()
    forwarded = list(sys.argv[1:] if argv is None else argv)
    all_series: list[Series] = []
    for preset in args.presets:
        all_series.append(run_in_subprocess("streamingrvos", preset, forwarded))
        if not args.no_offline:
            all_series.append(run_in_subprocess("sa2va-offline", preset, forwarded))
    load_after = os.getloadavg()
    meter_unit = "torch.cuda.max_memory_allocated" if args.device.startswith("cuda") else "process RSS high-water mark"
    report = [
        f"## {', '.join(args.presets)} on {args.device} ({args.dtype})",
        "",
        f"Command: `{command}`",
        "",
        *machine_lines(args),
        f"- device {args.device}, dtype {args.dtype}, frame {args.size[0]}x{args.size[1]}, one target, "
        "random weights steered to answer " + ('"[SEG]"' if args.answer == "seg" else "without [SEG]"),
        *tile_lines(args),
        f"- load average (1/5/15 min) before {'/'.join(f'{v:.1f}' for v in load_before)}, "
        f"after {'/'.join(f'{v:.1f}' for v in load_after)}; wall {time.time() - started:.0f} s",
        "",
        f"Latency: seconds per stage (p50 over n samples), total p50/p95. Memory: {meter_unit} per window, MiB; "
        "'peak - idle' subtracts the memory held with the model loaded and no session running.",
        "",
        TABLE_HEADER,
        *(row for s in all_series for row in series_rows(s)),
        "",
    ]
    growth = growth_lines(all_series)
    if growth:
        report += ["Growth, last measured frame vs. frame 1 (p50 latency; step peak memory above idle):", "",
                   *growth, ""]
    text = "\n".join(report)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        previous = args.out.read_text() + "\n" if args.append and args.out.exists() else TITLE
        args.out.write_text(previous + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
