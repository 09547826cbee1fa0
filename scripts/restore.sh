#!/usr/bin/env bash
# Restore a verified backup into PGDATABASE (rollback). See docs/step-scripts.md.
#
# Order: preflight (variables, checksum, pg_restore --list, database answers, owner role, room
# on the server) -> parallel restore (RESTORE_JOBS) into "<PGDATABASE>_restoring" owned by
# RESTORE_DB_OWNER -> compare row counts with the manifest -> stop the application (STOP_CONTAINERS,
# or on a swarm STOP_SERVICES, scaled to 0) -> swap: PGDATABASE becomes
# "<PGDATABASE>_before_restore_<ts>" (kept) and "<PGDATABASE>_restoring" becomes PGDATABASE.
# Before the swap, a failure leaves PGDATABASE untouched and drops "<PGDATABASE>_restoring".
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=restore
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pg-clients.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/pg-clients.sh"
# A rollback's window opens with the restore.
window_begin restore "$(deployed_version)" "${RESTORE_VERSION:-}"

require_vars "${PG_REQUIRED_VARS[@]}" \
  RESTORE_FILE "utilitarian:restoreFrom, a .dump path or 'latest'" \
  RESTORE_DB_OWNER "utilitarian:database.user, the application's role that must own the database"
if [[ "$RESTORE_FILE" == latest ]]; then
  require_vars BACKUP_DIR "utilitarian:backup.dir, needed when RESTORE_FILE=latest"
fi
# What is stopped before the swap: containers on one Docker host, services on a swarm (scaled to 0).
if [[ -n "${SWARM_NODE_HOSTS:-}" ]]; then
  [[ -z "${STOP_CONTAINERS:-}" ]] || die "$STEP: STOP_CONTAINERS is set, but on a swarm (SWARM_NODE_HOSTS) the application runs as services: name them in STOP_SERVICES"
  if [[ -n "${STOP_SERVICES:-}" ]]; then
    # Only a manager can scale them (anywhere else every one would look absent): checked before
    # anything is restored.
    docker_setup_env
    swarm_setup_env
  fi
elif [[ -n "${STOP_SERVICES:-}" ]]; then
  die "$STEP: STOP_SERVICES names swarm services, but SWARM_NODE_HOSTS is not set: on one Docker host name the containers in STOP_CONTAINERS"
fi
# Parallel pg_restore jobs: the data loads and index builds of different tables overlap (with
# 20 million readings on 2 cores shared with the server, -j2 took 1.00x a plain psql -f restore;
# docs/benchmarks.md).
RESTORE_JOBS="${RESTORE_JOBS:-2}"
require_int RESTORE_JOBS 1
pg_setup_env
pg_clients_direct

