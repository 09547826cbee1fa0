#!/usr/bin/env bash
# Verify a deployment (see docs/step-scripts.md): the API's health URL answers 200 (checked
# from inside the API container), no migration is unapplied, every expected container is
# running, not restarting, and did not restart during the checks. On a swarm (SWARM_NODE_HOSTS)
# the API checks run in one running task of the API service, and every service of
# EXPECTED_SERVICES has its number of tasks running, none of them replaced during the checks.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=verify
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
window_begin verify

if swarm_mode; then
  require_vars API_CONTAINER "the API's swarm service name; set by the deployment" \
    EXPECTED_SERVICES "space-separated NAME=REPLICAS of the swarm services that must run (REPLICAS a number or global); set by the deployment"
elif [[ -n "${EXPECTED_SERVICES:-}" ]]; then
  die "$STEP: EXPECTED_SERVICES is set but SWARM_NODE_HOSTS is not; on a swarm set both (swarm.nodeHosts), on one Docker host EXPECTED_CONTAINERS instead"
else
  require_vars API_CONTAINER "the API container's name; set by the deployment" \
    EXPECTED_CONTAINERS "space-separated names of the containers that must run; set by the deployment"
fi
HEALTH_TIMEOUT_SECONDS="${HEALTH_TIMEOUT_SECONDS:-120}"
require_int HEALTH_TIMEOUT_SECONDS 1
docker_setup_env
split_manage
if swarm_mode; then
  swarm_setup_env
  declare -A replicas=()
  expected=()
  read -r -a pairs <<<"$EXPECTED_SERVICES"
  for pair in "${pairs[@]}"; do
    [[ "$pair" =~ ^([^=]+)=([0-9]+|global)$ ]] || die "$STEP: EXPECTED_SERVICES entry '$pair' is not NAME=REPLICAS (REPLICAS a number or global); set by the deployment"
    expected+=("${BASH_REMATCH[1]}")
    replicas[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    [[ "${BASH_REMATCH[2]}" == global ]] || replicas[${BASH_REMATCH[1]}]=$((10#${BASH_REMATCH[2]}))
  done
else
  read -r -a expected <<<"$EXPECTED_CONTAINERS"
  api_use_container
fi

# api_pick: on a swarm, the API target is a running task's container; with none, API_NONE says
# why and it returns 1.
api_pick() {
  swarm_mode || return 0
  swarm_read_tasks "$API_CONTAINER"
  API_NONE=""
  if ((${#SWARM_TASKS[@]} == 0)); then
    API_NONE="no running task of service $API_CONTAINER (${SWARM_WANTED} wanted; states: ${SWARM_STATES:-no task})"
    return 1
  fi
  api_use_task "${SWARM_TASKS[0]}"
}

# service_tasks NAME: "TASK STATE" of each task swarm wants running for service NAME, sorted.
service_tasks() {
  swarm_task_lines "$1" | awk '{ print $1, $3 }' | LC_ALL=C sort
}

failed=()
summary() { # CHECK OK|FAIL DETAIL
  printf 'verify: %-10s %-4s %s\n' "$1" "$2" "$3"
  [[ "$2" == ok ]] || failed+=("$1: $3")
}

# Restart counts before the checks, to catch crash loops that look "running" at one instant.
# On a swarm a task whose container ends is replaced by a new task: each service's tasks.
declare -A restarts_before=() tasks_before=()
for name in "${expected[@]}"; do
  if swarm_mode; then
    tasks_before[$name]=$(service_tasks "$name")
    continue
  fi
  read -r _ _ count <<<"$(container_state "$name")"
  restarts_before[$name]=${count:-}
done

# 1. Health. --------------------------------------------------------------------------------------
started=$SECONDS
status=""
while :; do
  if api_pick; then
    status=$(on_node "$API_HOST" api_http_status "$API_TARGET" "$HEALTH_URL")
  else
    status=$API_NONE
  fi
  [[ "$status" == 200 ]] && break
  if ((SECONDS - started >= HEALTH_TIMEOUT_SECONDS)); then
    break
  fi
  log "health: $HEALTH_URL answered '${status:-nothing}'; retrying"
  sleep 3
done
if [[ "$status" == 200 ]]; then
  summary health ok "$HEALTH_URL answered 200 after $((SECONDS - started))s$API_SUFFIX"
else
  summary health FAIL "$HEALTH_URL answered '${status:-nothing}' for ${HEALTH_TIMEOUT_SECONDS}s (HEALTH_TIMEOUT_SECONDS)"
fi

# 2. No unapplied migrations. -----------------------------------------------------------------------
# `showmigrations --plan` marks each migration [X] or [ ]; unlike `migrate --check` (Django 3.1+)
# it works on every Django version Utilitarian may use.
rc=0
if api_pick; then
  out=$(api_docker exec "$API_TARGET" "${MANAGE_CMD[@]}" showmigrations --plan </dev/null 2>&1) || rc=$?
else
  out=$API_NONE rc=1
fi
unapplied=$(printf '%s\n' "$out" | grep -c '^\[ \]' || true)
applied=$(printf '%s\n' "$out" | grep -c '^\[X\]' || true)
if [[ -n "${API_NONE:-}" ]]; then
  summary migrations FAIL "$API_NONE"
elif ((rc != 0)); then
  printf '%s\n' "$out" >&2
  summary migrations FAIL "$MANAGE showmigrations --plan exited $rc"
elif ((unapplied > 0)); then
  printf '%s\n' "$out" | grep '^\[ \]' >&2
  summary migrations FAIL "$unapplied unapplied migration(s), listed above; run the migrate step"
else
  summary migrations ok "all $applied migrations applied$API_SUFFIX"
fi

# 3. Containers. --------------------------------------------------------------------------------------
check_container() { # NAME
  local name=$1 status restarting count
  read -r status restarting count <<<"$(container_state "$name")"
  if [[ -z "${status:-}" ]]; then
    summary container FAIL "$name does not exist"
  elif [[ "$status" != running || "$restarting" != false ]]; then
    summary container FAIL "$name is $status (restarting: $restarting, restarts: $count); see: docker logs $name"
  elif [[ -n "${restarts_before[$name]}" && "${restarts_before[$name]}" != "$count" ]]; then
    summary container FAIL "$name restarted during verification (restarts: ${restarts_before[$name]} -> $count); see: docker logs $name"
  else
    summary container ok "$name is running (restarts: $count)"
  fi
}

# On a swarm, services: each has its number of tasks running (global: every task swarm wants, one
# per eligible node), the same tasks as before the checks: a task whose container ends is replaced
# by a new task, so a crash loop shows as changed task IDs (as a restart count does on one host).
check_service() { # NAME
  local name=$1 want=${replicas[$1]} after running wanted need
  after=$(service_tasks "$name")
  running=$(awk '$2 == "running"' <<<"$after" | grep -c . || true)
  wanted=$(grep -c . <<<"$after" || true)
  need=$want
  [[ "$want" == global ]] && need=$wanted
  if ! docker service inspect "$name" >/dev/null 2>&1; then
    summary service FAIL "$name does not exist"
  elif ((need == 0)); then
    summary service FAIL "$name has no task to run ($name=$want in EXPECTED_SERVICES; global: no node is eligible for it); see: docker service ps $name"
  elif ((running != need)); then
    summary service FAIL "$name has $running of $need task(s) running ($name=$want in EXPECTED_SERVICES; states: $(awk '{ print $2 }' <<<"$after" | paste -sd ' ')); see: docker service ps $name"
  elif [[ "$(awk '{ print $1 }' <<<"${tasks_before[$name]}")" != "$(awk '{ print $1 }' <<<"$after")" ]]; then
    summary service FAIL "$name had task(s) replaced during verification (tasks: $(task_list "${tasks_before[$name]}") -> $(task_list "$after")); see: docker service ps $name"
  else
    summary service ok "$name has $running of $need task(s) running"
  fi
}

# task_list TASKS: the short IDs of service_tasks' lines, for a message.
task_list() {
  awk '{ print substr($1, 1, 12) }' <<<"$1" | paste -sd ' '
}

for name in "${expected[@]}"; do
  if swarm_mode; then check_service "$name"; else check_container "$name"; fi
done

if ((${#failed[@]} > 0)); then
  die "verification failed (${#failed[@]} check(s)); first: ${failed[0]}"
fi
if swarm_mode; then
  printf 'verify: all checks passed (%s service(s))\n' "${#expected[@]}"
else
  printf 'verify: all checks passed (%s containers)\n' "${#expected[@]}"
fi
# The last step of an upgrade closes its window: the report is written beside the backups.
window_step_end "{}"
window_close
