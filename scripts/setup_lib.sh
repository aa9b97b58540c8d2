# Helpers of scripts/setup.sh (sourced, not run): timestamped progress lines on stderr, and long steps that
# are never silent. QUIET=1 silences the progress lines (errors are always printed).

SETUP_T0=${SETUP_T0:-$SECONDS}

log() { [ "${QUIET:-0}" = 1 ] || printf '[setup %3ss] %s\n' "$((SECONDS - SETUP_T0))" "$*" >&2; }

# run_logged LOG WHAT COMMAND...: run COMMAND with its output in LOG. Says WHAT and where LOG is first, then every
# STRVOS_PROGRESS_EVERY seconds (default 15) how long it has run and the last line COMMAND wrote (pip: the
# package it is downloading or installing), so a step of minutes shows it is alive. On failure: the log's last
# 30 lines and its path. Returns COMMAND's exit status.
run_logged() {
  local logfile=$1 what=$2
  shift 2
  local every=${STRVOS_PROGRESS_EVERY:-15} started=$SECONDS rc=0 pid next
  log "$what (log: $logfile)"
  "$@" >"$logfile" 2>&1 &
  pid=$!
  next=$((SECONDS + every))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ "$SECONDS" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      log "  ... $((SECONDS - started)) s: $(tail -n 1 "$logfile" 2>/dev/null | tr -d '\r' | cut -c1-110)"
      next=$((SECONDS + every))
    fi
  done
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -30 "$logfile" >&2
    printf 'setup.sh: error: %s failed (exit %s; full log: %s)\n' "$what" "$rc" "$logfile" >&2
  fi
  return "$rc"
}
