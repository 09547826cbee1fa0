#!/usr/bin/env bash
# Collect and compress static files inside the API container (see docs/step-scripts.md):
# `$MANAGE collectstatic --no-input`, then `$MANAGE compress`, then a restart of the API
# container. Each failure fails the step with its log on stderr.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=static
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
window_begin static

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

# django-compressor reads its offline manifest once per process and keeps what it read
# (compressor/cache.py, get_offline_manifest): an application-server process that rendered a
# page before `compress` wrote the manifest keeps an empty one and answers that page 500 until
# it restarts. Any request between the API's start and now can do that, so restart the
# container (its own stop timeout, the API's grace period) and wait until it is healthy again:
# every process then starts with the new manifest. A restart works whatever the application
# server is; the followers are still down, so nothing else calls the API meanwhile.
restart_api() {
  local started=$SECONDS
  log "restarting $API_CONTAINER so every application-server process reads the new offline manifest"
  docker restart "$API_CONTAINER" >/dev/null || die "docker restart $API_CONTAINER failed; see: docker logs $API_CONTAINER"
  wait_api_healthy "$API_CONTAINER" "$API_START_TIMEOUT_SECONDS"
  printf 'static: API restarted and healthy in %ss\n' "$((SECONDS - started))"
}
restart_api
window_step_end "{}"
