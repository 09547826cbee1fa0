#!/usr/bin/env bash
# Verified pg_dump backup of the Utilitarian database (see docs/step-scripts.md).
#
# Order: preflight (variables; one psql session: the database answers, its size, stale scratch
# databases; directory writable, free space, lock) -> that session exports a snapshot, pg_dump -Fc
# dumps from it while the session counts every table's rows in it; while the archive is written,
# every table's data is read back out of it and its rows counted, its table of contents listed,
# its sha256 taken, and (default) its schema restored into a scratch database -> verify: exit
# statuses, size, pg_restore --list, table data, the read-back's exact row counts, the file's
# CRC and length against the bytes that were read back, the schema restore; or a full test
# restore with exact row counts after the dump (BACKUP_TEST_RESTORE=true) -> .sha256 + .json
# manifest -> atomic rename of the .partial file -> retention.
# Last stdout line: BACKUP_FILE=<absolute path>.
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=backup
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pg-clients.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/pg-clients.sh"

umask 077

# The version running now, when the deployment does not say: the API container's label
# (written by the deployment on every container), or "none" when no API runs yet.
if [[ -z "${BACKUP_FROM_VERSION:-}" && -n "${API_CONTAINER:-}" ]]; then
  BACKUP_FROM_VERSION=$(deployed_version)
  log "version running now (label of $API_CONTAINER): $BACKUP_FROM_VERSION"
fi
# The maintenance window opens with the backup (writers-stopped.sh opens it when it runs this).
window_begin backup "${BACKUP_FROM_VERSION:-}" "${BACKUP_TO_VERSION:-}"
require_vars "${PG_REQUIRED_VARS[@]}" \
  BACKUP_DIR "utilitarian:backup.dir, where backups are written" \
  BACKUP_FROM_VERSION "the currently deployed version, or 'none' on first install (or API_CONTAINER to read it from)" \
  BACKUP_TO_VERSION "utilitarian:version, the version being deployed"