DB=$PGDATABASE
OWNER=$RESTORE_DB_OWNER
# Administrative statements run from a maintenance database: nobody may stay connected to
# PGDATABASE while it is renamed.
ADMIN_DB="${PG_MAINTENANCE_DB:-postgres}"
STAMP=$(date -u +%Y%m%d_%H%M%S)
RESTORING="${DB}_restoring"
KEPT="${DB}_before_restore_${STAMP}"
if ((${#KEPT} > 63)); then
  die "database name $DB is too long: $KEPT would exceed PostgreSQL's 63-byte limit"
fi

# 1. Which file. -----------------------------------------------------------------------------
if [[ "$RESTORE_FILE" == latest ]]; then
  [[ -d "$BACKUP_DIR" ]] || die "backup directory $BACKUP_DIR does not exist (BACKUP_DIR)"
  # With RESTORE_VERSION (a rollback to that version), "latest" is the newest backup taken
  # while that version ran: a backup taken later holds the newer version's schema.
  # It is the newest with a checksum file even if it then fails the checks below: an older
  # backup is restored only when named (config/manifest.ts, as the preview resolves it).
  if [[ -n "${RESTORE_VERSION:-}" ]]; then
    [[ "$RESTORE_VERSION" =~ $BACKUP_VERSION_RE ]] || die "RESTORE_VERSION must be a version like 1.2.0"
  fi
  pattern=$(backup_glob "${RESTORE_VERSION:-}")
  mapfile -t found < <(backups_newest_first "$BACKUP_DIR" "$pattern" .sha256)
  latest=${found[0]:-}
  [[ -n "$latest" ]] || die "no verified backup ($pattern with .sha256) in $BACKUP_DIR"
  FILE="$(cd -- "$BACKUP_DIR" && pwd -P)/$latest"
  log "RESTORE_FILE=latest: newest verified backup is $latest"
else
  [[ -f "$RESTORE_FILE" ]] || die "RESTORE_FILE $RESTORE_FILE does not exist or is not a file"
  FILE="$(cd -- "$(dirname -- "$RESTORE_FILE")" && pwd -P)/$(basename -- "$RESTORE_FILE")"
fi

# 2. The file is the one that was verified; 3. the server answers, the owner role exists and
# PGUSER may act as it. ---------------------------------------------------------------------
# The checksum (OpenSSL's sha256, which uses the CPU's SHA instructions where there are some;
# coreutils' sha256sum without it), pg_restore --list and one psql session for every question
# to the server run side by side: each psql or pg_restore start costs about 50 ms through
# Debian's pg_wrapper. Nothing is written on the server before the checksum has matched: the
# session only reads.
[[ -f "$FILE.sha256" ]] || die "refusing to restore $FILE: checksum file $FILE.sha256 is missing"
expected=$(awk 'NR == 1 { print $1 }' "$FILE.sha256")
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || die "refusing to restore $FILE: $FILE.sha256 holds no sha256 checksum"
make_work_dir
kill_checks() {
  local child
  for child in "${sha_child:-}" "${list_child:-}" "${facts_child:-}"; do
    [[ -n "$child" ]] && { kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; }
  done
  return 0
}
on_exit kill_checks
if command -v openssl >/dev/null && [[ "$(printf '' | openssl dgst -sha256 -r 2>/dev/null)" == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 *stdin" ]]; then
  openssl dgst -sha256 -r -- "$FILE" >"$WORK/sha256" 2>&1 &
else
  sha256sum -- "$FILE" >"$WORK/sha256" 2>&1 &
fi
sha_child=$!
pg_restore --list "$FILE" >"$WORK/toc" 2>"$WORK/list.err" &
list_child=$!
MANIFEST="$FILE.json"
manifest_sql=""
if [[ -f "$MANIFEST" ]]; then
  # PostgreSQL parses the JSON (no jq needed); psql reads the file itself, so the manifest
  # never passes through a command line. Its fields are checked (lib.sh), and row_counts read
  # only when it is an object, so a malformed manifest is refused with its reason.
  manifest_sql=$(
    echo "\\set manifest \`cat -- :'manifest_file'\`"
    manifest_check_sql
    cat <<'SQL'
select 'manifest', key, value from json_each_text(case
  when json_typeof((:'manifest'::json)->'row_counts') = 'object' then (:'manifest'::json)->'row_counts' else '{}' end)
 order by key collate "C";
SQL
  )
fi
# One line per answer, "<what><TAB><value>...": the owner role, PGUSER's membership, whether
# DB and a leftover _restoring exist, DB's encoding and locale, the manifest's row counts and,
# when DB exists, the disk a full restore needs at its peak (lib.sh's pg_full_restore_bytes,
# asked in DB itself).
psql -X -q -A -t -F $'\t' -v ON_ERROR_STOP=1 -d "$ADMIN_DB" -v owner="$OWNER" -v db="$DB" \
  -v restoring="$RESTORING" -v manifest_file="$MANIFEST" -v jobs="$((10#$RESTORE_JOBS))" \
  -v file_name="$(basename -- "$FILE")" -v sha256="$expected" \
  >"$WORK/facts" 2>"$WORK/facts.err" <<SQL &
select 'role', count(*) from pg_roles where rolname = :'owner';
select 'member', pg_has_role(current_user, oid, 'MEMBER') from pg_roles where rolname = :'owner';
select 'restoring', count(*) from pg_database where datname = :'restoring';
select 'db', pg_encoding_to_char(encoding), datcollate, datctype from pg_database where datname = :'db';
$manifest_sql
select count(*) = 1 as db_exists from pg_database where datname = :'db' \gset
\if :db_exists
\connect :"db"
select 'copy_bytes', pg_database_size(current_database())
       + coalesce((select sum(b) from (select pg_relation_size(oid) as b from pg_class
                                        where relkind = 'i' order by 1 desc limit :jobs) largest), 0);
\endif
SQL
facts_child=$!
wait "$sha_child" || die "cannot compute the sha256 of $FILE: $(tr '\n' ' ' <"$WORK/sha256")"
actual=$(awk '{ print $1 }' "$WORK/sha256")
if [[ "$actual" != "$expected" ]]; then
  die "refusing to restore $FILE: sha256 mismatch (file $actual, $FILE.sha256 says $expected); the file changed after it was verified"
fi
log "checksum ok: $actual"
if ! wait "$list_child"; then
  cat "$WORK/list.err" >&2
  die "refusing to restore $FILE: pg_restore --list cannot read it"
fi
if ! wait "$facts_child"; then
  err=$(tr '\n' ' ' <"$WORK/facts.err" | sed -e 's/  */ /g' -e 's/ $//')
  # Nothing printed: the session never started (lib.sh's pg_check_reachable words it so).
  [[ -s "$WORK/facts" ]] || die "database unreachable at $PGHOST:$PGPORT (database $ADMIN_DB, user $PGUSER): $err"
  die "cannot read the manifest $MANIFEST or the database's facts: $err"
fi
fact() { # WHAT: the value(s) of the line "WHAT<TAB>..." of the facts, or nothing
  awk -F '\t' -v what="$1" '$1 == what { sub(/^[^\t]*\t/, ""); print }' "$WORK/facts"
}
problems=$(fact manifest_problem | paste -sd ';' | sed 's/;/; /g')
[[ -z "$problems" ]] || die "refusing to restore $FILE: its manifest $MANIFEST is not one backup.sh writes ($problems)"
[[ "$(fact role)" == 1 ]] || die "role $OWNER does not exist (RESTORE_DB_OWNER); create it first"
[[ "$(fact member)" == t ]] ||
  die "$PGUSER cannot act as role $OWNER: run GRANT $(sql_ident "$OWNER") TO $(sql_ident "$PGUSER")"
awk -F '\t' '$1 == "manifest" { print $2 "\t" $3 }' "$WORK/facts" >"$WORK/manifest.counts"
db_facts=$(fact db)
if [[ -n "$db_facts" ]]; then
  db_exists=true
  IFS=$'\t' read -r enc collate ctype <<<"$db_facts"
else
  db_exists=false
  log "database $DB does not exist: the restore will create it"
fi

# The restored copy is about as large as the database now (the backup is recent), plus the
# sort files of the index builds at the peak (lib.sh); with no database, the archive's size is
# the only lower bound there is.
if [[ "$db_exists" == true ]]; then
  copy_bytes=$(fact copy_bytes)
  pg_server_space_check "$copy_bytes" "the restore into $RESTORING" "$FULL_RESTORE_WHAT"
else
  copy_bytes=$(stat -c %s -- "$FILE")
  pg_server_space_check "$copy_bytes" "the restore into $RESTORING" "archive size, as $DB does not exist"
fi

# 4. Restore into <db>_restoring. -------------------------------------------------------------
SWAPPED=false
drop_restoring() {
  if [[ "$SWAPPED" != true ]] && pg_db_exists "$RESTORING" "$ADMIN_DB" 2>/dev/null; then
    if pg_drop_db "$RESTORING" "$ADMIN_DB"; then
      log "dropped $RESTORING; $DB was not changed"
    else
      log "WARNING: could not drop $RESTORING; drop it by hand ($DB was not changed)"
    fi
  fi
}
if [[ "$(fact restoring)" == 1 ]]; then
  log "dropping $RESTORING left by an earlier, interrupted restore"
  pg_drop_db "$RESTORING" "$ADMIN_DB" || die "cannot drop $RESTORING left by an earlier restore"
fi
on_exit drop_restoring

create_sql="create database $(sql_ident "$RESTORING") owner $(sql_ident "$OWNER") template template0"
if [[ "$db_exists" == true ]]; then
  create_sql+=" encoding $(sql_literal "$enc") lc_collate $(sql_literal "$collate") lc_ctype $(sql_literal "$ctype")"
fi
q "$ADMIN_DB" "$create_sql" >/dev/null
log "restoring $(basename -- "$FILE") into $RESTORING (owner $OWNER, pg_restore -j $RESTORE_JOBS)"
started=$SECONDS
# The restore's sessions commit without waiting for the WAL to reach the disk: a crash before
# the swap leaves only <db>_restoring behind, and the swap's own commits (step 7), which wait,
# flush all of the restore's WAL before them.
if ! PGOPTIONS="${PGOPTIONS:-} -c synchronous_commit=off" run_child pg_restore --no-owner --role="$OWNER" --exit-on-error -j "$RESTORE_JOBS" -d "$RESTORING" "$FILE" 2>"$WORK/restore.err"; then
  cat "$WORK/restore.err" >&2
  die "pg_restore into $RESTORING failed (messages above); $DB was not changed"
fi
log "pg_restore finished in $((SECONDS - started))s"
row_counts "$RESTORING" >"$WORK/restored.counts"

# 5. Compare with the manifest's row counts (read with the other facts in step 3). -------------
if [[ -f "$MANIFEST" ]]; then
  if [[ -s "$WORK/manifest.counts" ]]; then
    if ! diff -u --label "manifest" --label "restored $RESTORING" "$WORK/manifest.counts" "$WORK/restored.counts" >"$WORK/counts.diff"; then
      cat "$WORK/counts.diff" >&2
      die "row counts of the restored database differ from the backup's manifest (diff above); $DB was not changed"
    fi
    log "row counts match the manifest ($(wc -l <"$WORK/restored.counts") tables)"
  else
    log "the manifest has no row counts: skipping the comparison"
  fi
else
  log "no manifest $MANIFEST: skipping the row-count comparison"
fi

# 6. Stop the application (rollback): nothing may write to the database from here on. -----------
# STOP_CONTAINERS lists the API, beat, workers and API-dependent edge services; the deployment
# replaces them with the older version right after this step. Others (UDP server) keep running.
for container in ${STOP_CONTAINERS:-}; do
  if docker inspect "$container" >/dev/null 2>&1; then
    log "stopping $container"
    docker stop "$container" >/dev/null || die "could not stop $container"
  fi
done
# On a swarm STOP_SERVICES names the same as services: each is scaled to 0 and the swap waits until
# none of their tasks' containers runs. Should the restore fail before the swap, they are scaled
# back to the replicas they had (the failed version runs on, as before this step); after it, they
# stay at 0 until the deployment replaces them.
SCALED=()
scale_back() {
  if [[ "$SWAPPED" != true ]] && ((${#SCALED[@]} > 0)); then
    if swarm_scale "${SCALED[@]}"; then
      log "scaled back, as $DB was not changed: ${SCALED[*]}"
    else
      log "WARNING: could not scale back ${SCALED[*]}; run: docker service scale ${SCALED[*]}"
    fi
  fi
}
if [[ -n "${STOP_SERVICES:-}" ]]; then
  to_stop=()
  for service in $STOP_SERVICES; do
    replicas=$(service_replicas "$service")
    [[ -n "$replicas" && "$replicas" != 0 ]] || continue
    [[ "$replicas" =~ ^[0-9]+$ ]] || die "service $service is a $replicas service, which cannot be scaled to 0; STOP_SERVICES names replicated services only"
    to_stop+=("$service")
    SCALED+=("$service=$replicas")
  done
  on_exit scale_back
  if ((${#to_stop[@]} > 0)); then
    log "stopping (scaling to 0): ${to_stop[*]}"
    started=$SECONDS
    swarm_scale_down "${to_stop[@]}"
    log "stopped in $((SECONDS - started))s: ${to_stop[*]}"
  fi
fi

# 7. Swap. ----------------------------------------------------------------------------------------
terminate() { # DB: end every other session on DB
  q "$ADMIN_DB" "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = $(sql_literal "$1") and pid <> pg_backend_pid()"
}
if [[ "$db_exists" == true ]]; then
  # Nobody (not even a superuser) can connect while it is being renamed; every exit path
  # re-allows connections on whichever name the original database then has (REOPEN_DB).
  REOPEN_DB=$DB
  reopen() { q "$ADMIN_DB" "alter database $(sql_ident "$REOPEN_DB") allow_connections true" >/dev/null 2>&1 || true; }
  on_exit reopen
  q "$ADMIN_DB" "alter database $(sql_ident "$DB") allow_connections false" >/dev/null
  renamed=false
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    n=$(terminate "$DB")
    ((n == 0)) || log "terminated $n session(s) on $DB"
    if q "$ADMIN_DB" "alter database $(sql_ident "$DB") rename to $(sql_ident "$KEPT")" >/dev/null 2>"$WORK/rename.err"; then
      renamed=true
      break
    fi
    log "rename attempt $attempt failed: $(tr '\n' ' ' <"$WORK/rename.err")"
    sleep 1
  done
  [[ "$renamed" == true ]] || die "cannot rename $DB (sessions keep reconnecting?); $DB was not changed"
  REOPEN_DB=$KEPT
  # If the second rename fails, the original is renamed back.
  if ! q "$ADMIN_DB" "alter database $(sql_ident "$RESTORING") rename to $(sql_ident "$DB")" >/dev/null 2>"$WORK/rename.err"; then
    cat "$WORK/rename.err" >&2
    if q "$ADMIN_DB" "alter database $(sql_ident "$KEPT") rename to $(sql_ident "$DB")" >/dev/null; then
      REOPEN_DB=$DB
      die "cannot rename $RESTORING to $DB; the original $DB was put back"
    fi
    die "cannot rename $RESTORING to $DB and cannot put the original back: it is $KEPT"
  fi
  SWAPPED=true
  log "$DB is now the restored database; the previous one is kept (not dropped) as $KEPT"
else
  q "$ADMIN_DB" "alter database $(sql_ident "$RESTORING") rename to $(sql_ident "$DB")" >/dev/null
  SWAPPED=true
  KEPT=""
  log "$DB is now the restored database"
fi

# Summary on stdout. -------------------------------------------------------------------------------
tables=$(wc -l <"$WORK/restored.counts")
rows=$(awk -F '\t' '{ s += $2 } END { print s + 0 }' "$WORK/restored.counts")
printf 'restored %s into %s (owner %s): %s tables, %s rows\n' "$(basename -- "$FILE")" "$DB" "$OWNER" "$tables" "$rows"
awk -F '\t' '{ printf "  %-50s %s\n", $1, $2 }' "$WORK/restored.counts"
if [[ -n "$KEPT" ]]; then
  printf 'previous database kept as %s (not dropped; drop it when no longer needed)\n' "$KEPT"
fi
window_step_end "{\"file\":$(json_string "$FILE")}"
printf 'RESTORED_FILE=%s\n' "$FILE"
printf 'KEPT_DATABASE=%s\n' "$KEPT"
