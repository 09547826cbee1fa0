#!/usr/bin/env bash
# Collect and compress static files inside the API container (see docs/step-scripts.md):
# `$MANAGE collectstatic --no-input`, then `$MANAGE compress`, then a restart of the API
# container. Each failure fails the step with its log on stderr. On a swarm (SWARM_NODE_HOSTS) the
# files live in each task's container: both commands run in every running task of the API service,
# each on its node, and then each task's application server reloads (a restart would end the task:
# see reload_api_task), one task after another.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=static
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
window_begin static

prepare_api_step all

manage_step() { # NAME ARGS...: run one manage.py command, fail the step with its log
  local name=$1 started=$SECONDS
  shift
  log "running: $MANAGE $name${*:+ $*} (in $API_TARGET$API_ON)"
  if ! run_logged "$WORK/$name.log" api_docker exec "$API_TARGET" "${MANAGE_CMD[@]}" "$name" "$@"; then
    log "---- $name log ----"
    cat "$WORK/$name.log" >&2
    die "$name failed; the log is above"
  fi
  tail -n 5 "$WORK/$name.log"
  printf 'static: %s ok in %ss%s\n' "$name" "$((SECONDS - started))" "$API_SUFFIX"
}

# django-compressor reads its offline manifest once per process and keeps what it read
# (compressor/cache.py, get_offline_manifest): an application-server process that rendered a
# page before `compress` wrote the manifest keeps an empty one and answers that page 500 until
# it restarts. Any request between the API's start and now can do that, so restart the
# container (its own stop timeout, the API's grace period) and wait until it is healthy again:
# every process then starts with the new manifest. A restart works whatever the application
# server is; the followers are still down, so nothing else calls the API meanwhile.
restart_api() {
  local started=$SECONDS
  log "restarting $API_TARGET$API_ON so every application-server process reads the new offline manifest"
  api_docker restart "$API_TARGET" >/dev/null || die "docker restart $API_TARGET failed$API_ON; see: docker logs $API_TARGET"
  on_node "$API_HOST" wait_api_healthy "$API_TARGET" "$API_START_TIMEOUT_SECONDS" "docker logs $API_TARGET$API_ON"
  printf 'static: API restarted and healthy in %ss%s\n' "$((SECONDS - started))" "$API_SUFFIX"
}

# On a swarm the container is not restarted: swarm sees a task's container stop as the task's end
# (`docker restart` of one: the task failed, "non-zero exit (137)", and a new task came up, in a
# new container from the image, without the files collected here, while the restarted one ran on
# beside it). Instead the application server's main process (the container's PID 1) gets
# API_RELOAD_SIGNAL (default HUP: Gunicorn, and uWSGI, then start new worker processes and stop
# the old ones gracefully); this waits until every other process of the container is new, then
# until it is healthy. The task must still run the same container afterwards.

# container_children: the host PIDs of the target container's processes but its main one, sorted.
container_children() {
  local main
  main=$(api_docker inspect -f '{{.State.Pid}}' "$API_TARGET" 2>/dev/null) || return 0
  api_docker top "$API_TARGET" -eo pid 2>/dev/null | awk -v main="$main" 'NR > 1 && $1 != main { print $1 }' | LC_ALL=C sort
}

reload_api_task() { # TASK
  local task=$1 started=$SECONDS before left
  before=$(container_children)
  log "sending SIG$API_RELOAD_SIGNAL to the application server in $API_TARGET$API_ON (API_RELOAD_SIGNAL), so every worker process reads the new offline manifest"
  api_docker kill --signal "$API_RELOAD_SIGNAL" "$API_TARGET" >/dev/null || die "docker kill --signal $API_RELOAD_SIGNAL $API_TARGET failed$API_ON; see: docker service logs $API_CONTAINER"
  while :; do
    left=$(LC_ALL=C comm -12 <(printf '%s\n' "$before") <(container_children) | paste -sd ' ')
    [[ -z "$left" ]] && break
    if ((SECONDS - started >= API_START_TIMEOUT_SECONDS)); then
      die "after SIG$API_RELOAD_SIGNAL, processes $left of $API_TARGET$API_ON still run after ${API_START_TIMEOUT_SECONDS}s: the application server did not replace its workers; set API_RELOAD_SIGNAL to the signal that makes it reload (see: docker top $API_TARGET)"
    fi
    sleep 1
  done
  on_node "$API_HOST" wait_api_healthy "$API_TARGET" "$API_START_TIMEOUT_SECONDS" "docker service logs $API_CONTAINER"
  swarm_task_kept "$task"
  printf 'static: API reloaded and healthy in %ss%s\n' "$((SECONDS - started))" "$API_SUFFIX"
}

# swarm_task_kept TASK: TASK still runs the container that was reloaded and swarm says running.
swarm_task_kept() {
  local task=$1 container=${SWARM_TASK_CONTAINER[$1]} t
  swarm_read_tasks "$API_CONTAINER"
  for t in "${SWARM_TASKS[@]}"; do
    [[ "$t" == "$task" && "${SWARM_TASK_CONTAINER[$t]}" == "$container" ]] && return 0
  done
  die "task $task of service $API_CONTAINER no longer runs container $API_TARGET; a new container has none of the collected static files: run the static step again. See: docker service ps $API_CONTAINER"
}

if swarm_mode; then
  API_RELOAD_SIGNAL="${API_RELOAD_SIGNAL:-HUP}"
  API_RELOAD_SIGNAL=${API_RELOAD_SIGNAL#SIG}
  [[ "$API_RELOAD_SIGNAL" =~ ^[A-Z0-9]+$ ]] || die "$STEP: API_RELOAD_SIGNAL must be a signal name like HUP or USR2; got '$API_RELOAD_SIGNAL'"
  tasks=("${SWARM_TASKS[@]}")
  for task in "${tasks[@]}"; do
    api_use_task "$task"
    manage_step collectstatic --no-input
    manage_step compress
  done
  # One task after another, so the others answer meanwhile.
  for task in "${tasks[@]}"; do
    api_use_task "$task"
    reload_api_task "$task"
  done
  printf 'static: %s task(s) of %s done\n' "${#tasks[@]}" "$API_CONTAINER"
else
  manage_step collectstatic --no-input
  manage_step compress
  restart_api
fi
window_step_end "{}"