BACKUP_KEEP="${BACKUP_KEEP:-5}"
# What is restored into a scratch database on the server: "schema" (the DDL only: about 4 MB of
# WAL and 8 MB of disk whatever the data's size), "true" (everything: about 1.1x the database's
# size in disk at the peak and 0.8x in WAL), "false" (nothing). The archive is read back and
# counted on this machine in every case (docs/benchmarks.md).
BACKUP_TEST_RESTORE="${BACKUP_TEST_RESTORE:-schema}"
# zlib level of the archive: 1 costs about what a plain SQL dump costs; 6 (pg_dump's default)
# takes longer for a somewhat smaller file (docs/benchmarks.md). Not 0: zlib's checksums are
# what let the read-back catch a corrupted byte.
BACKUP_COMPRESS_LEVEL="${BACKUP_COMPRESS_LEVEL:-1}"
RESTORE_JOBS="${RESTORE_JOBS:-2}"
# How often the dump logs the archive's size and write rate, in seconds.
BACKUP_PROGRESS_SECONDS="${BACKUP_PROGRESS_SECONDS:-5}"
require_int BACKUP_KEEP 1
require_int BACKUP_PROGRESS_SECONDS 1
case "$BACKUP_TEST_RESTORE" in
true | full) TEST_RESTORE=full ;;
schema) TEST_RESTORE=schema ;;
false | none) TEST_RESTORE=none ;;
*) die "$STEP: BACKUP_TEST_RESTORE must be schema, true (full test restore) or false; got '$BACKUP_TEST_RESTORE'" ;;
esac
require_int BACKUP_COMPRESS_LEVEL 1
((10#$BACKUP_COMPRESS_LEVEL <= 9)) || die "$STEP: BACKUP_COMPRESS_LEVEL must be an integer from 1 to 9; got '$BACKUP_COMPRESS_LEVEL'"
require_int RESTORE_JOBS 1
if [[ -n "${BACKUP_MIN_FREE_MB:-}" ]]; then
  require_int BACKUP_MIN_FREE_MB 0
fi
for v in BACKUP_FROM_VERSION BACKUP_TO_VERSION; do
  [[ "${!v}" =~ $BACKUP_VERSION_RE ]] ||
    die "$STEP: $v must be a version like 1.2.0 (letters, digits, . _ + -); got '${!v}'"
done
pg_setup_env
pg_clients_direct
# The dump pipeline runs as a process group of its own (run_dump_group below).
command -v setsid >/dev/null || die "$STEP: setsid (util-linux) is not on PATH; install util-linux"
# The wait for the dump uses wait -n -p (run_dump_group below).
((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) ||
  die "$STEP: bash 5.1 or later is needed (this is $BASH_VERSION)"

DB=$PGDATABASE
total_started=$(now_ms)
make_work_dir
SNAP_CHILD=""
SCHEMA_CHILD=""
SYNC_CHILD=""
TIMER_CHILD=""
SCRATCH=""
PARTIAL=""
FINAL=""
SHA_TMP=""
JSON_TMP=""

cleanup() {
  local child
  for child in "$TIMER_CHILD" "$SNAP_CHILD" "$SYNC_CHILD"; do
    if [[ -n "$child" ]]; then
      kill "$child" 2>/dev/null || true
      wait "$child" 2>/dev/null || true
    fi
  done
  # The schema-only test restore is not killed, but told to stop and waited for: a CREATE
  # DATABASE under way would otherwise create the scratch database after the drop below.
  if [[ -n "$SCHEMA_CHILD" ]]; then
    : >"$WORK/schema.stop"
    wait "$SCHEMA_CHILD" 2>/dev/null || true
  fi
  if [[ -n "$SCRATCH" ]]; then
    if pg_drop_db "$SCRATCH" "$DB"; then
      log "dropped scratch database $SCRATCH"
    else
      log "WARNING: could not drop scratch database $SCRATCH; drop it by hand"
    fi
  fi
  # Never leave a partial file that could be mistaken for a backup.
  if [[ -n "$PARTIAL" && ! -e "$FINAL" ]]; then
    rm -f -- "$PARTIAL" "$SHA_TMP" "$JSON_TMP"
  fi
}
# Registered after make_work_dir's removal of WORK, so it runs before it (reverse order).
on_exit cleanup

# Every client program here is started through Debian's pg_wrapper (a Perl script) when that is
# what PATH holds, which costs about 50 ms each: what the checks need from the server is asked in
# one session, the one that exports the snapshot, and the rest runs alongside the dump.
# pg_dump's version for the manifest, meanwhile.
pg_dump --version >"$WORK/pg_dump.version" 2>&1 &
VERSION_CHILD=$!

# 1. The database answers. ------------------------------------------------------------------
# One psql session, kept open to the end of the dump: the checks' queries, then (step 4) the
# exported snapshot and the row counts in it.
coproc SNAP { exec "$PSQL" -X -q -A -t -F $'\t' -v ON_ERROR_STOP=1 -d "$DB" 2>"$WORK/snapshot.err"; }
# bash unsets SNAP/SNAP_PID when the coprocess ends: keep copies.
SNAP_CHILD=$SNAP_PID
snap_in=${SNAP[1]}
snap_out=${SNAP[0]}
SNAP_FAILURE="snapshot session failed"
snap_failed() {
  local err
  # The session has ended (or is ending): its messages are complete once it has.
  wait "$SNAP_CHILD" 2>/dev/null || true
  SNAP_CHILD=""
  err=$(tr '\n' ' ' <"$WORK/snapshot.err" | sed -e 's/  */ /g' -e 's/ $//')
  die "$SNAP_FAILURE: $err"
}
snap_send() { # SQL: send SQL to the session, without waiting for its result
  printf '%s\n' "$1" "select '--end-of-result--';" >&"$snap_in" || snap_failed
}
snap_receive() { # OUTFILE: the result lines of the oldest query sent and not yet received
  local line
  : >"$1"
  while :; do
    IFS= read -r line <&"$snap_out" || snap_failed
    [[ "$line" == "--end-of-result--" ]] && return 0
    printf '%s\n' "$line" >>"$1"
  done
}
snap_query() { # SQL OUTFILE: run SQL in the session, its result lines into OUTFILE
  snap_send "$1"
  snap_receive "$2"
}
# As lib.sh's pg_check_reachable words it: a wrong password or a missing database fails here.
SNAP_FAILURE="database unreachable at $PGHOST:$PGPORT (database $DB, user $PGUSER)"
snap_query "show server_version;" "$WORK/server_version"
SNAP_FAILURE="snapshot session failed"
server_version=$(<"$WORK/server_version")
log "database $DB at $PGHOST:$PGPORT answers (PostgreSQL $server_version)"
snap_query "select pg_database_size(current_database()), pg_database_size('template0'), pg_encoding_to_char(encoding), datcollate, datctype from pg_database where datname = current_database();" "$WORK/db.facts"
IFS=$'\t' read -r db_bytes template0_bytes db_encoding db_collate db_ctype <"$WORK/db.facts"
snap_query "$SCRATCH_DBS_SQL;" "$WORK/scratch.stale"

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
# Scratch databases of killed backups on this machine (the provider SIGKILLs a cancelled step),
# from the list the session read above.
drop_stale_scratch_dbs "$DB" <"$WORK/scratch.stale"

# 3. Enough free space, here for the dump and on the server for the test restore. -----------
# The dump is far smaller than the database (about 0.2x), but asking for a whole copy keeps
# room for data that compresses badly.
free_mb=$(df -Pk -- "$DIR" | awk 'NR == 2 { print int($4 / 1024) }')
need_free_space "$free_mb" "$db_bytes" BACKUP_MIN_FREE_MB "in $DIR"
case "$TEST_RESTORE" in
full)
  server_bytes=$(pg_full_restore_bytes "$DB" "$RESTORE_JOBS")
  pg_server_space_check "$server_bytes" "the test restore" "$FULL_RESTORE_WHAT"
  ;;
schema)
  pg_server_space_check "$template0_bytes" "the test restore" "schema only: an empty database"
  ;;
esac

# Names. ------------------------------------------------------------------------------------
# One backup per second per directory, so names sort by creation whatever the versions.
while :; do
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  compgen -G "$DIR/utilitarian-${stamp}-*" >/dev/null || break
  sleep 1
done
NAME=$(backup_name "$stamp" "$BACKUP_FROM_VERSION" "$BACKUP_TO_VERSION")
created_at="${stamp:0:4}-${stamp:4:2}-${stamp:6:2}T${stamp:9:2}:${stamp:11:2}:${stamp:13:2}Z"
FINAL="$DIR/$NAME"
PARTIAL="$DIR/.$NAME.partial"
SHA_TMP="$DIR/.$NAME.sha256.tmp"
JSON_TMP="$DIR/.$NAME.json.tmp"

# create_scratch_sql: the statement that creates an empty scratch database SCRATCH with the
# source's encoding and locale.
create_scratch_sql() {
  printf 'create database %s template template0 encoding %s lc_collate %s lc_ctype %s' \
    "$(sql_ident "$SCRATCH")" "$(sql_literal "$db_encoding")" "$(sql_literal "$db_collate")" "$(sql_literal "$db_ctype")"
}
drop_scratch() {
  if pg_drop_db "$SCRATCH" "$DB"; then
    log "dropped scratch database $SCRATCH"
    SCRATCH=""
  fi
}

# compare_counts FILE LABEL REASON: FILE ("<table><TAB><rows>" lines) must hold exactly the
# source's row counts; otherwise the diff is printed and the backup fails with REASON.
compare_counts() {
  if ! diff -u --label "source $DB" --label "$2" "$WORK/source.counts" "$1" >"$WORK/counts.diff"; then
    cat "$WORK/counts.diff" >&2
    die "$3 (diff above); no backup was written"
  fi
}

# The read-back: pg_restore's SQL output holds each table's data as a COPY block, from a line
# "COPY <schema>.<table> (...) FROM stdin;" to a line "\.". grep keeps only those lines and
# pg_restore's closing comment, numbered (grep -n reads 20 million lines in half the CPU awk
# takes), and awk counts the rows of each block from the line numbers: "<schema>.<table><TAB>
# <rows>" per table, named as pg_dump quotes them, which is how the source counts name them too
# (format('%I.%I')). A data row never equals "\." (COPY escapes backslashes) and rows within a
# block are skipped, so the end of each block is exact. The output must end with pg_restore's
# closing comment and no block open; anything else means the stream stopped early.
COPY_LINES_ERE='^(COPY |\\\.$|-- PostgreSQL database dump complete$)'
# shellcheck disable=SC2016 # awk's own $0, not bash's
COPY_ROWS_AWK='
{ i = index($0, ":"); at = substr($0, 1, i - 1) + 0; line = substr($0, i + 1) }
in_copy { if (line == "\\.") { rows[name] += at - start - 1; in_copy = 0 } next }
line ~ /^COPY / {
  if (!match(line, /^COPY ("([^"]|"")*"|[^ ."]+)\.("([^"]|"")*"|[^ ."]+) /)) { print "cannot parse: " line > "/dev/stderr"; exit 2 }
  name = substr(line, 6, RLENGTH - 6); start = at; in_copy = 1; rows[name] += 0; next
}
line == "-- PostgreSQL database dump complete" { complete = 1 }
END {
  if (in_copy) { print "the data of " name " ends without its end-of-data line" > "/dev/stderr"; exit 3 }
  if (!complete) { print "the output ends before pg_restore said it was complete" > "/dev/stderr"; exit 4 }
  for (t in rows) printf "%s\t%d\n", t, rows[t]
}'

