"""The model card of a trained export: how it was made (command, configs, seeds, time) and what it scores.

    python -m strvos_core.training.model_card --model DIR --runs RUN [RUN ...] --eval STATEFUL NO_STATE \
        [--probe PROBE.md] [--stage0 PROMPT_EVAL.txt] [--vision ATTRIBUTE_PROBE.txt] [--motion MOTION_PROBE.md] \
        [--misses MISSES.md] [--earlier SCORES.json]

Reads each run's train_config.json and log.jsonl, the two `strvos eval` summaries (the model streaming with its
[SEG] state, and the `streamingrvos-no-state` ablation) and writes DIR/README.md plus DIR/scores.json; with
`--probe`, the link-by-link table `training.probe` printed for the last [SEG] run (does the mask follow the text,
and where the chain breaks), with `--stage0`, SAM 2's held-out prompt scores after stage 0 (`training.prompt_eval`),
with `--vision`, the vision path's held-out attribute scores after stage V (`training.attribute_probe`), with
`--motion`, the motion encoder's held-out step accuracy after stage VM (`training.motion_probe`), with `--misses`,
where the masks miss on the test split, frame by frame (`evaluation.misses`: out of view, the click off the target,
small targets), with `--earlier`, the stages of an earlier export this model was trained from, copied from that export's scores.json
(for stages whose run folders are gone).
Numbers are copied from those files, never typed in.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from strvos_core.errors import StrvosError

KINDS = ("appearance", "relation", "motion")
TARGETS = {"appearance": 0.85, "relation": 0.70, "motion": 0.70}  # issue 7's J&F targets on the test split
TRAIN_COMMAND = "bash scripts/train_tiny.sh"
VISION_STAGE, MOTION_STAGE = "vision (attributes)", "motion (steps)"  # pre-training stages: no run folder
PRETRAINING_VIDEOS = {VISION_STAGE: "20000 drawn, 8 frames each", MOTION_STAGE: "20000 drawn, 20 frames each"}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StrvosError(f"{path} not found") from None
    except json.JSONDecodeError as exc:
        raise StrvosError(f"{path} is not valid JSON: {exc}") from None


def run_facts(run: Path) -> dict[str, Any]:
    """Config, steps, wall time (sum of logged step times) and final losses of one training run."""
    config = _read_json(run / "train_config.json")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    if not log:
        raise StrvosError(f"{run / 'log.jsonl'} holds no steps")
    last = log[-min(50, len(log)):]
    # A stage without mask losses (stage Q: SAM 2 does not run) logs dice 0 on every step: no dice to report.
    trains_masks = any(r.get("dice", 0.0) for r in log)
    return {"run": str(run), "stage": config["data"]["stage"], "steps": log[-1]["step"],
            "seed": config["data"]["seed"], "model_seed": config["model"].get("seed"),
            "num_videos": config["data"]["num_videos"], "minutes": sum(r["seconds"] for r in log) / 60,
            "final_loss": sum(r["loss"] for r in last) / len(last),
            "final_dice": sum(r["dice"] for r in last) / len(last) if trains_masks else None}


def earlier_facts(scores: Path, known: set[str]) -> list[dict[str, Any]]:
    """The stages recorded in an earlier export's scores.json, less those given again here (same `run`)."""
    runs = _read_json(scores).get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise StrvosError(f"{scores} has no list of training runs (not a model card's scores.json?)")
    runs = [r for r in runs if r.get("run") not in known]
    for r in runs:  # what a row of the card's stage table needs
        need = {"run", "stage", "steps", "minutes", "final_loss"}
        need |= set() if r.get("stage") in PRETRAINING_VIDEOS else {"num_videos", "seed"}
        if need - r.keys():
            raise StrvosError(f"{scores}: the run {r.get('run', '?')!r} lacks {sorted(need - r.keys())}")
    return [{**r, "earlier": str(scores)} for r in runs]


def _run_name(f: dict[str, Any]) -> str:
    """A run folder's name; stage V's and VM's facts come from a file in an artifact folder, named by that folder."""
    path = Path(f["run"])
    return path.parent.name if path.suffix else path.name


