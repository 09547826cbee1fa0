#!/usr/bin/env bash
# Verify a deployment (see docs/step-scripts.md): the API's health URL answers 200 (checked
# from inside the API container), no migration is unapplied, every expected container is
# running, not restarting, and did not restart during the checks.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=verify
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
window_begin verify

require_vars API_CONTAINER "the API container's name; set by the deployment" \
  EXPECTED_CONTAINERS "space-separated names of the containers that must run; set by the deployment"
HEALTH_TIMEOUT_SECONDS="${HEALTH_TIMEOUT_SECONDS:-120}"
require_int HEALTH_TIMEOUT_SECONDS 1
docker_setup_env
split_manage
read -r -a expected <<<"$EXPECTED_CONTAINERS"

failed=()
summary() { # CHECK OK|FAIL DETAIL
  printf 'verify: %-10s %-4s %s\n' "$1" "$2" "$3"
  [[ "$2" == ok ]] || failed+=("$1: $3")
}

# Restart counts before the checks, to catch crash loops that look "running" at one instant.
declare -A restarts_before=()
for name in "${expected[@]}"; do
  read -r _ _ count <<<"$(container_state "$name")"
  restarts_before[$name]=${count:-}
done

# 1. Health. --------------------------------------------------------------------------------------
started=$SECONDS
status=""
while :; do
  status=$(api_http_status "$API_CONTAINER" "$HEALTH_URL")
  [[ "$status" == 200 ]] && break
  if ((SECONDS - started >= HEALTH_TIMEOUT_SECONDS)); then
    break
  fi
  log "health: $HEALTH_URL answered '${status:-nothing}'; retrying"
  sleep 3
done
if [[ "$status" == 200 ]]; then
  summary health ok "$HEALTH_URL answered 200 after $((SECONDS - started))s"
else
  summary health FAIL "$HEALTH_URL answered '${status:-nothing}' for ${HEALTH_TIMEOUT_SECONDS}s (HEALTH_TIMEOUT_SECONDS)"
fi

# 2. No unapplied migrations. -----------------------------------------------------------------------
# `showmigrations --plan` marks each migration [X] or [ ]; unlike `migrate --check` (Django 3.1+)
# it works on every Django version Utilitarian may use.
rc=0
out=$(docker exec "$API_CONTAINER" "${MANAGE_CMD[@]}" showmigrations --plan </dev/null 2>&1) || rc=$?
unapplied=$(printf '%s\n' "$out" | grep -c '^\[ \]' || true)
applied=$(printf '%s\n' "$out" | grep -c '^\[X\]' || true)
if ((rc != 0)); then
  printf '%s\n' "$out" >&2
  summary migrations FAIL "$MANAGE showmigrations --plan exited $rc"
elif ((unapplied > 0)); then
  printf '%s\n' "$out" | grep '^\[ \]' >&2
  summary migrations FAIL "$unapplied unapplied migration(s), listed above; run the migrate step"
else
  summary migrations ok "all $applied migrations applied"
fi

# 3. Containers. --------------------------------------------------------------------------------------
for name in "${expected[@]}"; do
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
done

if ((${#failed[@]} > 0)); then
  die "verification failed (${#failed[@]} check(s)); first: ${failed[0]}"
fi
printf 'verify: all checks passed (%s containers)\n' "${#expected[@]}"
# The last step of an upgrade closes its window: the report is written beside the backups.
window_step_end "{}"
window_close