# The sha256 of the archive for the .sha256 file, computed from the stream: OpenSSL's uses the
# CPU's SHA instructions where there are some (about 5x coreutils' sha256sum here).
if command -v openssl >/dev/null && [[ "$(printf '' | openssl dgst -sha256 -r 2>/dev/null)" == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 *stdin" ]]; then
  SHA256_CMD="openssl dgst -sha256 -r"
else
  SHA256_CMD="sha256sum"
fi

# The dump, run as one process group: pg_dump's archive goes through tee into the .partial file
# and, all at once, into
# - the read-back, which decompresses every table's data again (pg_restore --data-only) and
#   counts its rows;
# - pg_restore --list, which reads the archive's table of contents;
# - the archive's sha256;
# - cksum (CRC and length), on tee's stdout.
# Each of them only reads what it needs: tee goes on writing to the others when one ends early
# (--output-error=exit-nopipe). The process substitutions hold tee's stdout open until they end,
# so cksum ends last and every status file is written when the group exits. pg_dump writing into
# a pipe leaves out the archive's data offsets, which pg_restore, sequential or parallel, does
# without (it finds each table's data by reading).
# Arguments: snapshot, zlib level, database; WORK, PARTIAL, COPY_LINES_ERE, COPY_ROWS_AWK,
# SHA256_CMD, PG_DUMP, PG_RESTORE (pg-clients.sh) in the environment.
# shellcheck disable=SC2016 # expanded by the bash that runs it
DUMP_PIPELINE='
read_back() {
  "$PG_RESTORE" --data-only -f - 2>"$WORK/readback.err" |
    LC_ALL=C grep -a -n -E "$COPY_LINES_ERE" |
    LC_ALL=C awk "$COPY_ROWS_AWK" >"$WORK/archive.all" 2>"$WORK/awk.err"
  printf "%s %s %s\n" "${PIPESTATUS[@]}" >"$WORK/readback.status"
}
list_toc() {
  "$PG_RESTORE" --list >"$WORK/toc" 2>"$WORK/list.err"
  echo "$?" >"$WORK/list.status"
}
sha() {
  $SHA256_CMD >"$WORK/stream.sha256" 2>&1
  echo "$?" >"$WORK/sha.status"
}
"$PG_DUMP" -Fc -Z "$2" --snapshot="$1" -d "$3" 2>"$WORK/pg_dump.err" |
  tee --output-error=exit-nopipe -- "$PARTIAL" >(read_back) >(list_toc) >(sha) 2>"$WORK/tee.err" |
  cksum >"$WORK/stream.cksum"
printf "%s %s %s\n" "${PIPESTATUS[@]}" >"$WORK/dump.status"
'

# check_read_back: the read-back's result, then its row counts into $WORK/archive.counts, shaped
# like source.counts. Tables the source counts do not cover (an extension's configuration
# tables) are logged and left out; a source table without data in the archive is listed with
# "no data in the archive", so the diff shows it.
check_read_back() {
  local restore_rc=unknown grep_rc=unknown awk_rc=unknown
  if [[ -s "$WORK/readback.status" ]]; then read -r restore_rc grep_rc awk_rc <"$WORK/readback.status"; fi
  # grep exits 1 when it selects no line: awk then reports the output as incomplete.
  if [[ "$restore_rc" != 0 || ! "$grep_rc" =~ ^[01]$ || "$awk_rc" != 0 ]]; then
    cat "$WORK/readback.err" "$WORK/awk.err" >&2 2>/dev/null || true
    die "the archive's data cannot be read back (pg_restore exit $restore_rc, messages above): the dump is truncated or corrupted; no backup was written"
  fi
  awk -F '\t' -v extra="$WORK/archive.extra" '
    NR == FNR { rows[$1] = $2; next }
    { print $1 "\t" ($1 in rows ? rows[$1] : "no data in the archive"); counted[$1] = 1 }
    END { for (t in rows) if (!(t in counted)) print t > extra }' \
    "$WORK/archive.all" "$WORK/source.counts" >"$WORK/archive.counts"
  if [[ -s "$WORK/archive.extra" ]]; then
    while IFS= read -r table; do
      log "not compared: $table has data in the archive but is not one of the counted tables (an extension's table?)"
    done <"$WORK/archive.extra"
  fi
  compare_counts "$WORK/archive.counts" "archive $(basename -- "$PARTIAL")" "row counts in the archive differ from the source"
}

# The schema-only test restore runs while the dump is written, in the background: the scratch
# database is created at once; as soon as the archive's table of contents (at its start: the
# whole schema) has passed through tee, which writes the file before the pipes, pg_restore
# --schema-only restores it from the .partial file into the scratch database. The scratch
# database is then dropped, unless the script is gone: a SIGKILLed run's scratch database is
# left for the next run to drop, by its name. "$WORK/schema.stop" (cleanup) ends the wait.
schema_test_restore() {
  # Nothing of the scratch database needs to survive a crash: no commit waits for the disk.
  export PGOPTIONS="${PGOPTIONS:-} -c synchronous_commit=off"
  if ! q "$DB" "$(create_scratch_sql)" >/dev/null 2>"$WORK/create.err"; then
    echo failed >"$WORK/scratch.created"
    return 0
  fi
  echo ok >"$WORK/scratch.created"
  # Polled every 10 ms without a process per poll: read -t on a FIFO nobody writes to.
  local poll
  mkfifo "$WORK/schema.poll" && exec {poll}<>"$WORK/schema.poll"
  # Not empty: a status file exists from the moment its writer opens it, before the status is in.
  until [[ -s "$WORK/list.status" || -s "$WORK/dump.status" || -e "$WORK/schema.stop" || ! -d "$WORK" ]]; do
    read -r -t 0.01 -u "$poll" _ || true
  done
  exec {poll}<&-
  [[ "$(cat "$WORK/list.status" 2>/dev/null)" == 0 && ! -e "$WORK/schema.stop" ]] || return 0
  pg_restore --schema-only --no-owner --exit-on-error -d "$SCRATCH" "$PARTIAL" 2>"$WORK/restore.err"
  echo "$?" >"$WORK/schema.status"
  if [[ "$(<"$WORK/schema.status")" == 0 ]] && kill -0 "$$" 2>/dev/null && [[ ! -e "$WORK/schema.stop" ]]; then
    q "$DB" "drop database if exists $(sql_ident "$SCRATCH")" >/dev/null 2>"$WORK/drop.err"
    echo "$?" >"$WORK/drop.status"
  fi
}
if [[ "$TEST_RESTORE" == schema ]]; then
  SCRATCH=$(scratch_db_name)
  (set +e; schema_test_restore) &
  SCHEMA_CHILD=$!
fi

# 4. Dump and row counts from one snapshot. ------------------------------------------------
# The session exports a read-only repeatable-read snapshot; pg_dump uses the same snapshot, and
# the session counts every table's rows in it while pg_dump runs, so the counts match the dump
# exactly even if the application writes meanwhile.
snap_query "begin isolation level repeatable read, read only;" /dev/null
# The counts run beside pg_dump: parallel workers would only take CPU from it.
snap_query "set local max_parallel_workers_per_gather = 0;" /dev/null
snap_query "select pg_export_snapshot();" "$WORK/snapshot"
snapshot=$(<"$WORK/snapshot")

# Progress, every BACKUP_PROGRESS_SECONDS while the dump runs: the archive's size on disk and
# its write rate since the last line and since the start. Sizes and times only: nothing that
# could hold a secret. The database's size says roughly how far there is to go (the archive is
# about 0.2x of it at -Z1, docs/benchmarks.md).
mb_per_second() { # BYTES MILLISECONDS
  awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.1f", (ms > 0 ? b / 1048576 / (ms / 1000) : 0) }'
}
report_dump_progress() {
  local now bytes
  now=$(now_ms)
  bytes=$(stat -c %s -- "$PARTIAL" 2>/dev/null || echo 0)
  log "dump: $(human_bytes "$bytes") written in $(seconds_since "$dump_started") s;" \
    "$(mb_per_second $((bytes - progress_bytes)) $((now - progress_ms))) MB/s now," \
    "$(mb_per_second "$bytes" $((now - dump_started))) MB/s on average" \
    "(database $(human_bytes "$db_bytes"))"
  progress_bytes=$bytes
  progress_ms=$now
}

# run_dump_group CMD...: lib.sh's run_child_group without its fifth-of-a-second polling: CMD
# runs as a process group of its own (a signal stops the whole group), and the script waits for
# whichever comes first, CMD's end or the next progress line (wait -n, bash 5.1). A trapped
# signal ends the wait at once.
run_dump_group() {
  local rc=0 ended next wait_ms
  setsid "$@" &
  LIB_CHILD=$!
  LIB_CHILD_GROUP=true
  next=$(($(now_ms) + BACKUP_PROGRESS_SECONDS * 1000))
  while :; do
    wait_ms=$((next - $(now_ms)))
    ((wait_ms > 0)) || wait_ms=0
    sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))" &
    TIMER_CHILD=$!
    ended=""
    rc=0
    wait -n -p ended "$LIB_CHILD" "$TIMER_CHILD" || rc=$?
    if [[ "$ended" == "$LIB_CHILD" ]]; then
      kill "$TIMER_CHILD" 2>/dev/null || true
      wait "$TIMER_CHILD" 2>/dev/null || true
      TIMER_CHILD=""
      break
    fi
    TIMER_CHILD=""
    report_dump_progress
    next=$((next + BACKUP_PROGRESS_SECONDS * 1000))
  done
  LIB_CHILD=""
  LIB_CHILD_GROUP=false
  return "$rc"
}