def _stage_row(f: dict[str, Any]) -> str:
    videos = PRETRAINING_VIDEOS.get(f["stage"]) or f"{f['num_videos']} (seed {f['seed']})"
    dice = "-" if f.get("final_dice") is None else f"{f['final_dice']:.3f}"
    mark = " *" if "earlier" in f else ""
    return f"| {f['stage']} | {_run_name(f)}{mark} | {f['steps']} | {f['minutes']:.1f} | {videos} | {f['final_loss']:.3f} | {dice} |"


def eval_scores(folder: Path) -> dict[str, Any]:
    summary = _read_json(folder / "summary.json")
    if "by_category" not in summary:
        raise StrvosError(f"{folder / 'summary.json'} has no per-kind scores (not a synthetic evaluation?)")
    return {"backend": summary.get("backend"), "overall": summary["metrics"]["J&F"],
            "num_videos": summary["num_videos"], "num_expressions": summary["num_expressions"],
            "seconds_per_frame": summary.get("seconds_per_frame"),
            "by_kind": {k: summary["by_category"][k] for k in KINDS if k in summary["by_category"]}}


def score_table(streaming: dict[str, Any], no_state: dict[str, Any]) -> str:
    """Markdown: J&F per kind with the state, without it, and the target."""
    lines = ["| expressions | count | J&F streaming | J&F without the state | target | met |",
             "|---|---|---|---|---|---|"]
    for kind in KINDS:
        if kind not in streaming["by_kind"]:
            continue
        s, n = streaming["by_kind"][kind], no_state["by_kind"].get(kind, {})
        met = "yes" if s["JF"] >= TARGETS[kind] else "no"
        lines.append(f"| {kind} | {s['count']} | {s['JF']:.3f} | {n.get('JF', float('nan')):.3f} | "
                     f">= {TARGETS[kind]:.2f} | {met} |")
    lines.append(f"| all | {streaming['num_expressions']} | {streaming['overall']:.3f} | {no_state['overall']:.3f} "
                 f"| | |")
    return "\n".join(lines)


PROBE_NOTE = """Columns: own / other IoU of the [SEG] mask with its own target and with the frame's other targets (a
model that ignores the text scores the same on both); min cosine between one frame's prompt tokens; linear position
R^2 of the target's centre from the [SEG] state and from SAM 2's prompt token; the last LLM layer link by link: the
[SEG] attention's mass on the target's cells (and what a uniform attention puts there), the position R^2 of the
image token at the target's centre, of the attention-weighted image tokens and of what the attention reads (the
weighted value contributions). SAM 2's decoder follows a click's position, so the chain needs every R^2 near 1."""


VISION_NOTE = """Accuracy of a linear head on the token cells that one object covers for more than half (40 held-out
frames, seed 777), per attribute; the last row is the share of the commonest value (what a constant guess scores)."""


def _evidence(title: str, path: Path | None, note: str = "", whole: bool = False) -> str:
    """A tool's output as a card section: its table lines (the whole text when it has none) or, `whole`, for a tool
    whose several tables carry their own headings, the whole text, which must then hold a table."""
    if path is None:
        return ""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise StrvosError(f"{path} not found") from None
    if whole:
        if "|" not in text:
            raise StrvosError(f"{path} holds no table")
        body = text
    else:
        body = "\n".join(line for line in text.splitlines() if line.startswith("|")) or text
    return f"\n## {title} (`{path.name}`)\n\n{body}\n" + (f"\n{note}\n" if note else "")


MOTION_NOTE = """Accuracy of a linear head on the token cells that objects cover for more than half (60 held-out
frames, seed 777): which way the object there moved since the frame before (still / left / right / up / down); the
commonest class's share is what a constant guess scores."""


MISSES_NOTE = """Frame J per target-frame (the reference's), split into what each group of frames loses: its share of
the frames times one minus its mean J (the groups add up to 1 - mean frame J). The click is SAM 2's, placed where the
[SEG] attention peaked; the peak cell is that attention's highest cell of the token grid laid over the frame."""


