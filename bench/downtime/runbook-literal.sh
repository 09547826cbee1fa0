#!/usr/bin/env bash
# The vendor's upgrade runbook (upgrade-instructions.md) taken literally, step by step, with plain
# docker commands, as an operator with a compose file would run it: the benchmark's other way of
# upgrading (run.ts). Prints `STEP <name> <start ms> <end ms>` after each step.
#
# API             the API container
# DEPENDENTS      containers that depend on the API (processor, poster): stopped first, started
#                 last, the same containers (their version does not change)
# APP_FOLLOWERS   beat and workers: same image as the API, recreated on the new version
# NEW_IMAGE       the API's image at the new version (pulled in step 4)
# RUN_CONFIG      directory with <name>.args/.env/.cmd for the API and APP_FOLLOWERS (runconfig.ts)
# API_HEALTH_URL  the API's health endpoint on this host
# BACKUP_FILE     where step 1's plain pg_dump goes; PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE
set -euo pipefail
: "${API:?}" "${DEPENDENTS:?}" "${APP_FOLLOWERS:?}" "${NEW_IMAGE:?}" "${RUN_CONFIG:?}" "${API_HEALTH_URL:?}" "${BACKUP_FILE:?}"
read -r -a dependents <<<"$DEPENDENTS"
read -r -a app_followers <<<"$APP_FOLLOWERS"

now_ms() { date +%s%3N; }
step() { # NAME COMMAND...: runs one runbook step and reports its span
  local name=$1 started
  shift
  started=$(now_ms)
  "$@"
  echo "STEP $name $started $(now_ms)"
}

# What `docker compose up -d <service>` does when the service's image changed: remove the old
# container, run the new one with the same settings.
recreate() { # NAME IMAGE
  local name=$1 image=$2 args cmd
  mapfile -t args <"$RUN_CONFIG/$name.args"
  mapfile -t cmd <"$RUN_CONFIG/$name.cmd"
  docker rm "$name" >/dev/null
  docker run -d --env-file "$RUN_CONFIG/$name.env" "${args[@]}" "$image" "${cmd[@]}" >/dev/null
}

# 1. Backup: pg_dump, as the runbook says (the plain dump it implies), while everything runs.
backup() { pg_dump -f "$BACKUP_FILE"; }
# 2. Close down services that depend on the API.
stop_dependents() { docker stop "${dependents[@]}" >/dev/null; }
# 3. Close down the API, beat and all workers.
stop_api() { docker stop "$API" "${app_followers[@]}" >/dev/null; }
# 4. Pull the new image version.
pull() { docker pull "$NEW_IMAGE"; }
# 5. Upgrade the run config: the API, beat and workers name NEW_IMAGE (recreate's argument);
#    nothing runs.
run_config() { :; }
# 6. Start only the API.
start_api() { recreate "$API" "$NEW_IMAGE"; }
# 7. Run migrations.
migrate() { docker exec "$API" python manage.py migrate --noinput; }
# 8. Compress static assets (collectstatic first: compress reads the collected files).
static() {
  docker exec "$API" python manage.py collectstatic --no-input >/dev/null
  docker exec "$API" python manage.py compress
}
# 9. Start up all remaining services.
start_rest() {
  local name
  for name in "${app_followers[@]}"; do recreate "$name" "$NEW_IMAGE"; done
  docker start "${dependents[@]}" >/dev/null
}
# 10. Verify: healthy, nothing left to migrate, everything running.
verify() {
  local deadline=$((SECONDS + 120)) name
  until curl -fsS -o /dev/null --max-time 2 "$API_HEALTH_URL"; do
    ((SECONDS < deadline)) || { echo "the API did not become healthy" >&2; return 1; }
    sleep 0.2
  done
  if docker exec "$API" python manage.py showmigrations --plan | grep -F '[ ]'; then
    echo "unapplied migrations remain" >&2
    return 1
  fi
  for name in "$API" "${app_followers[@]}" "${dependents[@]}"; do
    [[ "$(docker inspect -f '{{.State.Running}}' "$name")" == true ]] || { echo "$name is not running" >&2; return 1; }
  done
}

step backup backup
step stop_dependents stop_dependents
step stop_api stop_api
step pull pull
step run_config run_config
step start_api start_api
step migrate migrate
step static static
step start_rest start_rest
step verify verify