# The row counts, in the session, while pg_dump runs (the session holds the snapshot open).
snap_send "$ROW_COUNT_SQL;"
log "pg_dump -Fc -Z$BACKUP_COMPRESS_LEVEL $DB -> $(basename -- "$PARTIAL"), every table's data read back and counted as it is written; progress every ${BACKUP_PROGRESS_SECONDS} s"
dump_started=$(now_ms)
progress_ms=$dump_started
progress_bytes=0
WORK=$WORK PARTIAL=$PARTIAL COPY_LINES_ERE=$COPY_LINES_ERE COPY_ROWS_AWK=$COPY_ROWS_AWK SHA256_CMD=$SHA256_CMD \
  PG_DUMP=$PG_DUMP PG_RESTORE=$PG_RESTORE run_dump_group bash -c "$DUMP_PIPELINE" backup-dump "$snapshot" "$BACKUP_COMPRESS_LEVEL" "$DB" ||
  die "the dump pipeline failed unexpectedly; no backup was written"
dump_rc=unknown tee_rc=unknown cksum_rc=unknown
if [[ -s "$WORK/dump.status" ]]; then read -r dump_rc tee_rc cksum_rc <"$WORK/dump.status"; fi
# A failed write comes first: when tee cannot write (a full disk), pg_dump dies of the broken
# pipe without a message of its own, and the cause is only in tee's.
if [[ "$tee_rc" != 0 || "$cksum_rc" != 0 ]]; then
  cat "$WORK/tee.err" "$WORK/pg_dump.err" >&2
  die "writing the dump to $PARTIAL failed (tee exit $tee_rc, cksum exit $cksum_rc: $(tr '\n' ' ' <"$WORK/tee.err")); no backup was written"
