#!/usr/bin/env bash
# Trains the embedded default model from scratch on this CPU and ships it (hours on 2 cores; resumable):
#   stage 0  SAM 2 alone on its own prompts: clicks, boxes, corrections (configs/train/tiny_sam2_promptable.yaml);
#            its SAM 2 is kept in artifacts/tiny_stage0 (float16): skipped when that file is there, unless --stage0
#   stage V  the LLM's conv vision trunk + mlp1 alone on per-cell attributes (configs/train/tiny_vision.yaml); kept in
#            artifacts/tiny_vision (float32): skipped when that file is there, unless --vision
#   stage 1  the [SEG] path on single frames, appearance + relation     (configs/train/tiny_stage1.yaml)
#   stage 1b stage 1 continued on fresh frames, the [SEG] attention 3x  (configs/train/tiny_stage1b.yaml)
#   stage 2  3-frame clips with the [SEG] recurrence, all kinds          (configs/train/tiny_stage2.yaml)
#            exported (float16) to runs/tiny_s2/export: stages 1-2 are skipped when that export is there
#   stage Q  the LLM alone: the [SEG] query must attend to and name the target (configs/train/tiny_query.yaml)
#   stage 1c stage 1b's recipe from stage Q: the mask path re-learns the new [SEG] state (tiny_stage1c.yaml)
#   stage 2c stage 2's recipe from stage 1c                                (configs/train/tiny_stage2c.yaml)
#            exported (float16) to runs/tiny_s2c/export: stages Q-2c are skipped when that export is there
#   stage 2m stage 2c's recipe continued on 4-frame clips drawn close together (configs/train/tiny_stage2m.yaml)
#            exported (float16) to runs/tiny_s2m/export: stages Q-2m are skipped when that export is there
#   stage QM the motion encoder is added (it reads the previous frame); stage Q's recipe on all kinds, with motion
#            heads on the image tokens and the [SEG] query (configs/train/motion/query_motion.yaml)
#   stage 1m stage 1c's recipe on all kinds from stage QM             (configs/train/motion/stage1_motion.yaml)
#            (a clip stage after it, configs/train/motion/stage2_motion.yaml, scored lower: not run here)
#   stage 1a SAM 2 also gets a click where the [SEG] attention peaks (grounding.attention_click); stage 1m's recipe
#            from stage 1m, the decoder learning to use both prompts      (configs/train/click/stage1_click.yaml)
#   stage QA stage QM's recipe (the LLM alone) from stage 1a: the attention places the click (query_click.yaml)
#   stage VM the motion encoder alone on which way each object moved per token cell (training.motion_probe,
#            configs/train/motion/motion_encoder.yaml); kept in artifacts/tiny_motion (float32): skipped when that
#            file is there, unless --motion
#   stage QV stage QA's recipe from stage QA with stage VM's encoder in place of its own, its output projection
#            zero at first: the LLM learns to read it (configs/train/motion/query_motion_pretrained.yaml)
#   stage 1v stage 1a's recipe from stage QV: masks again (configs/train/motion/stage1_click_motion.yaml)
#   stage QV2, 1v2  the same two recipes once more, other data seeds (query_motion_round2.yaml,
#            stage1_click_motion_round2.yaml)
#   export   float16 safetensors into strvos_core/assets/models/strvos-synthetic-tiny, SAM 2's mask brought to the
#            frame by a colour guided filter (grounding.mask_refine_radius 16; modeling/mask_refine.py)
#   eval     streaming J&F per expression kind on the synthetic test split, with and without the state,
#            then the model card (README.md next to the weights).
# Interrupted? Run it again: training resumes from its newest checkpoint (runs/), evaluation from its records.
# Usage: bash scripts/train_tiny.sh [--stage0] [--vision] [--motion] [--test-videos N]
#        (STRVOS_TRAIN_THREADS=1 on a machine shared with other jobs)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_VIDEOS=40
STAGE0=0
VISION=0
MOTION=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stage0) STAGE0=1; shift ;;
    --vision) VISION=1; shift ;;
    --motion) MOTION=1; shift ;;
    --test-videos) TEST_VIDEOS=$2; shift 2 ;;
    *) echo "train_tiny.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
