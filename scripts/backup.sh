#!/usr/bin/env bash
# Verified pg_dump backup of the Utilitarian database (see docs/step-scripts.md).
#
# Order: preflight (variables, database answers, directory writable, free space, lock) ->
# row counts and pg_dump from ONE exported snapshot -> verify the archive (exit status,
# size, pg_restore --list, table data) -> optional test restore into a scratch database with
# exact per-table row-count comparison -> .sha256 + .json manifest -> atomic rename of the
# .partial file -> retention. Last stdout line: BACKUP_FILE=<absolute path>.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=backup
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

umask 077

# The version running now, when the deployment does not say: the API container's label
# (written by the deployment on every container), or "none" when no API runs yet.
if [[ -z "${BACKUP_FROM_VERSION:-}" && -n "${API_CONTAINER:-}" ]]; then
  BACKUP_FROM_VERSION=$(docker inspect -f '{{index .Config.Labels "io.utilitarian.version"}}' "$API_CONTAINER" 2>/dev/null || true)
  BACKUP_FROM_VERSION=${BACKUP_FROM_VERSION:-none}
  log "version running now (label of $API_CONTAINER): $BACKUP_FROM_VERSION"
fi
require_vars "${PG_REQUIRED_VARS[@]}" \
  BACKUP_DIR "utilitarian:backup.dir, where backups are written" \
  BACKUP_FROM_VERSION "the currently deployed version, or 'none' on first install (or API_CONTAINER to read it from)" \
  BACKUP_TO_VERSION "utilitarian:version, the version being deployed"
BACKUP_KEEP="${BACKUP_KEEP:-5}"
BACKUP_TEST_RESTORE="${BACKUP_TEST_RESTORE:-true}"
require_int BACKUP_KEEP 1
require_bool BACKUP_TEST_RESTORE
if [[ -n "${BACKUP_MIN_FREE_MB:-}" ]]; then
  require_int BACKUP_MIN_FREE_MB 0