fi
if [[ "$dump_rc" != 0 ]]; then
  cat "$WORK/pg_dump.err" >&2
  die "pg_dump failed (its messages are above); no backup was written"
fi
dump_seconds=$(seconds_since "$dump_started")
bytes=$(stat -c %s -- "$PARTIAL")
log "dump: $(human_bytes "$bytes") written in $dump_seconds s"
# The file goes to disk while the rest is checked.
sync -- "$PARTIAL" 2>/dev/null &
SYNC_CHILD=$!
snap_receive "$WORK/source.counts"
snap_query "commit;" /dev/null
printf '\\q\n' >&"$snap_in" || true
wait "$SNAP_CHILD" 2>/dev/null || true
SNAP_CHILD=""
tables=$(wc -l <"$WORK/source.counts")
rows=$(awk -F '\t' '{ s += $2 } END { print s + 0 }' "$WORK/source.counts")
log "source: $tables tables, $rows rows (snapshot $snapshot)"

# 5. Verify the archive. -------------------------------------------------------------------
verify_started=$(now_ms)
((bytes > 0)) || die "pg_dump wrote an empty file; no backup was written"
if [[ "$(cat "$WORK/list.status" 2>/dev/null)" != 0 ]]; then
  cat "$WORK/list.err" >&2 2>/dev/null || true
  die "pg_restore --list cannot read the dump; no backup was written"
