#!/usr/bin/env bash
# Continue the tiny model's training on a lent GPU (the device tool), within a time box, and send the run back.
#
# Here, once per session that is lent a GPU:
#   bash scripts/device_train.sh prepare RUN        # wheels the GPU image lacks -> .device/wheels (git-ignored),
#                                                   # RUN's newest checkpoint without its optimizer moments
#                                                   # -> .device/runs/RUN_NAME (the tree that travels: <= 64 MiB)
# Then the device tool, from the repository root, carry [".device"], timeout_s 600:
#   bash scripts/device_train.sh run MINUTES CONFIG RUN_NAME
#     resumes .device/runs/RUN_NAME on CUDA with CONFIG (run.device overridden; --resume accepts it) for at most
#     MINUTES of wall time, logs held-out prompt scores when the run is a stage-0 run, and packs the newest
#     checkpoint into $OUT (tools/device_pack.py: fp32 weights, bf16 optimizer moments, <= 7 parts of 15 MiB).
# Back here, with the folder the tool reports (files_at):
#   bash scripts/device_train.sh unpack FILES_AT RUN   # -> RUN/checkpoints/step_N; then `strvos train --resume`
# Tried on this CPU with `run 1 ... ` and DEVICE=cpu OUT=/tmp/out (see training/README.md).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
verb=${1:-}
case "$verb" in
  prepare)
    run=$2
    VENV=$(bash scripts/setup.sh --print-venv)
    mkdir -p .device/wheels .device/runs
    grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
    pins=$(grep -E '^(hydra-core|omegaconf|antlr4-python3-runtime|iopath|portalocker)==' requirements/lock.txt)
    # pure-Python packages: wheels built here serve the GPU image's Python 3.12 too (sam2 without its CUDA op)
    SAM2_BUILD_CUDA=0 "$VENV/bin/pip" wheel -q --no-deps --no-build-isolation -w .device/wheels sam2==1.1.0 $pins
    latest=$(ls -d "$run"/checkpoints/step_* | sort | tail -n 1)
    name=$(basename "$run")
    rm -rf ".device/runs/$name"
    mkdir -p ".device/runs/$name/checkpoints"
    # the weights travel, not the AdamW moments (the working tree that travels is capped at 64 MiB): the run
    # continues there with fresh moments on the same schedule (checkpointing.load_state)
    mkdir -p ".device/runs/$name/checkpoints/$(basename "$latest")"
    find "$latest" -maxdepth 1 -type f ! -name optimizer.pt -exec cp {} ".device/runs/$name/checkpoints/$(basename "$latest")/" \;
    cp "$run/log.jsonl" "$run/train_config.json" ".device/runs/$name/" 2>/dev/null || true
    du -sh .device
    ;;
  run)
    minutes=$2 config=$3 name=$4
    OUT=${OUT:?run this through the device tool, which sets OUT}
    if [ "${DEVICE:-cuda}" = cuda ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .device/wheels/*.whl
      export PYTHONPATH="$ROOT:/tmp/site"
      nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
    fi
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    [ -e runs ] || ln -s .device/runs runs   # configs name runs/... for inits
    PY=${PYTHON:-python3}
    $PY -m strvos_core.cli.main train --config "$config" --out ".device/runs/$name" --resume \
      --device "${DEVICE:-cuda}" --max-minutes "$minutes" --no-progress 2>&1 | tee "$OUT/train.txt"
    if grep -q 'stage: promptable' "$config"; then
      $PY -m strvos_core.training.prompt_eval --run ".device/runs/$name" --frames 60 | tee "$OUT/prompt_eval.txt"
    fi
    $PY tools/device_pack.py pack ".device/runs/$name" "$OUT"
    ;;
  unpack)
    source=$2 run=$3
    VENV=$(bash scripts/setup.sh --print-venv)
    "$VENV/bin/python" tools/device_pack.py unpack "$source" "$run"
    ;;
  *)
    sed -n 2,16p "${BASH_SOURCE[0]}"
    exit 2
    ;;
esac
