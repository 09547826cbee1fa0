#!/usr/bin/env bash
# Verified pg_dump backup of the Utilitarian database (see docs/step-scripts.md).
#
# Order: preflight (variables, database answers, directory writable, free space, lock) ->
# row counts and pg_dump -Fc from ONE exported snapshot; while the archive is written, every
# table's data is read back out of it and its rows counted -> verify: exit statuses, size,
# pg_restore --list, table data, the read-back's exact row counts, the file's checksum against
# the bytes that were read back; the schema restored into a scratch database (default), or a
# full test restore with exact row counts (BACKUP_TEST_RESTORE=true) -> .sha256 + .json
# manifest -> atomic rename of the .partial file -> retention.
# Last stdout line: BACKUP_FILE=<absolute path>.
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
  [[ "${!v}" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] ||
    die "$STEP: $v must be a version like 1.2.0 (letters, digits, . _ + -); got '${!v}'"
done
pg_setup_env
# The dump pipeline runs as a process group of its own (lib.sh, run_child_group).
command -v setsid >/dev/null || die "$STEP: setsid (util-linux) is not on PATH; install util-linux"

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
# Scratch databases of killed backups on this machine (the provider SIGKILLs a cancelled step).
drop_stale_scratch_dbs "$DB"

# 3. Enough free space, here for the dump and on the server for the test restore. -----------
# The dump is far smaller than the database (about 0.2x), but asking for a whole copy keeps
# room for data that compresses badly.
db_bytes=$(q "$DB" "select pg_database_size(current_database())")
free_mb=$(df -Pk -- "$DIR" | awk 'NR == 2 { print int($4 / 1024) }')
need_free_space "$free_mb" "$db_bytes" BACKUP_MIN_FREE_MB "in $DIR"
case "$TEST_RESTORE" in
full)
  server_bytes=$(pg_full_restore_bytes "$DB" "$RESTORE_JOBS")
  pg_server_space_check "$server_bytes" "the test restore" "$FULL_RESTORE_WHAT"
  ;;
schema)
  server_bytes=$(q "$DB" "select pg_database_size('template0')")
  pg_server_space_check "$server_bytes" "the test restore" "schema only: an empty database"
  ;;
esac

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
SCRATCH=""
total_started=$(now_ms)
SNAP_CHILD=""
SHA_CHILD=""

cleanup() {
  local child
  for child in "$SNAP_CHILD" "$SHA_CHILD"; do
    if [[ -n "$child" ]]; then
      kill "$child" 2>/dev/null || true
      wait "$child" 2>/dev/null || true
    fi
  done
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
}
on_exit cleanup
make_work_dir

