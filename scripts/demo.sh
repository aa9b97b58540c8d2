#!/usr/bin/env bash
# The README's main command: sets up if needed, then runs the demo (scripts/demo.py --help for options):
# strvos_node on the embedded default model, a synthetic RGB-D camera at 15 Hz, prompts with a target change
# mid-stream; writes out/demo/overlay.mp4, overlay.gif and summary.{json,md}.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$(bash "$ROOT/scripts/setup.sh" --print-venv)
# shellcheck disable=SC1091
. "$VENV/strvos-env.sh"   # ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a random ROS_DOMAIN_ID
export HF_HUB_OFFLINE=1
exec python "$ROOT/scripts/demo.py" "$@"
