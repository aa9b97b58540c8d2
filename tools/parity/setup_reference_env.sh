#!/usr/bin/env bash
# Build the separate Python environment that runs the REFERENCE StreamingRVOS code (for parity fixtures).
#
# Why separate: the reference pins transformers 4.42 / numpy<2 and imports torchvision, which cannot live in the
# project venv (transformers 5, torch CPU without torchvision). Nothing here touches the repository: the venv and
# the exported, CPU-patched copy of the reference model package live under $STRVOS_REF_HOME.
#
# Usage:  bash tools/parity/setup_reference_env.sh          (idempotent; re-running only redoes what is missing)
# Result: $STRVOS_REF_HOME/venv            python with the reference's library versions
#         $STRVOS_REF_HOME/pkg/sa2va_ref/  projects/streamingrvos/hf/models exported from the git mirror, CUDA -> CPU
set -euo pipefail

REF_HOME="${STRVOS_REF_HOME:-$HOME/.cache/strvos-ref}"
REF_REPO="${STRVOS_REF_REPO:-/work/.mirror/wkzhang636+StreamingRVOS/repo}"
REF_COMMIT="${STRVOS_REF_COMMIT:-HEAD}"
VENV="$REF_HOME/venv"
PKG_DIR="$REF_HOME/pkg/sa2va_ref"
PYTHON="${PYTHON:-python3.11}"

mkdir -p "$REF_HOME"

# 1. venv with pinned versions (torch is pinned through a constraints file so no later call re-resolves it).
if [ ! -f "$VENV/.strvos-ref-ready" ]; then
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    CONSTRAINTS="$REF_HOME/constraints.txt"
    printf '%s\n' "torch==2.14.1" "torchvision==0.29.1" "transformers==4.42.3" "tokenizers==0.19.1" \
        "peft==0.11.1" "timm==1.0.9" "numpy<2" "accelerate==0.33.0" > "$CONSTRAINTS"
    "$VENV/bin/pip" install -q -c "$CONSTRAINTS" torch==2.14.1 torchvision==0.29.1
    "$VENV/bin/pip" install -q -c "$CONSTRAINTS" transformers==4.42.3 tokenizers==0.19.1 peft==0.11.1 \
        timm==1.0.9 'numpy<2' accelerate==0.33.0 pillow einops sentencepiece opencv-python-headless safetensors
    touch "$VENV/.strvos-ref-ready"
fi

# 2. Export the reference HF model package from the git mirror (no work tree there) and patch CUDA -> CPU.
#    The patch only changes device placement; the numerics stay those of the reference code.
STAMP="$(git -C "$REF_REPO" rev-parse "$REF_COMMIT")"
if [ "$(cat "$PKG_DIR/.exported-from" 2>/dev/null || true)" != "$STAMP" ]; then
    rm -rf "$PKG_DIR"
    mkdir -p "$PKG_DIR"
    git -C "$REF_REPO" archive "$STAMP" projects/streamingrvos/hf/models \
        | tar -x -C "$PKG_DIR" --strip-components=4
    touch "$PKG_DIR/__init__.py"
    "$VENV/bin/python" - "$PKG_DIR" <<'PY'
import pathlib
import re
import sys

pkg = pathlib.Path(sys.argv[1])
for path in pkg.glob("*.py"):
    text = path.read_text()
    patched = text.replace(".cuda(non_blocking=True)", ".to('cpu')")
    patched = patched.replace(".cuda()", ".to('cpu')")
    patched = re.sub(r"torch\.device\(\s*['\"]cuda['\"]\s*\)", "torch.device('cpu')", patched)
    if patched != text:
        path.write_text(patched)
        print(f"patched CUDA -> CPU in {path.name}")
PY
    echo "$STAMP" > "$PKG_DIR/.exported-from"
fi

echo "reference venv: $VENV"
echo "reference package: $PKG_DIR (import sa2va_ref with PYTHONPATH=$(dirname "$PKG_DIR"))"