THREADS=()
if [ -n "${STRVOS_TRAIN_THREADS:-}" ]; then THREADS=(--threads "$STRVOS_TRAIN_THREADS"); fi
VENV=$(bash "$ROOT/scripts/setup.sh" --print-venv)
# shellcheck disable=SC1091
. "$VENV/strvos-env.sh"
export HF_HUB_OFFLINE=1
cd "$ROOT"
MODEL=strvos_core/assets/models/strvos-synthetic-tiny
DATA=out/synthetic_eval

train() {  # config, run dir: fresh, resumed, or already finished
  if ls "$2"/checkpoints/step_* >/dev/null 2>&1; then strvos train --config "$1" --out "$2" --resume "${THREADS[@]}"
  else strvos train --config "$1" --out "$2" "${THREADS[@]}"; fi
}
probed_stage() {  # config, run dir: train, probe on held-out frames (RUN/probe.md), export to RUN/export
  train "$1" "$2"
  python -m strvos_core.training.probe --run "$2" --frames 60 | tee "$2/probe.md"
  strvos convert --checkpoint "$2" --out "$2/export"
}

S0=artifacts/tiny_stage0
if [ "$STAGE0" = 1 ] || [ ! -f "$S0/sam2_grounding_fp16.safetensors" ]; then
  train configs/train/tiny_sam2_promptable.yaml runs/tiny_s0
  strvos convert --checkpoint runs/tiny_s0 --out "$S0/sam2_grounding_fp16.safetensors" --grounding-only --dtype float16
  python -m strvos_core.training.prompt_eval --run runs/tiny_s0 --frames 60 | tee "$S0/prompt_eval.txt"
else
  echo "train_tiny.sh: stage 0 kept from $S0 (--stage0 retrains it)"
fi
SV=artifacts/tiny_vision
if [ "$VISION" = 1 ] || [ ! -f "$SV/vision.safetensors" ]; then
  mkdir -p "$SV"
  python -m strvos_core.training.attribute_probe --config configs/train/tiny_vision.yaml --lr 1e-3 --steps 2000 \
    --save "$SV/vision.safetensors" "${THREADS[@]}" | tee "$SV/attribute_probe.txt"
else
  echo "train_tiny.sh: stage V kept from $SV (--vision retrains it)"
fi
S2=runs/tiny_s2/export
S2C=runs/tiny_s2c/export
if [ ! -f "$S2/model.safetensors" ] && [ ! -f "$S2C/model.safetensors" ]; then
  probed_stage configs/train/tiny_stage1.yaml runs/tiny_s1
  probed_stage configs/train/tiny_stage1b.yaml runs/tiny_s1b
  train configs/train/tiny_stage2.yaml runs/tiny_s2
  strvos convert --checkpoint runs/tiny_s2 --out "$S2" --dtype float16
else
  echo "train_tiny.sh: stages 1-2 kept from $S2 or $S2C (delete both to retrain them)"
fi
S2M=runs/tiny_s2m/export
if [ ! -f "$S2M/model.safetensors" ]; then
  if [ ! -f "$S2C/model.safetensors" ]; then
    train configs/train/tiny_query.yaml runs/tiny_q
    strvos convert --checkpoint runs/tiny_q --out runs/tiny_q/export
    probed_stage configs/train/tiny_stage1c.yaml runs/tiny_s1c
    train configs/train/tiny_stage2c.yaml runs/tiny_s2c
    strvos convert --checkpoint runs/tiny_s2c --out "$S2C" --dtype float16
  else
    echo "train_tiny.sh: stages Q-2c kept from $S2C (delete it to retrain them)"
  fi
  train configs/train/tiny_stage2m.yaml runs/tiny_s2m
  strvos convert --checkpoint runs/tiny_s2m --out "$S2M" --dtype float16
else
  echo "train_tiny.sh: stages Q-2m kept from $S2M (delete it to retrain them)"
fi
train configs/train/motion/query_motion.yaml runs/tiny_qm
strvos convert --checkpoint runs/tiny_qm --out runs/tiny_qm/export
train configs/train/motion/stage1_motion.yaml runs/tiny_s1m
strvos convert --checkpoint runs/tiny_s1m --out runs/tiny_s1m/export
train configs/train/click/stage1_click.yaml runs/tiny_s1a
strvos convert --checkpoint runs/tiny_s1a --out runs/tiny_s1a/export
train configs/train/click/query_click.yaml runs/tiny_qa
# the mask's edges from the frame (grounding.mask_refine_radius, an inference setting; radius chosen on train videos)
strvos convert --checkpoint runs/tiny_qa --out runs/tiny_qa/export --dtype float16 --mask-refine-radius 16
SVM=artifacts/tiny_motion
if [ "$MOTION" = 1 ] || [ ! -f "$SVM/motion_encoder.safetensors" ]; then
  mkdir -p "$SVM"
  python -m strvos_core.training.motion_probe --config configs/train/motion/motion_encoder.yaml --steps 1500 \
    --save "$SVM/motion_encoder.safetensors" "${THREADS[@]}" | tee "$SVM/motion_probe.md"