fi
data_entries=$(grep -c ' TABLE DATA ' "$WORK/toc" || true)
if ((tables > 0 && data_entries == 0)); then
  die "the dump lists no TABLE DATA although the database has $tables tables; no backup was written"
fi
log "archive ok: $bytes bytes, $data_entries table data entries"

# 6. Verify the data. -----------------------------------------------------------------------
# The file must hold exactly the bytes that were read back: same CRC and length, read again from
# disk (a file cut short or changed after it was written fails here).
written=$(<"$WORK/stream.cksum")
on_disk=$(cksum <"$PARTIAL")
if [[ "$on_disk" != "$written" ]]; then
  die "the file $PARTIAL is not what pg_dump wrote and the read-back verified (CRC and length $on_disk on disk, $written written); no backup was written"
fi
# Every table's data was decompressed out of the archive and its rows counted, on this
# machine: a truncated or corrupted archive fails here (zlib checks every table's data), and
# so does a row count that differs from the snapshot's. Nothing was written on the server.
check_read_back
verification="pg_restore --list, every table's data read back with exact row counts"
case "$TEST_RESTORE" in
full)
  # Everything restored (parallel jobs overlap the index builds), then counted in the database.
  SCRATCH=$(scratch_db_name)
  q "$DB" "$(create_scratch_sql)" >/dev/null
  log "full test restore into scratch database $SCRATCH (pg_restore -j $RESTORE_JOBS)"
  if ! run_child pg_restore --no-owner --exit-on-error -j "$RESTORE_JOBS" -d "$SCRATCH" "$PARTIAL" 2>"$WORK/restore.err"; then
    cat "$WORK/restore.err" >&2
    die "test restore of the dump failed (messages above); no backup was written"
  fi
  row_counts "$SCRATCH" >"$WORK/restored.counts"
  compare_counts "$WORK/restored.counts" "restored $SCRATCH" "test restore row counts differ from the source"
  drop_scratch
  verification+=", full test restore with exact row counts"
  ;;
