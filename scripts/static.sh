#!/usr/bin/env bash
# Collect and compress static files inside the API container (see docs/step-scripts.md):
# `$MANAGE collectstatic --no-input`, then `$MANAGE compress`. Each failure fails the step
# with its log on stderr.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=static
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

prepare_api_step

manage_step() { # NAME ARGS...: run one manage.py command, fail the step with its log
  local name=$1 started=$SECONDS
  shift
  log "running: $MANAGE $name${*:+ $*} (in $API_CONTAINER)"
  if ! run_logged "$WORK/$name.log" docker exec "$API_CONTAINER" "${MANAGE_CMD[@]}" "$name" "$@"; then
    log "---- $name log ----"
    cat "$WORK/$name.log" >&2
    die "$name failed; the log is above"
  fi
  tail -n 5 "$WORK/$name.log"
  printf 'static: %s ok in %ss\n' "$name" "$((SECONDS - started))"
}

manage_step collectstatic --no-input
manage_step compress
