#!/usr/bin/env bash
# Sets up everything strvos needs, idempotently, in a virtualenv outside the clone:
#   pinned Python deps (CPU torch held by requirements/constraints.txt), sam2 without torchvision,
#   the ROS 2 Kilted wheels, the strvos_ros messages + node built with colcon into the venv,
#   the launch system from ../shared/vendor when no `ros2` is installed, and strvos_core (editable).
# The venv lives in $STRVOS_CACHE (default ~/.cache/strvos) under a name derived from the lock files:
# it is reused while they are unchanged and rebuilt when they change. Each later stage is skipped
# when its inputs have not changed, so a rerun takes a few seconds.
#
# Usage: scripts/setup.sh [--print-venv] [--quiet]
#   --print-venv  print only the venv path on stdout (after setting up)
# Environment: STRVOS_CACHE, PYTHON (default python3.11), STRVOS_SHARED (default <clone>/../shared)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRINT_VENV=0
QUIET=0
for arg in "$@"; do
  case "$arg" in
    --print-venv) PRINT_VENV=1; QUIET=1 ;;
    --quiet) QUIET=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

# Network safety: anything ROS this script starts stays on loopback, on a random domain.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}

PYTHON=${PYTHON:-python3.11}
CACHE=${STRVOS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/strvos}
SHARED=${STRVOS_SHARED:-$ROOT/../shared}
LOCK=$ROOT/requirements/lock.txt
CONSTRAINTS=$ROOT/requirements/constraints.txt

SETUP_T0=$SECONDS
# shellcheck source=scripts/setup_lib.sh
. "$ROOT/scripts/setup_lib.sh"   # log, run_logged (progress every 15 s while a step runs)
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }
hash_files() { cat "$@" | sha256sum | cut -c1-16; }
# hash of a set of paths (files or folders), by content and relative name
hash_tree() {
  (cd "$ROOT" && find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 2>/dev/null \
    | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# --- 0. toolchain --------------------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "$PYTHON not found: the ROS 2 Kilted wheels need CPython 3.11"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || die "$PYTHON is not CPython 3.11 (the ros-* wheels are cp311 only)"
for tool in cmake c++ make; do
  command -v "$tool" >/dev/null || die "missing $tool: install cmake, g++ and make (Debian: apt-get install cmake g++ make)"
done
"$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || die "no Python.h for $PYTHON: install the Python development headers (Debian: python3.11-dev)"

# --- 1. venv + pinned dependencies (keyed by the lock files) --------------------------------------------
LOCK_HASH=$(hash_files "$LOCK" "$CONSTRAINTS")
VENV=$CACHE/venv-$LOCK_HASH
mkdir -p "$CACHE/logs"
# One setup at a time per cache: concurrent runs (parallel test jobs, several clones) wait here.
exec 9>"$CACHE/.setup.lock"
flock 9
PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check)
if [ "$(cat "$VENV/.strvos-deps" 2>/dev/null)" != "$LOCK_HASH" ]; then
  log "creating $VENV (first run or lock files changed: about 4 minutes on 2 cores, more on a busy machine)"
  for old in "$CACHE"/venv-*; do [ -e "$old" ] && [ "$old" != "$VENV" ] && rm -rf "$old"; done
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  run_logged "$CACHE/logs/pip.log" "pip install -r requirements/lock.txt (torch, transformers, ROS 2 wheels: ~2 min)" \
    "${PIP[@]}" install -r "$LOCK" -c "$CONSTRAINTS" || exit 1
  # sam2 1.1.0 declares torchvision, which is neither needed nor working beside the CPU torch: no deps.
  # SAM2_BUILD_CUDA=0 skips its optional CUDA extension (fill-holes post-processing is then skipped).
  SAM2_BUILD_CUDA=0 run_logged "$CACHE/logs/sam2.log" "pip install sam2 (no deps, no CUDA extension)" \
    "${PIP[@]}" install --no-deps --no-build-isolation "sam2==1.1.0" -c "$CONSTRAINTS" || exit 1
  echo "$LOCK_HASH" >"$VENV/.strvos-deps"
else
  log "dependencies up to date ($VENV)"
fi

# --- 2. the ROS msg wheels' CMake exports hard-code the wheel builder's include paths: point them here --
PYINC=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NPINC=$("$PY" -c 'import numpy; print(numpy.get_include())')
mapfile -t stale < <(grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true)
if [ "${#stale[@]}" -gt 0 ]; then
  log "patching ${#stale[@]} CMake export file(s) of the ROS wheels"
  sed -i -e "s|/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include|$NPINC|g" \
         -e "s|/opt/python/cp311-cp311/include/python3.11|$PYINC|g" "${stale[@]}"
fi

export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH
export AMENT_PREFIX_PATH=$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
export CMAKE_PREFIX_PATH=$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}