schema)
  # The DDL (tables, keys, indexes, constraints, functions) was applied to an empty database
  # while the dump was written: this proves the dump restores without copying the data on the
  # server.
  wait "$SCHEMA_CHILD" 2>/dev/null || true
  SCHEMA_CHILD=""
  if [[ "$(cat "$WORK/scratch.created" 2>/dev/null)" != ok ]]; then
    cat "$WORK/create.err" >&2 2>/dev/null || true
    die "cannot create the scratch database $SCRATCH for the schema-only test restore (messages above); no backup was written"
  fi
  log "schema-only test restore into scratch database $SCRATCH"
  if [[ ! -s "$WORK/schema.status" ]]; then
    die "the schema-only test restore did not run (the table of contents was not read); no backup was written"
  fi
  if [[ "$(<"$WORK/schema.status")" != 0 ]]; then
    cat "$WORK/restore.err" >&2 2>/dev/null || true
    die "schema-only test restore of the dump failed (messages above); no backup was written"
  fi
  if [[ "$(cat "$WORK/drop.status" 2>/dev/null)" == 0 ]]; then
    log "dropped scratch database $SCRATCH"
    SCRATCH=""
  else
    drop_scratch
  fi
  verification+=", schema restored into a scratch database"
  ;;
esac
if [[ "$(cat "$WORK/sha.status" 2>/dev/null)" != 0 ]]; then
  die "cannot compute the dump's sha256 ($SHA256_CMD): $(tr '\n' ' ' <"$WORK/stream.sha256")"