else
  echo "train_tiny.sh: stage VM kept from $SVM (--motion retrains it)"
fi
train configs/train/motion/query_motion_pretrained.yaml runs/tiny_qv
strvos convert --checkpoint runs/tiny_qv --out runs/tiny_qv/export --dtype float16 --mask-refine-radius 16
train configs/train/motion/stage1_click_motion.yaml runs/tiny_s1v
strvos convert --checkpoint runs/tiny_s1v --out runs/tiny_s1v/export --dtype float16 --mask-refine-radius 16
train configs/train/motion/query_motion_round2.yaml runs/tiny_qv2
strvos convert --checkpoint runs/tiny_qv2 --out runs/tiny_qv2/export --dtype float16 --mask-refine-radius 16
train configs/train/motion/stage1_click_motion_round2.yaml runs/tiny_s1v2
strvos convert --checkpoint runs/tiny_s1v2 --out "$MODEL" --dtype float16 --mask-refine-radius 16

[ -f "$DATA/meta_expressions/test/meta_expressions.json" ] || \
  strvos synthetic --root "$DATA" --split test --videos "$TEST_VIDEOS" --seed 0 --no-progress
strvos eval --dataset synthetic --data-root "$DATA" --split test --model "$MODEL" --expressions-per-session 16 \
  --out out/eval/tiny_streaming --no-progress
strvos eval --dataset synthetic --data-root "$DATA" --split test --model "$MODEL" --expressions-per-session 16 \
  --backend streamingrvos-no-state --out out/eval/tiny_no_state --no-progress
LAST=runs/tiny_s1v2
python -m strvos_core.training.probe --run "$LAST" --frames 60 | tee "$LAST/probe.md"
python -m strvos_core.evaluation.misses --model "$MODEL" --data-root "$DATA" --split test --out "$LAST/misses.md"
# Stages kept from an earlier export: their facts come from that export's card (scores.json), not their runs.
EARLIER=()
MOTION_RUNS=(runs/tiny_qm runs/tiny_s1m runs/tiny_s1a runs/tiny_qa runs/tiny_qv runs/tiny_s1v runs/tiny_qv2 runs/tiny_s1v2)
RUNS=(runs/tiny_s1 runs/tiny_s1b runs/tiny_s2 runs/tiny_q runs/tiny_s1c runs/tiny_s2c runs/tiny_s2m "${MOTION_RUNS[@]}")
if [ ! -f runs/tiny_s2m/log.jsonl ] && [ -f "$S2M/scores.json" ]; then
  EARLIER=(--earlier "$S2M/scores.json"); RUNS=("${MOTION_RUNS[@]}")
elif [ ! -f runs/tiny_q/log.jsonl ] && [ -f "$S2C/scores.json" ]; then
  EARLIER=(--earlier "$S2C/scores.json"); RUNS=(runs/tiny_s2m "${MOTION_RUNS[@]}")
elif [ ! -f runs/tiny_s1/log.jsonl ] && [ -f "$S2/scores.json" ]; then
  EARLIER=(--earlier "$S2/scores.json")
  RUNS=(runs/tiny_q runs/tiny_s1c runs/tiny_s2c runs/tiny_s2m "${MOTION_RUNS[@]}")
fi
if [ -d runs/tiny_s0 ]; then RUNS=(runs/tiny_s0 "${RUNS[@]}"); fi
python -m strvos_core.training.model_card --model "$MODEL" --runs "${RUNS[@]}" "${EARLIER[@]}" \
  --eval out/eval/tiny_streaming out/eval/tiny_no_state --test-videos "$TEST_VIDEOS" \
  --probe "$LAST/probe.md" --stage0 "$S0/prompt_eval.txt" --vision "$SV/attribute_probe.txt" \
  --motion "$SVM/motion_probe.md" --misses "$LAST/misses.md"