def pretraining_facts(path: Path, stage: str = VISION_STAGE, tool: str = "attribute_probe") -> dict[str, Any]:
    """Steps, minutes and final loss of a pre-training stage (V or VM) from the table its probe printed last:
    rows | step | loss | ... | seconds |."""
    try:
        rows = [line for line in path.read_text().splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    except FileNotFoundError:
        raise StrvosError(f"{path} not found") from None
    if not rows:
        raise StrvosError(f"{path} holds no {tool} table (was the run cut short?)")
    cells = [c.strip() for c in rows[-1].strip("|").split("|")]
    return {"run": str(path), "stage": stage, "steps": int(cells[0]), "minutes": float(cells[-1]) / 60,
            "final_loss": float(cells[1])}


def vision_facts(path: Path) -> dict[str, Any]:
    """Stage V's facts from the table `training.attribute_probe` printed last."""
    return pretraining_facts(path)


def write_card(model: Path, runs: list[Path], streaming_dir: Path, no_state_dir: Path, test_videos: int,
               probe: Path | None = None, stage0: Path | None = None, vision: Path | None = None,
               earlier: Path | None = None, motion: Path | None = None, misses: Path | None = None) -> str:
    if not model.is_dir():
        raise StrvosError(f"{model} is not a model folder")
    facts = [run_facts(r) for r in runs]
    pretrained = [vision_facts(vision)] if vision is not None else []
    if earlier is not None:
        pretrained += earlier_facts(earlier, {f["run"] for f in pretrained + facts})
    if motion is not None:  # stage VM follows the stages an earlier export holds
        pretrained.append(pretraining_facts(motion, MOTION_STAGE, "motion_probe"))
    streaming, no_state = eval_scores(streaming_dir), eval_scores(no_state_dir)
    weights = model / "model.safetensors"
    size_mb = sum(p.stat().st_size for p in model.iterdir() if p.is_file()) / 2**20
    table = score_table(streaming, no_state)
    stages = "\n".join(_stage_row(f) for f in pretrained + facts)
    if earlier is not None:
        stages += ("\n\n\\* stages of the export this model was trained from, not rerun: their facts are copied from "
                   f"that export's card (`{earlier}` at training time); their run folders were not kept.")
    total = sum(f["minutes"] for f in facts + pretrained)
    missed = [k for k in KINDS if k in streaming["by_kind"] and streaming["by_kind"][k]["JF"] < TARGETS[k]]
    verdict = ("All targets met." if not missed else
               f"**Targets not met for: {', '.join(missed)}.** Whether the mask follows the text at all, and which "
               "link fails, is in the probe table below (own vs other IoU)"
               + ("; which frames lose the J, in the misses tables" if misses is not None else "")
               + "; where the two J&F columns agree, the streaming state adds nothing. The diagnosis of training "
               "from scratch: strvos_core/training/README.md.")
    evidence = (_evidence("Does the mask follow the text: training.probe on held-out frames", probe, PROBE_NOTE)
                + _evidence("SAM 2 after stage 0: held-out prompts (training.prompt_eval)", stage0)
                + _evidence("The vision path after stage V: held-out per-cell attributes (training.attribute_probe)",
                            vision, VISION_NOTE)
                + _evidence("The motion encoder after stage VM: held-out per-cell steps (training.motion_probe)",
                            motion, MOTION_NOTE)
                + _evidence("Where the masks miss on the test split (evaluation.misses)", misses, MISSES_NOTE, whole=True))
    extension = _read_json(model / "config.json").get("strvos", {}) if (model / "config.json").exists() else {}
    trunk = extension.get("vision_trunk", "internvit")
    vision_name = {"internvit": "InternViT", "conv": "a conv trunk",
                   "vit+conv": "InternViT with a conv trunk beside it"}.get(trunk, trunk)
    motion = bool(extension.get("vision_motion_input", False))
    if motion:
        vision_name += " and a motion encoder reading the previous frame"
    grounding_name = "SAM 2 hiera"
    if extension.get("sam2_attention_click", False):
        grounding_name += ", which also gets a click where the [SEG] token's attention peaks"
    if extension.get("sam2_object_score_gate", False):
        grounding_name += ", its object score emptying the mask of a target it judges out of view"
    if extension.get("sam2_mask_refine_radius", 0):
        grounding_name += (f", its mask brought to the frame by a colour guided filter (radius "
                           f"{extension['sam2_mask_refine_radius']} px)")
    ablation = ("the learned <TIME_CONTEXT> embedding on every frame instead of the previous frame's\n[SEG] hidden state"
                + (", and no previous frame to the motion encoder" if motion else "")
                + ": what the streaming memory buys.")
    stage0_note = ("" if any(f["stage"] == "promptable" for f in pretrained + facts) else
                   "\nStage 0 (SAM 2 alone on its promptable task) was not rerun: its SAM 2 comes from `artifacts/tiny_stage0`,"
                   "\nwhose README gives its steps and time (not counted above).\n")
    card = f"""# strvos-synthetic-tiny

The StreamingRVOS architecture ({vision_name} + Qwen2 + {grounding_name}, joined by [SEG]) at a tiny size, trained from
random weights on this repository's synthetic referring-video world only. It is the embedded default that the
demo runs; it knows coloured shapes on a plain background, not the real world.

- Made by: `{TRAIN_COMMAND}` (stages {' -> '.join(_run_name(f) for f in pretrained + facts)}; the configs are named in the
  script)
- Weights: {weights.name}, float16 (cast to the run dtype on load), {size_mb:.1f} MB with tokenizer and config
- Tokenizer: the synthetic vocabulary plus the special tokens (tokenizer.json)

## Training ({total:.1f} minutes of logged step time; stage seeds below, model init seed {facts[0]['model_seed']})

| stage | run | steps | minutes | synthetic train videos | loss (last 50 steps) | dice loss |
|---|---|---|---|---|---|---|
{stages}
{stage0_note}
## Scores: synthetic test split ({streaming['num_videos']} videos, `strvos synthetic --split test --videos {test_videos} --seed 0`), streamed frame by frame

{table}

Commands (from `{TRAIN_COMMAND}`):

    strvos eval --dataset synthetic --data-root out/synthetic_eval --split test --model {model}
    strvos eval --dataset synthetic --data-root out/synthetic_eval --split test --model {model} \\
        --backend streamingrvos-no-state

{verdict}

"Without the state" feeds {ablation}
{evidence}"""
    (model / "README.md").write_text(card)
    (model / "scores.json").write_text(json.dumps({"runs": pretrained + facts, "streaming": streaming,
                                                   "no_state": no_state, "targets": TARGETS}, indent=2))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--runs", required=True, nargs="+", type=Path)
    parser.add_argument("--eval", required=True, nargs=2, type=Path, metavar=("STREAMING", "NO_STATE"))
    parser.add_argument("--test-videos", type=int, required=True)
    parser.add_argument("--probe", type=Path, help="what `python -m strvos_core.training.probe` printed")
    parser.add_argument("--stage0", type=Path, help="what `python -m strvos_core.training.prompt_eval` printed")
    parser.add_argument("--vision", type=Path, help="what `python -m strvos_core.training.attribute_probe` printed "
                        "for stage V (the vision path pre-trained on attributes)")
    parser.add_argument("--motion", type=Path, help="what `python -m strvos_core.training.motion_probe` printed "
                        "for stage VM (the motion encoder pre-trained on per-cell steps)")
    parser.add_argument("--misses", type=Path, help="what `python -m strvos_core.evaluation.misses` wrote (--out) "
                        "for the test split")
    parser.add_argument("--earlier", type=Path, help="scores.json of the export the first run started from: its "
                        "stages are listed too (for run folders that are gone)")
    args = parser.parse_args(argv)
    try:
        table = write_card(args.model, args.runs, args.eval[0], args.eval[1], args.test_videos, args.probe,
                           args.stage0, args.vision, args.earlier, args.motion, args.misses)
    except StrvosError as exc:
        print(f"model_card: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    print(f"wrote {args.model / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