fi
sha=$(awk '{ print $1 }' "$WORK/stream.sha256")
[[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "$SHA256_CMD printed no sha256: $(tr '\n' ' ' <"$WORK/stream.sha256")"
verify_seconds=$(seconds_since "$verify_started")
log "data verified: row counts of all $tables tables match (dump with read-back ${dump_seconds}s, then ${verify_seconds}s)"

# 7. Checksum and manifest, then the atomic rename. ----------------------------------------
wait "$VERSION_CHILD" || die "pg_dump --version failed: $(tr '\n' ' ' <"$WORK/pg_dump.version")"
pg_dump_version=$(<"$WORK/pg_dump.version")
printf '%s  %s\n' "$sha" "$NAME" >"$SHA_TMP"
{
  printf '{\n'
  printf '  "format_version": %s,\n' "$MANIFEST_FORMAT_VERSION"
  printf '  "file": %s,\n' "$(json_string "$NAME")"
  printf '  "bytes": %s,\n' "$bytes"
  printf '  "sha256": "%s",\n' "$sha"
  printf '  "from": %s,\n' "$(json_string "$BACKUP_FROM_VERSION")"
  printf '  "to": %s,\n' "$(json_string "$BACKUP_TO_VERSION")"
  printf '  "created_at": "%s",\n' "$created_at"
  printf '  "database": %s,\n' "$(json_string "$DB")"
  printf '  "server_version": %s,\n' "$(json_string "$server_version")"
  printf '  "pg_dump_version": %s,\n' "$(json_string "$pg_dump_version")"
  printf '  "test_restore": %s,\n' "$([[ "$TEST_RESTORE" == full ]] && echo true || echo false)"
  printf '  "schema_restore": %s,\n' "$([[ "$TEST_RESTORE" == schema ]] && echo true || echo false)"
  printf '  "compress_level": %s,\n' "$BACKUP_COMPRESS_LEVEL"
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
# The dump's own sync started when it was written (step 4).
wait "$SYNC_CHILD" || sync
SYNC_CHILD=""
sync -- "$SHA_TMP" "$JSON_TMP" 2>/dev/null || sync
mv -f -- "$SHA_TMP" "$FINAL.sha256"
mv -f -- "$JSON_TMP" "$FINAL.json"
mv -f -- "$PARTIAL" "$FINAL"
sync -- "$DIR" 2>/dev/null || true
log "backup complete in $(seconds_since "$total_started")s: $FINAL"

# 8. Retention: keep the newest BACKUP_KEEP verified dumps (names sort by time). ------------
mapfile -t verified < <(backups_newest_first "$DIR" "$(backup_glob "")" .sha256 .json) # every version
for ((i = BACKUP_KEEP; i < ${#verified[@]}; i++)); do
  old=${verified[i]}
  log "retention (keep $BACKUP_KEEP): deleting $old"
  rm -f -- "$DIR/$old" "$DIR/$old.sha256" "$DIR/$old.json"
done

# Summary on stdout. -------------------------------------------------------------------------
size=$(numfmt --to=iec-i --suffix=B "$bytes" 2>/dev/null || printf '%s bytes' "$bytes")
printf 'backup %s: %s, %s tables, %s rows, from %s to %s\n' \
  "$NAME" "$size" "$tables" "$rows" "$BACKUP_FROM_VERSION" "$BACKUP_TO_VERSION"
printf 'verified: %s (dump with read-back %ss, then %ss)\n' "$verification" "$dump_seconds" "$verify_seconds"
printf 'kept: %s of at most %s backups in %s\n' "$((${#verified[@]} < BACKUP_KEEP ? ${#verified[@]} : BACKUP_KEEP))" "$BACKUP_KEEP" "$DIR"
window_step_end "{\"file\":$(json_string "$FINAL"),\"bytes\":$bytes,\"sha256\":\"$sha\"}"
printf 'BACKUP_FILE=%s\n' "$FINAL"