# --- 3. launch system: a real ROS install brings its own; otherwise the vendored copy (for tests) -------
VENDOR_TGZ=$SHARED/vendor/ros2-launch-src.tar.gz
if [ -x "$VENV/bin/ros2" ] || ! command -v ros2 >/dev/null 2>&1; then
  if [ -f "$VENDOR_TGZ" ]; then
    want=$(hash_files "$VENDOR_TGZ")
    if [ "$(cat "$VENV/.strvos-launch" 2>/dev/null)" != "$want" ]; then
      src=$(mktemp -d)
      tar xzf "$VENDOR_TGZ" -C "$src"
      run_logged "$CACHE/logs/launch.log" "installing the launch system from $VENDOR_TGZ (~1 min)" \
        bash "$src/install_launch.sh" || { rm -rf "$src"; exit 1; }
      rm -rf "$src"
      echo "$want" >"$VENV/.strvos-launch"
    fi
  else
    log "no ros2 and no $VENDOR_TGZ: 'ros2 launch' unavailable (the node still runs: strvos_node)"
  fi
fi

# --- 4. messages + node (ament_cmake package strvos_ros) with colcon, straight into the venv ------------
ROS_HASH=$(hash_tree msg srv strvos_ros launch config scripts/strvos_node CMakeLists.txt package.xml)
if [ "$(cat "$VENV/.strvos-ros" 2>/dev/null)" != "$ROS_HASH" ]; then
  (cd "$CACHE" && run_logged "$CACHE/logs/colcon.log" "colcon build strvos_ros (messages + node) into the venv (~40 s)" \
      "$VENV/bin/colcon" --log-base "$CACHE/colcon/log" build \
      --base-paths "$ROOT" --build-base "$CACHE/colcon/build" \
      --install-base "$VENV" --merge-install \
      --cmake-args -DSTRVOS_INSTALL_CORE=OFF -DBUILD_TESTING=OFF "-DPython3_EXECUTABLE=$PY") || exit 1
  echo "$ROS_HASH" >"$VENV/.strvos-ros"
fi

# --- 5. strvos_core, editable, pointing at this clone ----------------------------------------------------
CORE_KEY="$ROOT $(hash_files "$ROOT/setup.py")"
# the editable install keeps its metadata in the clone (strvos.egg-info): a fresh clone at the same path needs it again
core_ok() {
  [ "$(cat "$VENV/.strvos-core" 2>/dev/null)" = "$CORE_KEY" ] && "$PY" - "$ROOT" <<'EOF_PY' 2>/dev/null
import importlib.metadata, pathlib, sys
import strvos_core
importlib.metadata.distribution("strvos")
sys.exit(pathlib.Path(strvos_core.__file__).resolve().parents[1] != pathlib.Path(sys.argv[1]).resolve())
EOF_PY
}
if ! core_ok; then
  run_logged "$CACHE/logs/core.log" "pip install -e $ROOT (strvos_core + the strvos command)" \
    "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT" -c "$CONSTRAINTS" || exit 1
  echo "$CORE_KEY" >"$VENV/.strvos-core"
fi

# --- 6. an env file for shells and scripts -----------------------------------------------------------------
ENV_FILE=$VENV/strvos-env.sh
ENV_TEXT="# source me: . $ENV_FILE
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=\${ROS_DOMAIN_ID:-\$((RANDOM % 100 + 1))}
export VIRTUAL_ENV='$VENV'
export PATH='$VENV/bin':\$PATH
export AMENT_PREFIX_PATH='$VENV'\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}
export CMAKE_PREFIX_PATH='$VENV'\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}"
[ "$(cat "$ENV_FILE" 2>/dev/null)" = "$ENV_TEXT" ] || printf '%s\n' "$ENV_TEXT" >"$ENV_FILE"

log "ready after $((SECONDS - SETUP_T0)) s: venv $VENV (. $ENV_FILE to use it; step logs in $CACHE/logs)"
[ "$PRINT_VENV" = 1 ] && echo "$VENV"
exit 0