# create_scratch: an empty scratch database with the source's encoding and locale, in SCRATCH
# (dropped by cleanup whatever happens).
create_scratch() {
  local enc collate ctype
  SCRATCH=$(scratch_db_name)
  IFS=$'\t' read -r enc collate ctype < <(q "$DB" "select pg_encoding_to_char(encoding), datcollate, datctype from pg_database where datname = current_database()")
  q "$DB" "create database $(sql_ident "$SCRATCH") template template0 encoding $(sql_literal "$enc") lc_collate $(sql_literal "$collate") lc_ctype $(sql_literal "$ctype")" >/dev/null
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

# The dump, run as one process group (run_child_group): pg_dump's archive goes through tee into
# the .partial file, into the read-back and into cksum (CRC and length), all at once. The
# read-back decompresses every table's data again (pg_restore --data-only) and counts its rows,
# so it costs the dump's time, not time after it. cksum ends only after the read-back has ended
# (the read-back's process substitution holds its input open), so every status file is written
# when the group exits. pg_dump writing into a pipe leaves out the archive's data offsets, which
# pg_restore, sequential or parallel, does without (it finds each table's data by reading).
# Arguments: snapshot, zlib level, database; WORK, PARTIAL, COPY_LINES_ERE, COPY_ROWS_AWK in the
# environment.
# shellcheck disable=SC2016 # expanded by the bash that runs it
DUMP_PIPELINE='
read_back() {
  pg_restore --data-only -f - 2>"$WORK/readback.err" |
    LC_ALL=C grep -a -n -E "$COPY_LINES_ERE" |
    LC_ALL=C awk "$COPY_ROWS_AWK" >"$WORK/archive.all" 2>"$WORK/awk.err"
  printf "%s %s %s\n" "${PIPESTATUS[@]}" >"$WORK/readback.status"
}
pg_dump -Fc -Z "$2" --snapshot="$1" -d "$3" 2>"$WORK/pg_dump.err" |
  tee --output-error=exit-nopipe -- "$PARTIAL" >(read_back) 2>"$WORK/tee.err" |
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
    cat "$WORK/readback.err" "$WORK/awk.err" >&2 2>/dev/null
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

log "pg_dump -Fc -Z$BACKUP_COMPRESS_LEVEL $DB -> $(basename -- "$PARTIAL"), every table's data read back and counted as it is written; progress every ${BACKUP_PROGRESS_SECONDS} s"
dump_started=$(now_ms)
progress_ms=$dump_started
progress_bytes=0
WORK=$WORK PARTIAL=$PARTIAL COPY_LINES_ERE=$COPY_LINES_ERE COPY_ROWS_AWK=$COPY_ROWS_AWK \
  run_child_group "$BACKUP_PROGRESS_SECONDS" report_dump_progress \
  bash -c "$DUMP_PIPELINE" backup-dump "$snapshot" "$BACKUP_COMPRESS_LEVEL" "$DB" ||
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
log "dump: $(human_bytes "$(stat -c %s -- "$PARTIAL")") written in $dump_seconds s"
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
log "archive ok: $bytes bytes, $data_entries table data entries"

# 6. Verify the data. -----------------------------------------------------------------------
# The file must hold exactly the bytes that were read back: same CRC and length, read again from
# disk (a file cut short or changed after it was written fails here). Its sha256, for the
# .sha256 file, is computed meanwhile.
verify_started=$(now_ms)
written=$(<"$WORK/stream.cksum")
on_disk=$(cksum <"$PARTIAL")
if [[ "$on_disk" != "$written" ]]; then
  die "the file $PARTIAL is not what pg_dump wrote and the read-back verified (CRC and length $on_disk on disk, $written written); no backup was written"
fi
sha256sum -- "$PARTIAL" >"$WORK/file.sha256" 2>&1 &
SHA_CHILD=$!
# Every table's data was decompressed out of the archive and its rows counted, on this
# machine: a truncated or corrupted archive fails here (zlib checks every table's data), and
# so does a row count that differs from the snapshot's. Nothing was written on the server.
check_read_back
verification="pg_restore --list, every table's data read back with exact row counts"
case "$TEST_RESTORE" in
full)
  # Everything restored (parallel jobs overlap the index builds), then counted in the database.
  create_scratch
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
  # The DDL (tables, keys, indexes, constraints, functions) must apply to an empty database:
  # this proves the dump restores without copying the data on the server.
  create_scratch
  log "schema-only test restore into scratch database $SCRATCH"
  if ! run_child pg_restore --schema-only --no-owner --exit-on-error -d "$SCRATCH" "$PARTIAL" 2>"$WORK/restore.err"; then
    cat "$WORK/restore.err" >&2
    die "schema-only test restore of the dump failed (messages above); no backup was written"
  fi
  drop_scratch
  verification+=", schema restored into a scratch database"
  ;;
esac
wait "$SHA_CHILD" || die "cannot read $PARTIAL back: $(cat "$WORK/file.sha256")"
SHA_CHILD=""
sha=$(awk '{ print $1 }' "$WORK/file.sha256")
verify_seconds=$(seconds_since "$verify_started")
log "data verified: row counts of all $tables tables match (dump with read-back ${dump_seconds}s, then ${verify_seconds}s)"

# 7. Checksum and manifest, then the atomic rename. ----------------------------------------
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
printf 'verified: %s (dump with read-back %ss, then %ss)\n' "$verification" "$dump_seconds" "$verify_seconds"
printf 'kept: %s of at most %s backups in %s\n' "$((${#verified[@]} < BACKUP_KEEP ? ${#verified[@]} : BACKUP_KEEP))" "$BACKUP_KEEP" "$DIR"
printf 'BACKUP_FILE=%s\n' "$FINAL"