fi
for v in BACKUP_FROM_VERSION BACKUP_TO_VERSION; do
  [[ "${!v}" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
    die "$STEP: $v must be a version like 1.2.0 (letters, digits, . _ + -); got '${!v}'"
done
pg_setup_env

DB=$PGDATABASE

# 1. The database answers. ----------------------------------------------------------------
pg_check_reachable "$DB"
server_version=$(q "$DB" "show server_version")
log "database $DB at $PGHOST:$PGPORT answers (PostgreSQL $server_version)"

# 2. The directory exists (or can be created) and is writable. -----------------------------
if [[ ! -d "$BACKUP_DIR" ]]; then
  if ! err=$(mkdir -p -- "$BACKUP_DIR" 2>&1); then
    die "backup directory $BACKUP_DIR does not exist and cannot be created (BACKUP_DIR): ${err##*: }"
  fi
  log "created backup directory $BACKUP_DIR"
fi
DIR=$(cd -- "$BACKUP_DIR" && pwd -P)
if ! probe=$(mktemp -p "$DIR" .write-test.XXXXXX 2>/dev/null) || ! printf 'x' >"$probe" 2>/dev/null; then
  [[ -n "${probe:-}" ]] && rm -f -- "$probe"
  die "backup directory $DIR is not writable (BACKUP_DIR)"
fi
rm -f -- "$probe"

# One backup at a time per directory; the lock also makes cleaning stale files safe.
exec 9>"$DIR/.backup.lock"
flock -n 9 || die "another backup is running in $DIR (lock $DIR/.backup.lock is held)"

# Leftovers of a killed earlier run: .partial dumps and sidecars whose dump never appeared.
shopt -s nullglob
for f in "$DIR"/.utilitarian-*.dump.partial "$DIR"/.utilitarian-*.tmp; do
  log "removing stale partial file $(basename -- "$f") (left by an interrupted run)"
  rm -f -- "$f"
done
for f in "$DIR"/utilitarian-*.dump.sha256 "$DIR"/utilitarian-*.dump.json; do
  if [[ ! -e "${f%.*}" ]]; then
    log "removing orphaned $(basename -- "$f") (its dump was never completed)"
    rm -f -- "$f"
  fi
done
shopt -u nullglob

# 3. Enough free space, here for the dump and on the server for the test restore. -----------
db_bytes=$(q "$DB" "select pg_database_size(current_database())")
free_mb=$(df -Pk -- "$DIR" | awk 'NR == 2 { print int($4 / 1024) }')
need_free_space "$free_mb" "$db_bytes" BACKUP_MIN_FREE_MB "in $DIR"
if [[ "$BACKUP_TEST_RESTORE" == true ]]; then
  pg_server_space_check "$db_bytes" "the test restore"
fi

# Names. ------------------------------------------------------------------------------------
# One backup per second per directory, so names sort by creation whatever the versions.
while :; do
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  compgen -G "$DIR/utilitarian-${stamp}-*" >/dev/null || break
  sleep 1
done
NAME="utilitarian-${stamp}-${BACKUP_FROM_VERSION}-to-${BACKUP_TO_VERSION}.dump"
created_at="${stamp:0:4}-${stamp:4:2}-${stamp:6:2}T${stamp:9:2}:${stamp:11:2}:${stamp:13:2}Z"
FINAL="$DIR/$NAME"
PARTIAL="$DIR/.$NAME.partial"
SHA_TMP="$DIR/.$NAME.sha256.tmp"
JSON_TMP="$DIR/.$NAME.json.tmp"
WORK=$(mktemp -d)
SCRATCH=""
total_started=$(now_ms)
SNAP_CHILD=""

cleanup() {
  if [[ -n "$SNAP_CHILD" ]]; then
    kill "$SNAP_CHILD" 2>/dev/null || true
    wait "$SNAP_CHILD" 2>/dev/null || true
  fi
  if [[ -n "$SCRATCH" ]]; then
    if pg_drop_db "$SCRATCH" "$DB"; then
      log "dropped scratch database $SCRATCH"
    else
      log "WARNING: could not drop scratch database $SCRATCH; drop it by hand"
    fi
  fi
  # Never leave a partial file that could be mistaken for a backup.
  if [[ ! -e "$FINAL" ]]; then
    rm -f -- "$PARTIAL" "$SHA_TMP" "$JSON_TMP"
  fi
  rm -rf -- "$WORK"
}
on_exit cleanup

# 4. Row counts and dump from one snapshot. ------------------------------------------------
# A read-only repeatable-read session exports its snapshot; pg_dump uses the same snapshot, so
# the counts match the dump exactly even if the application writes meanwhile.
coproc SNAP { exec psql -X -q -A -t -F $'\t' -v ON_ERROR_STOP=1 -d "$DB" 2>"$WORK/snapshot.err"; }
# bash unsets SNAP/SNAP_PID when the coprocess ends: keep copies.
SNAP_CHILD=$SNAP_PID
snap_in=${SNAP[1]}
snap_out=${SNAP[0]}
snap_query() { # SQL OUTFILE: run SQL in the snapshot session, result lines into OUTFILE
  local line
  : >"$2"
  printf '%s\n' "$1" "select '--end-of-result--';" >&"$snap_in" ||
    die "snapshot session failed: $(tr '\n' ' ' <"$WORK/snapshot.err")"
  while :; do
    IFS= read -r line <&"$snap_out" ||
      die "snapshot session failed: $(tr '\n' ' ' <"$WORK/snapshot.err")"
    [[ "$line" == "--end-of-result--" ]] && return 0
    printf '%s\n' "$line" >>"$2"
  done
}
snap_query "begin isolation level repeatable read, read only;" /dev/null
snap_query "select pg_export_snapshot();" "$WORK/snapshot"
snapshot=$(<"$WORK/snapshot")
snap_query "$ROW_COUNT_SQL;" "$WORK/source.counts"
tables=$(wc -l <"$WORK/source.counts")
rows=$(awk -F '\t' '{ s += $2 } END { print s + 0 }' "$WORK/source.counts")
log "source: $tables tables, $rows rows (snapshot $snapshot)"

log "pg_dump -Fc $DB -> $(basename -- "$PARTIAL")"
dump_started=$(now_ms)
if ! run_child pg_dump -Fc --snapshot="$snapshot" -d "$DB" -f "$PARTIAL" 2>"$WORK/pg_dump.err"; then
  cat "$WORK/pg_dump.err" >&2
  die "pg_dump failed (its messages are above); no backup was written"
fi
dump_seconds=$(seconds_since "$dump_started")
snap_query "commit;" /dev/null
printf '\\q\n' >&"$snap_in" || true
wait "$SNAP_CHILD" 2>/dev/null || true
SNAP_CHILD=""

# 5. Verify the archive. -------------------------------------------------------------------
bytes=$(stat -c %s -- "$PARTIAL")
((bytes > 0)) || die "pg_dump wrote an empty file; no backup was written"
if ! pg_restore --list "$PARTIAL" >"$WORK/toc" 2>"$WORK/list.err"; then
  cat "$WORK/list.err" >&2
  die "pg_restore --list cannot read the dump; no backup was written"
fi
data_entries=$(grep -c ' TABLE DATA ' "$WORK/toc" || true)
if ((tables > 0 && data_entries == 0)); then
  die "the dump lists no TABLE DATA although the database has $tables tables; no backup was written"
fi
log "archive ok: $bytes bytes, $data_entries table data entries (dumped in ${dump_seconds}s)"

# 6. Test restore into a scratch database. -------------------------------------------------
restore_seconds=""
if [[ "$BACKUP_TEST_RESTORE" == true ]]; then
  SCRATCH="utilitarian_backup_verify_$(date -u +%s)_$$"
  IFS=$'\t' read -r enc collate ctype < <(q "$DB" "select pg_encoding_to_char(encoding), datcollate, datctype from pg_database where datname = current_database()")
  SCRATCH_SQL="create database $(sql_ident "$SCRATCH") template template0 encoding $(sql_literal "$enc") lc_collate $(sql_literal "$collate") lc_ctype $(sql_literal "$ctype")"
  q "$DB" "$SCRATCH_SQL" >/dev/null
  log "test restore into scratch database $SCRATCH"
  restore_started=$(now_ms)
  if ! run_child pg_restore --no-owner --exit-on-error -d "$SCRATCH" "$PARTIAL" 2>"$WORK/restore.err"; then
    cat "$WORK/restore.err" >&2
    die "test restore of the dump failed (messages above); no backup was written"
  fi
  row_counts "$SCRATCH" >"$WORK/restored.counts"
  if ! diff -u --label "source $DB" --label "restored $SCRATCH" "$WORK/source.counts" "$WORK/restored.counts" >"$WORK/counts.diff"; then
    cat "$WORK/counts.diff" >&2
    die "test restore row counts differ from the source (diff above); no backup was written"
  fi
  restore_seconds=$(seconds_since "$restore_started")
  log "test restore ok: row counts of all $tables tables match (${restore_seconds}s)"
  if pg_drop_db "$SCRATCH" "$DB"; then
    log "dropped scratch database $SCRATCH"
    SCRATCH=""
  fi
fi

# 7. Checksum and manifest, then the atomic rename. ----------------------------------------
sha=$(sha256sum -- "$PARTIAL" | awk '{ print $1 }')
printf '%s  %s\n' "$sha" "$NAME" >"$SHA_TMP"
{
  printf '{\n'
  printf '  "format_version": 1,\n'
  printf '  "file": %s,\n' "$(json_string "$NAME")"
  printf '  "bytes": %s,\n' "$bytes"
  printf '  "sha256": "%s",\n' "$sha"
  printf '  "from": %s,\n' "$(json_string "$BACKUP_FROM_VERSION")"
  printf '  "to": %s,\n' "$(json_string "$BACKUP_TO_VERSION")"
  printf '  "created_at": "%s",\n' "$created_at"
  printf '  "database": %s,\n' "$(json_string "$DB")"
  printf '  "server_version": %s,\n' "$(json_string "$server_version")"
  printf '  "pg_dump_version": %s,\n' "$(json_string "$(pg_dump --version)")"
  printf '  "test_restore": %s,\n' "$BACKUP_TEST_RESTORE"
  printf '  "tables": %s,\n' "$tables"
  printf '  "rows": %s,\n' "$rows"
  printf '  "row_counts": {'
  sep=""
  while IFS=$'\t' read -r table count; do
    printf '%s\n    %s: %s' "$sep" "$(json_string "$table")" "$count"
    sep=","
  done <"$WORK/source.counts"
  if [[ -n "$sep" ]]; then printf '\n  '; fi
  printf '}\n}\n'
} >"$JSON_TMP"
sync -- "$PARTIAL" "$SHA_TMP" "$JSON_TMP" 2>/dev/null || sync
mv -f -- "$SHA_TMP" "$FINAL.sha256"
mv -f -- "$JSON_TMP" "$FINAL.json"
mv -f -- "$PARTIAL" "$FINAL"
sync -- "$DIR" 2>/dev/null || true
log "backup complete in $(seconds_since "$total_started")s: $FINAL"

# 8. Retention: keep the newest BACKUP_KEEP verified dumps (names sort by time). ------------
mapfile -t verified < <(
  find "$DIR" -maxdepth 1 -type f -name 'utilitarian-*.dump' -printf '%f\n' | LC_ALL=C sort -r |
    while IFS= read -r f; do
      [[ -e "$DIR/$f.sha256" && -e "$DIR/$f.json" ]] && printf '%s\n' "$f"
    done
)
for ((i = BACKUP_KEEP; i < ${#verified[@]}; i++)); do
  old=${verified[i]}
  log "retention (keep $BACKUP_KEEP): deleting $old"
  rm -f -- "$DIR/$old" "$DIR/$old.sha256" "$DIR/$old.json"
done

# Summary on stdout. -------------------------------------------------------------------------
size=$(numfmt --to=iec-i --suffix=B "$bytes" 2>/dev/null || printf '%s bytes' "$bytes")
printf 'backup %s: %s, %s tables, %s rows, from %s to %s\n' \
  "$NAME" "$size" "$tables" "$rows" "$BACKUP_FROM_VERSION" "$BACKUP_TO_VERSION"
if [[ "$BACKUP_TEST_RESTORE" == true ]]; then
  printf 'verified: pg_restore --list, test restore with exact row counts (dump %ss, restore %ss)\n' "$dump_seconds" "$restore_seconds"
else
  printf 'verified: pg_restore --list (test restore disabled; dump %ss)\n' "$dump_seconds"
fi
printf 'kept: %s of at most %s backups in %s\n' "$((${#verified[@]} < BACKUP_KEEP ? ${#verified[@]} : BACKUP_KEEP))" "$BACKUP_KEEP" "$DIR"
printf 'BACKUP_FILE=%s\n' "$FINAL"
