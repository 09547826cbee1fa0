#!/usr/bin/env bash
# Runs a step script (the backup) with the asynchronous writers stopped (see docs/step-scripts.md):
#   bash scripts/writers-stopped.sh scripts/backup.sh
# Beat, the Celery workers, the DLMS processor and the poster write readings into the database.
# Stopped before the dump, everything they would have written waits in RabbitMQ instead, so the
# backup holds every reading written so far and a rollback to it loses none. The API keeps
# serving. When the step succeeds the writers stay stopped: the upgrade replaces them after
# migrate (their label `io.utilitarian.backup` carries this backup's ID). When it fails or is
# interrupted, the writers this script stopped are started again: everything is as it was.
# A cancelled `pulumi up` SIGKILLs this script, whose exit handler then never runs; a guard in a
# session of its own starts the writers again once nothing of the step runs any more.
#
# On a swarm (SWARM_NODE_HOSTS set, DOCKER_HOST a manager's engine) the writers are services: each
# is scaled to 0 (its tasks get the service's own stop grace period) and, when the step fails, back
# to the replicas it had; the upgrade replaces them after migrate as on one host.
#
# STOP_WRITERS            container names (on a swarm: service names), space-separated; absent ones
#                         are skipped (first install), and so are stopped ones (scaled to 0)
# WRITERS_STOP_SECONDS    grace each writer gets before it is killed (default 60: Celery's warm
#                         shutdown); on a swarm each service's stop grace period applies instead
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
# Stopping the writers is the backup's first act: the maintenance window opens here (before the
# guard below starts, which must hold nothing but its pipe).
if [[ "$(basename -- "$STEP_SCRIPT")" == backup.sh ]]; then
  window_begin backup "${BACKUP_FROM_VERSION:-$(deployed_version)}" "${BACKUP_TO_VERSION:-}"
fi

STOPPED=()
STEP_SUCCEEDED=false
GUARD_FD=""
# What starts the stopped writers again: `docker start NAME...`, or on a swarm
# `docker service scale --detach NAME=REPLICAS...` with the replicas each had.
RESTART=()
restart_writers() {
  # This script decides what becomes of the writers: the guard has nothing to do.
  [[ -n "$GUARD_FD" ]] && printf 'handled\n' >&"$GUARD_FD"
  [[ "$STEP_SUCCEEDED" == true ]] && return 0
  ((${#STOPPED[@]} > 0)) || return 0
  if "${RESTART[@]}" >/dev/null; then
    log "started the writers again: ${STOPPED[*]}"
  else
    log "could not start the writers again: ${STOPPED[*]}; start them with: ${RESTART[*]}"
  fi
}
on_exit restart_writers

read -r -a writers <<<"${STOP_WRITERS:-}"
if swarm_mode; then
  # Only a manager knows the services: anywhere else every writer would look absent.
  swarm_setup_env
  RESTART=(docker service scale --detach)
  for name in "${writers[@]}"; do
    replicas=$(service_replicas "$name")
    if [[ -z "$replicas" || "$replicas" == 0 ]]; then
      log "writer $name is not running (${replicas:+scaled to }${replicas:-absent}); nothing to stop"
      continue
    fi
    [[ "$replicas" =~ ^[0-9]+$ ]] || die "writer $name is a $replicas service, which cannot be scaled to 0; STOP_WRITERS names replicated services only"
    # Recorded before the scale: an interrupt during it must still scale it back.
    STOPPED+=("$name")
    RESTART+=("$name=$replicas")
  done
else
  RESTART=(docker start)
  for name in "${writers[@]}"; do
    state=$(container_state "$name")
    if [[ "$state" != "running "* ]]; then
      log "writer $name is not running (${state:-absent}); nothing to stop"
      continue
    fi
    # Recorded before the stop: an interrupt during `docker stop` must still start it again.
    STOPPED+=("$name")
    RESTART+=("$name")
  done
fi
# start_guard: a process in its own session (the provider kills this script, not a new session)
# reading a pipe whose write end this script and everything it starts hold. It reads to the end of
# the pipe, which comes only when all of them have ended; unless this script said `handled` on it,
# this script was killed before its exit handler ran, and the guard starts the writers again. It
# holds none of this script's output (lib.sh keeps copies of it): the provider, and `pulumi up`,
# wait until every holder of the step's output has closed it.
start_guard() {
  make_work_dir
  mkfifo "$WORK/guard"
  # It closes what else it inherited first: the window's copy of stderr (window.sh) among them,
  # which would keep that copy waiting for this guard, and this guard for the step.
  # shellcheck disable=SC2016 # the guard's own script, expanded when it runs
  setsid bash -c 'for fd in /proc/$$/fd/*; do fd=${fd##*/}; if ((fd > 2 && fd != 255)); then eval "exec $fd>&-"; fi; done
    handled=false
    while IFS= read -r line; do [[ "$line" == handled ]] && handled=true; done
    [[ "$handled" == true ]] || "$@"' writers-guard "${RESTART[@]}" \
    <"$WORK/guard" >/dev/null 2>&1 {LIB_STDOUT}>&- {LIB_STDERR}>&- &
  exec {GUARD_FD}>"$WORK/guard"
}

if ((${#STOPPED[@]} > 0)); then
  start_guard
  started=$(now_ms)
  if swarm_mode; then
    swarm_scale_down "${STOPPED[@]}"
    log "stopped the writers in $(seconds_since "$started")s, scaled to 0: ${STOPPED[*]} (their input waits in RabbitMQ)"
  else
    docker stop -t "$WRITERS_STOP_SECONDS" "${STOPPED[@]}" >/dev/null
    log "stopped the writers in $(seconds_since "$started")s: ${STOPPED[*]} (their input waits in RabbitMQ)"
  fi
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
