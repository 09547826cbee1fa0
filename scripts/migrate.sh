#!/usr/bin/env bash
# Run Django migrations inside the API container (see docs/step-scripts.md).
# Waits until the container runs, then `$MANAGE migrate --noinput`. On failure the whole
# migration log and `showmigrations` go to stderr.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=migrate
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

prepare_api_step

log "running: $MANAGE migrate --noinput (in $API_CONTAINER)"
started=$SECONDS
if ! run_logged "$WORK/migrate.log" docker exec "$API_CONTAINER" "${MANAGE_CMD[@]}" migrate --noinput; then
  log "---- migration log ----"
  cat "$WORK/migrate.log" >&2
  log "---- $MANAGE showmigrations ----"
  docker exec "$API_CONTAINER" "${MANAGE_CMD[@]}" showmigrations </dev/null >&2 2>&1 || log "(showmigrations failed too)"
  die "migrate failed; the log is above"
fi
cat "$WORK/migrate.log"
applied=$(grep -c '^  Applying .* OK' "$WORK/migrate.log" || true)
printf 'migrate: ok, %s migration(s) applied in %ss\n' "$applied" "$((SECONDS - started))"
