#!/usr/bin/env bash
# Runs a step script (the backup) with the asynchronous writers stopped (see docs/step-scripts.md):
#   bash scripts/writers-stopped.sh scripts/backup.sh
# Beat, the Celery workers, the DLMS processor and the poster write readings into the database.
# Stopped before the dump, everything they would have written waits in RabbitMQ instead, so the
# backup holds every reading written so far and a rollback to it loses none. The API keeps
# serving. When the step succeeds the writers stay stopped: the upgrade replaces them after
# migrate (their label `io.utilitarian.backup` carries this backup's ID). When it fails or is
# interrupted, the writers this script stopped are started again: everything is as it was.
#
# STOP_WRITERS            container names, space-separated; absent ones are skipped (first install)
# WRITERS_STOP_SECONDS    grace each writer gets before it is killed (default 60: Celery's warm shutdown)
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=writers
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# == 1)) || die "usage: writers-stopped.sh STEP_SCRIPT"
STEP_SCRIPT=$1
[[ -f "$STEP_SCRIPT" ]] || die "step script $STEP_SCRIPT not found"
WRITERS_STOP_SECONDS="${WRITERS_STOP_SECONDS:-60}"
require_int WRITERS_STOP_SECONDS 0
docker_setup_env

STOPPED=()
STEP_SUCCEEDED=false
restart_writers() {
  [[ "$STEP_SUCCEEDED" == true ]] && return 0
  ((${#STOPPED[@]} > 0)) || return 0
  if docker start "${STOPPED[@]}" >/dev/null; then
    log "started the writers again: ${STOPPED[*]}"
  else
    log "could not start the writers again: ${STOPPED[*]}; start them with: docker start ${STOPPED[*]}"
  fi
}
on_exit restart_writers

read -r -a writers <<<"${STOP_WRITERS:-}"
for name in "${writers[@]}"; do
  state=$(container_state "$name")
  if [[ "$state" != "running "* ]]; then
    log "writer $name is not running (${state:-absent}); nothing to stop"
    continue
  fi
  # Recorded before the stop: an interrupt during `docker stop` must still start it again.
  STOPPED+=("$name")
done
if ((${#STOPPED[@]} > 0)); then
  started=$(now_ms)
  docker stop -t "$WRITERS_STOP_SECONDS" "${STOPPED[@]}" >/dev/null
  log "stopped the writers in $(seconds_since "$started")s: ${STOPPED[*]} (their input waits in RabbitMQ)"
fi

rc=0
run_child bash "$STEP_SCRIPT" || rc=$?
if ((rc != 0)); then
  die "$(basename -- "$STEP_SCRIPT") failed (exit $rc, reason above); the writers it had stopped are started again"
fi
STEP_SUCCEEDED=true
if ((${#STOPPED[@]} > 0)); then
  log "the writers stay stopped until the upgrade starts them on the new version: ${STOPPED[*]}"
fi
