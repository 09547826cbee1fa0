#!/usr/bin/env bash
# Run Django migrations inside the API container (see docs/step-scripts.md).
# Waits until the container runs, then `$MANAGE migrate --noinput`. On failure the whole
# migration log and `showmigrations` go to stderr. On a swarm (SWARM_NODE_HOSTS) it runs once,
# in the container of one running task of the API service, on that task's node.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=migrate
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
window_begin migrate

prepare_api_step one

# Each line of the migration's output goes to stderr as it comes, so `pulumi up` shows a long
# migration's progress live (the command provider streams it), and into the log for stdout.
stream_migrate() {
  api_docker exec "$API_TARGET" "${MANAGE_CMD[@]}" migrate --noinput </dev/null 2>&1 | tee "$WORK/migrate.log" | sed -u 's/^/  | /' >&2
}

log "running: $MANAGE migrate --noinput (in $API_TARGET$API_ON); its output follows as it comes"
started=$SECONDS
if ! run_child stream_migrate; then
  # `docker exec` also ends when the Docker daemon goes away (a restart, an upgrade of the
  # package), while the migration runs on inside the container (with live-restore the container
  # keeps running): starting another one then would race it. Say so instead of "migrate failed".
  if ! api_docker version >/dev/null 2>&1; then
    die "lost the Docker daemon while migrate ran; the migration may still run inside $API_TARGET$API_ON. Once the daemon answers, wait until \`docker top $API_TARGET\`$API_ON lists no manage.py migrate, then run pulumi up again"
  fi
  processes=$(api_docker top "$API_TARGET" -eo pid,args 2>/dev/null || true)
  if [[ "$processes" == *"manage.py migrate"* ]]; then
    die "docker exec ended, but the migration still runs inside $API_TARGET$API_ON (was the Docker daemon restarted?). Wait until \`docker top $API_TARGET\`$API_ON lists no manage.py migrate, then run pulumi up again"
  fi
  log "---- migration log ----"
  cat "$WORK/migrate.log" >&2
  log "---- $MANAGE showmigrations ----"
  api_docker exec "$API_TARGET" "${MANAGE_CMD[@]}" showmigrations </dev/null >&2 2>&1 || log "(showmigrations failed too)"
  die "migrate failed; the log is above"
fi
cat "$WORK/migrate.log"
applied=$(grep -c '^  Applying .* OK' "$WORK/migrate.log" || true)
migrations=$(sed -n 's/^  Applying \([^ ]*\)\.\.\. *OK.*/\1/p' "$WORK/migrate.log" | while IFS= read -r m; do json_string "$m"; printf ','; done)
window_step_end "{\"applied\":$applied,\"migrations\":[${migrations%,}]}"
printf 'migrate: ok, %s migration(s) applied in %ss%s\n' "$applied" "$((SECONDS - started))" "$API_SUFFIX"
