#!/usr/bin/env bash
# The README's test command: sets up (idempotent, a few seconds when nothing changed) and runs the tests.
#   scripts/test.sh           default suite (everything not marked slow)
#   scripts/test.sh --slow    only the slow suites
#   scripts/test.sh ARGS...   extra pytest arguments (e.g. -k parity, -x)
# Fails on any test failure and on "no tests collected" (pytest exit code 5).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$(bash "$ROOT/scripts/setup.sh" --print-venv)
# shellcheck disable=SC1091
. "$VENV/strvos-env.sh"   # also sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a random ROS_DOMAIN_ID
export HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1

MARK=(-m "not slow")
if [ "${1:-}" = "--slow" ]; then MARK=(-m slow); shift; fi

cd "$ROOT"
echo "== ruff check"
ruff check .
echo "== pytest ${MARK[*]} $*"
set +e
python -m pytest -p no:cacheprovider "${MARK[@]}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
