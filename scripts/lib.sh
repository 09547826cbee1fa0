# shellcheck shell=bash
# Shared helpers for the step scripts in this directory.
#
# Usage, at the top of a step script:
#   STEP=backup
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# What it gives every step:
#   - the maintenance window's record (window.sh): window_open, window_step_start/_end, window_close;
#   - strict mode (errexit, nounset, pipefail, errtrace); never xtrace: env may hold secrets;
#   - log lines on stderr: "<UTC timestamp> <step>: <message>";
#   - die "<reason>": exits 1; the reason is ALWAYS the last stderr line, after cleanups ran;
#   - on_exit <function>: cleanups that run on every exit (success, failure, SIGTERM/SIGINT),
#     in reverse order of registration;
#   - require_vars: checks required variables up front and names each missing one together
#     with the setting that provides it.
# Nothing here prints the value of an environment variable.

set -Eeuo pipefail
set +x

: "${STEP:=step}"

LIB_FAIL_REASON=""
LIB_ERR_LINE=""
LIB_ERR_CMD=""
LIB_CLEANUPS=()
LIB_CHILD=""
LIB_CHILD_GROUP=false
# The script's real stdout/stderr: a signal can arrive while a redirection of a function call
# is in effect (e.g. `run_child pg_dump 2>file`); the exit handler writes to these instead.
exec {LIB_STDOUT}>&1 {LIB_STDERR}>&2

log() {
  printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$STEP" "$*" >&2
}

# die REASON...: fail the step with a one-line reason (printed last, after cleanups).
die() {
  LIB_FAIL_REASON="$*"
  LIB_FAIL_REASON="${LIB_FAIL_REASON//$'\n'/ }"
  exit 1
}

# on_exit FUNCTION: run FUNCTION when the script exits, whatever the outcome.
on_exit() {
  LIB_CLEANUPS+=("$1")
}

lib_exit_handler() {
  local rc=$? i
  set +eu
  exec 1>&"$LIB_STDOUT" 2>&"$LIB_STDERR"
  trap - ERR
  # A failure while on_node pointed docker at a swarm node: the record is the manager's again.
  if [[ -n "${SWARM_MANAGER_HOST+set}" ]]; then
    if [[ -n "$SWARM_MANAGER_HOST" ]]; then export DOCKER_HOST=$SWARM_MANAGER_HOST; else unset DOCKER_HOST; fi
  fi
  if [[ -n "$LIB_CHILD" ]]; then
    if [[ "$LIB_CHILD_GROUP" == true ]]; then
      kill -- "-$LIB_CHILD" 2>/dev/null || kill "$LIB_CHILD" 2>/dev/null
    else
      kill "$LIB_CHILD" 2>/dev/null
    fi
    wait "$LIB_CHILD" 2>/dev/null
  fi
  for ((i = ${#LIB_CLEANUPS[@]} - 1; i >= 0; i--)); do
    "${LIB_CLEANUPS[i]}"
  done
  if ((rc != 0)); then
    if [[ -z "$LIB_FAIL_REASON" ]]; then
      # The command text is shown unexpanded (no variable values), so no secret can leak here.
      LIB_FAIL_REASON="failed (exit $rc) at ${BASH_SOURCE[1]##*/} line ${LIB_ERR_LINE:-?}: ${LIB_ERR_CMD:-unknown command}"
    fi
    log "$LIB_FAIL_REASON"
  fi
  # After the reason, so that the window's copy of the step's log ends with it too.
  window_after_exit "$rc" "$LIB_FAIL_REASON"
  exit "$rc"
}

trap 'LIB_ERR_LINE=$LINENO; LIB_ERR_CMD=$BASH_COMMAND' ERR
trap lib_exit_handler EXIT
trap 'LIB_FAIL_REASON="interrupted (SIGTERM)"; exit 143' TERM
trap 'LIB_FAIL_REASON="interrupted (SIGINT)"; exit 130' INT
trap 'LIB_FAIL_REASON="interrupted (SIGHUP)"; exit 129' HUP

# run_child CMD...: run CMD as a background child and wait for it, so that SIGTERM/SIGINT are
# handled at once (bash defers traps while a foreground child runs) and the child is stopped
# by the exit handler. Returns CMD's exit status.
run_child() {
  local rc=0
  "$@" &
  LIB_CHILD=$!
  wait "$LIB_CHILD" || rc=$?
  LIB_CHILD=""
  return "$rc"
}

# run_child_group INTERVAL FUNCTION CMD...: like run_child, for a CMD that starts processes of
# its own (a pipeline): CMD runs as a process group of its own (setsid; a background child of
# this script is never a group leader, so setsid runs CMD in place and the group's ID is the
# child's PID), and a signal stops the whole group, not only CMD while its pipeline runs on.
# FUNCTION is called every INTERVAL seconds while CMD runs (a progress line for `pulumi up` to
# show live); signals are still handled within a fifth of a second, the loop's sleep.
run_child_group() {
  local interval_ms=$(($1 * 1000)) report=$2 rc=0 next
  shift 2
  setsid "$@" &
  LIB_CHILD=$!
  LIB_CHILD_GROUP=true
  next=$(($(now_ms) + interval_ms))
  while kill -0 "$LIB_CHILD" 2>/dev/null; do
    sleep 0.2
    if (($(now_ms) >= next)) && kill -0 "$LIB_CHILD" 2>/dev/null; then
      "$report"
      next=$((next + interval_ms))
    fi
  done
  wait "$LIB_CHILD" || rc=$?
  LIB_CHILD=""
  LIB_CHILD_GROUP=false
  return "$rc"
}

# human_bytes BYTES: "512 kB", "12.3 MB" or "4.56 GB" (powers of 1024).
human_bytes() {
  awk -v b="$1" 'BEGIN {
    if (b < 1048576) printf "%d kB", b / 1024
    else if (b < 1073741824) printf "%.1f MB", b / 1048576
    else printf "%.2f GB", b / 1073741824 }'
}

# require_vars NAME HINT [NAME HINT ...]: every NAME must be set and non-empty.
# HINT says what provides it, e.g. the Pulumi config key ("utilitarian:backup.dir").
# All missing variables are logged; the step then fails naming the first one.
require_vars() {
  local name hint missing=() first=""
  while (($# >= 2)); do
    name=$1 hint=$2
    shift 2
    if [[ -z "${!name:-}" ]]; then
      missing+=("$name")
      if [[ -z "$first" ]]; then
        first="$STEP: $name is not set ($hint)"
      else
        log "$name is not set ($hint)"
      fi
    fi
  done
  if ((${#missing[@]} > 0)); then
    if ((${#missing[@]} > 1)); then
      die "$first; also missing: ${missing[*]:1}"
    fi
    die "$first"
  fi
}

# require_int NAME MIN: the variable NAME must be an integer >= MIN.
require_int() {
  local name=$1 min=$2 value
  value=${!name}
  if ! [[ "$value" =~ ^[0-9]+$ ]] || ((10#$value < min)); then
    die "$STEP: $name must be an integer >= $min; got '$value'"
  fi
}

# require_bool NAME: the variable NAME must be true or false.
require_bool() {
  local name=$1
  case "${!name}" in
  true | false) ;;
  *) die "$STEP: $name must be true or false; got '${!name}'" ;;
  esac
}

# PostgreSQL ------------------------------------------------------------------------------

# The libpq variables every database step needs. PGPASSWORD is optional (a ~/.pgpass file,
# PGPASSFILE or trust/peer authentication work too) and is never printed.
# shellcheck disable=SC2034 # used by the step scripts that source this file
PG_REQUIRED_VARS=(
  PGHOST "utilitarian:database.operatorHost, where this machine reaches the database"
  PGUSER "utilitarian:database.adminUser, a role that may CREATE DATABASE"
  PGDATABASE "utilitarian:database.name, the application's database"
)

pg_setup_env() {
  export PGPORT="${PGPORT:-5432}"
  export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"
  export PGAPPNAME="utilitarian-$STEP"
  if [[ -z "${PGPASSWORD:-}" ]]; then
    log "PGPASSWORD is not set: relying on PGPASSFILE/~/.pgpass or passwordless authentication"
  fi
  require_int PGPORT 1
}

# sql_ident NAME: NAME quoted as an SQL identifier.
sql_ident() {
  printf '"%s"' "${1//\"/\"\"}"
}

# sql_literal TEXT: TEXT quoted as an SQL string literal.
sql_literal() {
  printf "'%s'" "${1//\'/\'\'}"
}

# q DB SQL: run SQL in database DB, print unaligned, tuples-only output (fields split by TAB).
q() {
  local db=$1 sql=$2
  psql -X -q -A -t -F $'\t' -v ON_ERROR_STOP=1 -d "$db" -c "$sql"
}

# pg_check_reachable DB: fail with "database unreachable at host:port" unless DB answers.
pg_check_reachable() {
  local db=$1 err
  if ! err=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" -c 'select 1' 2>&1 >/dev/null); then
    err=$(printf '%s' "$err" | tr '\n' ' ' | sed -e 's/  */ /g' -e 's/ $//')
    die "database unreachable at $PGHOST:$PGPORT (database $db, user $PGUSER): $err"
  fi
}

# pg_db_exists DB: true if database DB exists (queried through the maintenance database $2).
pg_db_exists() {
  local db=$1 via=$2
  [[ "$(q "$via" "select count(*) from pg_database where datname = $(sql_literal "$db")")" == 1 ]]
}

# pg_drop_db DB VIA: terminate DB's sessions and drop it (no-op if absent). Never fails the
# caller: it is used from cleanups; returns non-zero if the database still exists.
pg_drop_db() {
  local db=$1 via=$2
  q "$via" "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = $(sql_literal "$db") and pid <> pg_backend_pid()" >/dev/null 2>&1 || true
  if ! q "$via" "drop database if exists $(sql_ident "$db")" >/dev/null 2>&1; then
    sleep 1
    q "$via" "select count(pg_terminate_backend(pid)) from pg_stat_activity where datname = $(sql_literal "$db") and pid <> pg_backend_pid()" >/dev/null 2>&1 || true
    q "$via" "drop database if exists $(sql_ident "$db")" >/dev/null 2>&1 || return 1
  fi
}

# need_free_space FREE_MB BYTES OVERRIDE WHERE [WHAT]: stop unless FREE_MB, what WHERE has,
# holds BYTES plus a margin, or the MB the variable named OVERRIDE asks for when it is set.
# WHAT says what BYTES are, for the message (default "database size").
FREE_SPACE_MARGIN_MB=64
need_free_space() {
  local free_mb=$1 bytes=$2 override=$3 where=$4 what=${5:-database size} copy_mb need_mb why
  copy_mb=$(((bytes + 1048575) / 1048576))
  if [[ -n "${!override:-}" ]]; then
    require_int "$override" 0
    need_mb=$((10#${!override}))
    why=$override
  else
    need_mb=$((copy_mb + FREE_SPACE_MARGIN_MB))
    why="$what $copy_mb MB + $FREE_SPACE_MARGIN_MB MB margin; override with $override"
  fi
  if ((free_mb < need_mb)); then
    die "not enough free space $where: ${free_mb} MB free, ${need_mb} MB needed ($why)"
  fi
  log "free space $where: ${free_mb} MB (need ${need_mb} MB)"
}

# pg_server_space_check BYTES PURPOSE [WHAT]: BYTES (the scratch test restore, or the restore's
# <db>_restoring) must fit on the database server's disk, or PostgreSQL could fill it and stop,
# taking meter ingestion down with it. The managed server runs in DATABASE_CONTAINER, whose data
# directory `df` can read through `docker exec`; an external server's disk cannot be seen from
# here, which is said in the log. DB_SERVER_MIN_FREE_MB overrides the estimate.
pg_server_space_check() {
  local bytes=$1 purpose=$2 what=${3:-database size} out free_mb
  if [[ -z "${DATABASE_CONTAINER:-}" ]]; then
    local server="external server"
    # A managed server on a swarm runs on the data node, whose engine the steps are not given.
    [[ -n "${SWARM_NODE_HOSTS:-}" ]] && server="external server, or managed on a swarm's data node"
    log "free space on the database server not checked ($server): $purpose needs about $(((bytes + 1048575) / 1048576)) MB there ($what)"
    return 0
  fi
  if ! out=$(docker exec "$DATABASE_CONTAINER" sh -c 'df -Pk "${PGDATA:-/var/lib/postgresql/data}"' 2>&1); then
    die "cannot read the free space of the database server in container $DATABASE_CONTAINER (DATABASE_CONTAINER): $out"
  fi
  free_mb=$(printf '%s\n' "$out" | awk 'NR == 2 { print int($4 / 1024) }')
  [[ "$free_mb" =~ ^[0-9]+$ ]] || die "unexpected df output from $DATABASE_CONTAINER: $out"
  need_free_space "$free_mb" "$bytes" DB_SERVER_MIN_FREE_MB "on the database server ($DATABASE_CONTAINER) for $purpose" "$what"
}

# pg_full_restore_bytes DB JOBS: the server disk a full pg_restore of DB with JOBS parallel jobs
# needs at its peak: a copy of the database plus, for each job that may be building an index
# at the same moment, the sort files of that build, about the size of the index being built
# (so the JOBS largest indexes). Measured with 20 million readings (docs/benchmarks.md): the
# peak was 1.13x the database's size with -j1 and -j2; this estimate gives 1.20x and 1.35x.
pg_full_restore_bytes() {
  local db=$1 jobs=$2
  q "$db" "select pg_database_size(current_database())
                  + coalesce((select sum(b) from (select pg_relation_size(oid) as b from pg_class
                                                   where relkind = 'i' order by 1 desc limit $((10#$jobs))) largest), 0)"
}
# shellcheck disable=SC2034 # used by the step scripts that source this file
FULL_RESTORE_WHAT="database size + the largest index per restore job, for the sort files of index builds"

# The query behind every row-count comparison: one line per user table,
# "<schema>.<table><TAB><exact row count>", sorted by name (C collation).
ROW_COUNT_SQL="
select format('%I.%I', n.nspname, c.relname) as name,
       (xpath('/row/c/text()',
              query_to_xml(format('select count(*) as c from only %I.%I', n.nspname, c.relname),
                           false, true, '')))[1]::text::bigint as rows
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
 where c.relkind = 'r'
   and c.relpersistence <> 't'
   and n.nspname <> 'information_schema'
   and n.nspname !~ '^pg_'
   and not exists (select 1 from pg_depend d
                    where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
 order by format('%I.%I', n.nspname, c.relname) collate \"C\""

# row_counts DB: print "<table><TAB><rows>" for every user table of DB.
row_counts() {
  q "$1" "$ROW_COUNT_SQL"
}

# json_string TEXT: TEXT as a JSON string literal.
json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

# Backups. --------------------------------------------------------------------------------------
# Their format (name, checksum file, manifest, "latest") is defined once, in config/manifest.ts;
# what the scripts read as data is generated from it into manifest.sh. The functions below are
# held to the same definition by test/unit/backup-manifest.test.ts and test/real/backup-manifest.test.ts.
# shellcheck source-path=SCRIPTDIR source=manifest.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/manifest.sh"

# backup_name STAMP FROM TO: a backup's file name. STAMP (UTC, YYYYmmddTHHMMSSZ) comes first, so
# names sort by age.
backup_name() {
  printf 'utilitarian-%s-%s-to-%s.dump' "$1" "$2" "$3"
}

# backup_glob VERSION: the names of the backups taken while VERSION ran; with "", of all backups.
backup_glob() {
  if [[ -n "${1:-}" ]]; then backup_name '*' "$1" '*'; else printf 'utilitarian-*.dump'; fi
}

# backups_newest_first DIR GLOB SUFFIX...: the regular files (not symlinks) DIR/GLOB that have a
# DIR/<name>SUFFIX beside them for every SUFFIX, newest first (by name, byte order).
backups_newest_first() {
  local dir=$1 glob=$2 f suffix
  shift 2
  find "$dir" -maxdepth 1 -type f -name "$glob" -printf '%f\n' | LC_ALL=C sort -r |
    while IFS= read -r f; do
      for suffix; do [[ -e "$dir/$f$suffix" ]] || continue 2; done
      printf '%s\n' "$f"
    done
}

# manifest_check_sql: one query whose rows ("manifest_problem<TAB>reason") say how the manifest
# in psql's variable :manifest departs from manifest.sh's fields and types, and from the backup
# it sits beside (psql variables :file_name, and :sha256 from its .sha256 file). No row: it is a
# manifest backup.sh writes. PostgreSQL parses the JSON, so no jq is needed.
manifest_check_sql() {
  local entry field type required values=()
  for entry in "${MANIFEST_REQUIRED_FIELDS[@]/%/ true}" "${MANIFEST_OPTIONAL_FIELDS[@]/%/ false}"; do
    read -r field type required <<<"$entry"
    values+=("('$field', '$type', $required)")
  done
  local IFS=,
  cat <<SQL
with m as (select (:'manifest')::json as j)
select 'manifest_problem', f.field || case when j->f.field is null then ' is missing'
       else ' is a ' || json_typeof(j->f.field) || ', not a ' || f.type end
  from m, (values ${values[*]}) as f(field, type, required)
 where case when j->f.field is null then f.required else json_typeof(j->f.field) <> f.type end
union all
select 'manifest_problem', 'format_version is ' || (j->>'format_version') || ', not $MANIFEST_FORMAT_VERSION'
  from m where json_typeof(j->'format_version') = 'number' and j->>'format_version' <> '$MANIFEST_FORMAT_VERSION'
union all
select 'manifest_problem', 'file names ' || (j->>'file') || ', not this file'
  from m where json_typeof(j->'file') = 'string' and j->>'file' <> :'file_name'
union all
select 'manifest_problem', 'sha256 differs from its .sha256 file'
  from m where json_typeof(j->'sha256') = 'string' and j->>'sha256' <> :'sha256';
SQL
}

# now_ms: milliseconds since the epoch.
now_ms() {
  local t=${EPOCHREALTIME/./}
  printf '%s' "$((10#${t:0:-3}))"
}

# seconds_since MS: seconds elapsed since now_ms returned MS, with one decimal.
seconds_since() {
  local d=$(($(now_ms) - $1))
  printf '%d.%d' "$((d / 1000))" "$((d % 1000 / 100))"
}

# Docker ----------------------------------------------------------------------------------

# deployed_version: the version running now, as the API container's label says (the deployment
# writes it on every container; on a swarm, on every service), or "none" when no API runs yet (a
# first install).
deployed_version() {
  local v=""
  if [[ -n "${API_CONTAINER:-}" && -n "${SWARM_NODE_HOSTS:-}" ]]; then
    # On a swarm the deployment labels the API's service (the manager's), not its tasks' containers.
    v=$(docker service inspect -f '{{index .Spec.Labels "io.utilitarian.version"}}' "$API_CONTAINER" 2>/dev/null || true)
  elif [[ -n "${API_CONTAINER:-}" ]]; then
    v=$(docker inspect -f '{{index .Config.Labels "io.utilitarian.version"}}' "$API_CONTAINER" 2>/dev/null || true)
  fi
  printf '%s' "${v:-none}"
}

# An empty DOCKER_HOST would be passed on as-is; treat it as "not set".
docker_setup_env() {
  if [[ -z "${DOCKER_HOST:-}" ]]; then
    unset DOCKER_HOST
  fi
  command -v docker >/dev/null || die "$STEP: the docker CLI is not on PATH"
}

# split_manage: MANAGE (default "python manage.py") split on whitespace into the array MANAGE_CMD.
# No shell quoting is interpreted.
split_manage() {
  MANAGE="${MANAGE:-python manage.py}"
  read -r -a MANAGE_CMD <<<"$MANAGE"
  ((${#MANAGE_CMD[@]} > 0)) || die "$STEP: MANAGE is empty; set it to the command that runs manage.py (default: python manage.py)"
}

# container_state NAME: print "<status> <restarting> <restart count>" or nothing if absent.
container_state() {
  docker inspect -f '{{.State.Status}} {{.State.Restarting}} {{.RestartCount}}' "$1" 2>/dev/null || true
}

# wait_running NAME TIMEOUT: wait until container NAME is running (not restarting).
wait_running() {
  local name=$1 timeout=$2 start state="" last="(none yet)"
  start=$SECONDS
  while :; do
    state=$(container_state "$name")
    if [[ "$state" == "running false "* ]]; then
      log "container $name is running"
      return 0
    fi
    if [[ "$state" != "$last" ]]; then
      log "waiting for container $name to run (state: ${state:-absent})"
      last=$state
    fi
    if ((SECONDS - start >= timeout)); then
      die "container $name is not running after ${timeout}s (state: ${state:-absent}); see: docker logs $name"
    fi
    sleep 2
  done
}

# api_http_status CONTAINER URL: the HTTP status URL answers from inside CONTAINER (so no port
# needs publishing), or "error: <reason>". The interpreter is MANAGE's first word if it is a
# Python (e.g. "python" or "/venv/bin/python3"), otherwise python3; call split_manage first.
# HEALTH_URL defaults to the API's health endpoint as the container itself reaches it.
HEALTH_URL="${HEALTH_URL:-http://127.0.0.1:8000/_health/}"
# shellcheck disable=SC2016 # Python source, not shell
LIB_HTTP_STATUS_PY='
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception as e:
    print("error: %s: %s" % (type(e).__name__, str(e)[:200]))
'
api_http_status() {
  local py=python3
  if [[ "$(basename -- "${MANAGE_CMD[0]}")" == python* ]]; then
    py=${MANAGE_CMD[0]}
  fi
  docker exec "$1" "$py" -c "$LIB_HTTP_STATUS_PY" "$2" </dev/null 2>&1 | tail -n 1 || true
}

# wait_api_healthy CONTAINER TIMEOUT [SEE]: wait until HEALTH_URL answers 200 inside CONTAINER.
# SEE is where the failure message points (default: docker logs CONTAINER).
wait_api_healthy() {
  local name=$1 timeout=$2 see=${3:-docker logs $1} start status
  start=$SECONDS
  while :; do
    status=$(api_http_status "$name" "$HEALTH_URL")
    [[ "$status" == 200 ]] && return 0
    if ((SECONDS - start >= timeout)); then
      die "$HEALTH_URL in $name answered '${status:-nothing}' for ${timeout}s; see: $see"
    fi
    log "health: $HEALTH_URL answered '${status:-nothing}'; retrying"
    sleep 1
  done
}

# Docker Swarm ------------------------------------------------------------------------------
# With SWARM_NODE_HOSTS set (the deployment's swarm.nodeHosts: space-separated NODE=DOCKER_HOST
# pairs, NODE a node's host name as `docker node ls` shows it, or its ID), DOCKER_HOST is a
# manager's engine and API_CONTAINER names the API's swarm service. The manager knows the tasks
# and their nodes; a task's container can only be reached (exec, restart) through the engine of
# the node that runs it, which is what SWARM_NODE_HOSTS says.

# swarm_mode: true when the steps talk to a swarm.
swarm_mode() {
  [[ -n "${SWARM_NODE_HOSTS:-}" ]]
}

declare -A SWARM_HOSTS=() SWARM_NODE_NAMES=()
declare -A SWARM_TASK_NODE=() SWARM_TASK_HOST=() SWARM_TASK_CONTAINER=() SWARM_TASK_NAME=()
SWARM_TASKS=()

# swarm_setup_env: SWARM_HOSTS from SWARM_NODE_HOSTS, after docker_setup_env. DOCKER_HOST must be
# a manager's engine: only a manager can say where the tasks run.
swarm_setup_env() {
  local pairs pair i=0 control
  # Kept for lib_exit_handler: a step that fails while on_node points docker at a node records
  # its failure through the manager's engine again.
  SWARM_MANAGER_HOST=${DOCKER_HOST:-}
  read -r -a pairs <<<"$SWARM_NODE_HOSTS"
  for pair in "${pairs[@]}"; do
    i=$((i + 1))
    # The value is not printed: this file never prints an environment variable's value.
    [[ "$pair" =~ ^[^=]+=.+$ ]] || die "$STEP: entry $i of SWARM_NODE_HOSTS is not NODE=DOCKER_HOST (swarm.nodeHosts: each swarm node's host name or ID and how this machine reaches its Docker engine)"
    SWARM_HOSTS[${pair%%=*}]=${pair#*=}
  done
  control=$(docker info -f '{{.Swarm.ControlAvailable}}' 2>&1) || die "$STEP: the swarm manager's Docker engine (DOCKER_HOST) does not answer: ${control//$'\n'/ }"
  [[ "$control" == true ]] || die "$STEP: DOCKER_HOST is not a swarm manager's engine (SWARM_NODE_HOSTS is set, so the steps ask the manager where the API's tasks run); point it at a manager"
}

# on_node DOCKER_HOST CMD...: CMD (a command or function) with docker talking to that engine, a
# swarm node's; with "", to the engine DOCKER_HOST names already (the one host).
on_node() {
  if [[ -z "$1" ]]; then
    shift
    "$@"
    return
  fi
  local -x DOCKER_HOST=$1
  shift
  "$@"
}

# swarm_read_nodes: SWARM_NODE_NAMES, every node's host name by node ID.
swarm_read_nodes() {
  local id name
  SWARM_NODE_NAMES=()
  while read -r id name; do
    [[ -n "$id" ]] && SWARM_NODE_NAMES[$id]=$name
  done < <(docker node ls --format '{{.ID}} {{.Hostname}}' 2>/dev/null || true)
}

# swarm_lookup_host NODE_ID WHAT: NODE_NAME (the node's host name) and NODE_HOST (its DOCKER_HOST)
# from SWARM_NODE_HOSTS, which names it by ID or by host name; returns 1 when it names it not at
# all. Host names need not be unique in a swarm (nodes on one machine share it), so a shared one
# cannot say which node it is: that stops the step. WHAT says why the node is needed ("runs a task
# of SERVICE").
swarm_lookup_host() {
  local id=$1 what=$2 other count=0
  [[ -n "${SWARM_NODE_NAMES[$id]:-}" ]] || swarm_read_nodes
  NODE_NAME=${SWARM_NODE_NAMES[$id]:-$id}
  if [[ -n "${SWARM_HOSTS[$id]:-}" ]]; then
    NODE_HOST=${SWARM_HOSTS[$id]}
    return 0
  fi
  if [[ -n "${SWARM_HOSTS[$NODE_NAME]:-}" ]]; then
    for other in "${!SWARM_NODE_NAMES[@]}"; do
      [[ "${SWARM_NODE_NAMES[$other]}" == "$NODE_NAME" ]] && count=$((count + 1))
    done
    ((count <= 1)) || die "$STEP: $count swarm nodes have the host name $NODE_NAME, so SWARM_NODE_HOSTS cannot say which one $what; name them by node ID in swarm.nodeHosts (this one is $id)"
    NODE_HOST=${SWARM_HOSTS[$NODE_NAME]}
    return 0
  fi
  return 1
}

# swarm_resolve_node NODE_ID SERVICE: NODE_NAME and NODE_HOST (its DOCKER_HOST) of the node that
# runs a task of SERVICE; a node SWARM_NODE_HOSTS does not name stops the step.
swarm_resolve_node() {
  swarm_lookup_host "$1" "runs a task of $2" ||
    die "$STEP: swarm node $NODE_NAME (ID $1) runs a task of $2, but SWARM_NODE_HOSTS has no entry for it; add $NODE_NAME=<how this machine reaches its Docker engine, e.g. ssh://user@host> to swarm.nodeHosts"
}

# swarm_task_lines SERVICE: "TASK NODE_ID STATE [CONTAINER_ID]" for each task swarm wants running
# (desired state running); nothing when SERVICE does not exist or has none.
swarm_task_lines() {
  local ids
  ids=$(docker service ps --no-trunc -q --filter desired-state=running "$1" 2>/dev/null) || return 0
  [[ -n "$ids" ]] || return 0
  # A task that ends between the two calls is left out (inspect prints the others).
  # shellcheck disable=SC2086 # one argument per task ID
  docker inspect --type task -f '{{.ID}} {{.NodeID}} {{.Status.State}} {{with .Status.ContainerStatus}}{{.ContainerID}}{{end}}' $ids 2>/dev/null || true
}

# swarm_read_tasks SERVICE: SWARM_TASKS, the IDs of SERVICE's tasks that are up: swarm says
# running and their container runs (not restarting) on their node; for each, SWARM_TASK_NODE
# (the node's host name), _HOST (its DOCKER_HOST), _CONTAINER (ID) and _NAME (the container's name). SWARM_WANTED is how many
# tasks swarm wants running, SWARM_STATES their states ("running running starting").
swarm_read_tasks() {
  local service=$1 task node state container name cstate restarting
  SWARM_TASKS=() SWARM_WANTED=0 SWARM_STATES=""
  while read -r task node state container; do
    [[ -n "$task" ]] || continue
    SWARM_WANTED=$((SWARM_WANTED + 1))
    SWARM_STATES+="${SWARM_STATES:+ }$state"
    [[ "$state" == running && -n "$container" ]] || continue
    swarm_resolve_node "$node" "$service"
    read -r name cstate restarting <<<"$(on_node "$NODE_HOST" docker inspect -f '{{.Name}} {{.State.Status}} {{.State.Restarting}}' "$container" 2>/dev/null || true)"
    [[ "$cstate" == running && "$restarting" == false ]] || continue
    SWARM_TASKS+=("$task")
    SWARM_TASK_NODE[$task]=$NODE_NAME
    SWARM_TASK_HOST[$task]=$NODE_HOST
    # shellcheck disable=SC2034 # used by static.sh
    SWARM_TASK_CONTAINER[$task]=$container
    SWARM_TASK_NAME[$task]=${name#/}
  done < <(swarm_task_lines "$service")
}

# swarm_wait_tasks SERVICE TIMEOUT one|all: wait until SERVICE has a task up (one), or until
# every task swarm wants running is up (all); SWARM_TASKS then lists them.
swarm_wait_tasks() {
  local service=$1 timeout=$2 need=$3 start state last="(none yet)"
  start=$SECONDS
  while :; do
    swarm_read_tasks "$service"
    if ((${#SWARM_TASKS[@]} > 0)) && [[ "$need" == one || ${#SWARM_TASKS[@]} == "$SWARM_WANTED" ]]; then
      log "service $service: ${#SWARM_TASKS[@]} of $SWARM_WANTED task(s) running"
      return 0
    fi
    state="${#SWARM_TASKS[@]} of $SWARM_WANTED task(s) up; states: ${SWARM_STATES:-no task}"
    if [[ "$state" != "$last" ]]; then
      log "waiting for service $service ($state)"
      last=$state
    fi
    if ((SECONDS - start >= timeout)); then
      if [[ "$need" == one ]]; then
        die "service $service has no running task whose container runs after ${timeout}s ($state); see: docker service ps $service"
      fi
      die "not every task of service $service runs after ${timeout}s ($state); see: docker service ps $service"
    fi
    sleep 2
  done
}

# Stopping and starting services (the writers for the backup, the application for a restore). On a
# swarm a service is stopped by scaling it to 0: `docker stop` of a task's container would only make
# swarm start a new task. The engine's state is not told: the deployment replaces every service
# stopped this way later in the same run (the writers carry the backup's ID in a label, the API and
# its followers the version), and a step that fails scales back what it stopped.

# service_replicas SERVICE: the tasks SERVICE's spec asks for (a number), "global", or nothing
# when there is no such service.
service_replicas() {
  docker service inspect -f '{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{else}}global{{end}}' "$1" 2>/dev/null || true
}

# swarm_stop_grace SERVICE: the seconds SERVICE's tasks get to stop (its stop grace period; Docker's
# default 10 when unset).
swarm_stop_grace() {
  local ns
  ns=$(docker service inspect -f '{{or .Spec.TaskTemplate.ContainerSpec.StopGracePeriod 10000000000}}' "$1" 2>/dev/null || true)
  [[ "$ns" =~ ^[0-9]+$ ]] || ns=10000000000
  printf '%s' "$(((10#$ns + 999999999) / 1000000000))"
}

# swarm_live_tasks SERVICE...: "SERVICE_ID TASK STATE" for each task of the services whose container
# may still run (every state before complete/shutdown/failed/rejected). Swarm removes a task it was
# told to remove only once its container has stopped.
swarm_live_tasks() {
  local service ids
  for service; do
    # A service that is gone has no task left.
    ids=$(docker service ps --no-trunc -q "$service" 2>/dev/null) || continue
    [[ -n "$ids" ]] || continue
    # A task removed between the two calls is left out (inspect prints the others).
    # shellcheck disable=SC2086 # one argument per task ID
    docker inspect --type task -f '{{.ServiceID}} {{.ID}} {{.Status.State}}' $ids 2>/dev/null |
      awk '$3 ~ /^(new|allocated|pending|assigned|accepted|preparing|ready|starting|running)$/' || true
  done
}

# swarm_scale_down SERVICE...: scales the services to 0 and waits until none of their tasks'
# containers runs any more (each gets its own stop grace period; the wait ends 60 s after the
# longest). Dies when they do not stop.
swarm_scale_down() {
  local service grace timeout=0 args=() start live
  for service; do
    args+=("$service=0")
    grace=$(swarm_stop_grace "$service")
    ((grace > timeout)) && timeout=$grace
  done
  timeout=$((timeout + 60))
  live=$(docker service scale --detach "${args[@]}" 2>&1 >/dev/null) || die "could not scale ${args[*]}: ${live//$'\n'/ }"
  start=$SECONDS
  while :; do
    live=$(swarm_live_tasks "$@")
    [[ -z "$live" ]] && return 0
    if ((SECONDS - start >= timeout)); then
      die "$(wc -l <<<"$live") task(s) of $* still run ${timeout}s after they were scaled to 0; see: docker service ps $*"
    fi
    sleep 0.5
  done
}

# swarm_scale SERVICE=REPLICAS...: sets the services' replicas, without waiting for their tasks.
swarm_scale() {
  docker service scale --detach "$@" >/dev/null
}

# api_use_task TASK: the target is the container of TASK (of SWARM_TASKS), on its node.
api_use_task() {
  API_TARGET=${SWARM_TASK_NAME[$1]} API_HOST=${SWARM_TASK_HOST[$1]}
  API_ON=" on swarm node ${SWARM_TASK_NODE[$1]}"
  API_SUFFIX=" (in $API_TARGET$API_ON)"
}

# run_logged LOGFILE CMD...: run CMD with stdout+stderr into LOGFILE; print a progress line
# every 30 seconds so long runs are visibly alive. Returns CMD's exit status.
run_logged() {
  local logfile=$1 pid rc=0 started next
  shift
  started=$SECONDS
  next=$((started + 30))
  "$@" </dev/null >"$logfile" 2>&1 &
  pid=$!
  LIB_CHILD=$pid
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.2
    if ((SECONDS >= next)) && kill -0 "$pid" 2>/dev/null; then
      log "still running after $((SECONDS - started))s ($(wc -l <"$logfile") log lines so far)"
      next=$((SECONDS + 30))
    fi
  done
  wait "$pid" || rc=$?
  LIB_CHILD=""
  return "$rc"
}

# prepare_api_step [one|all]: the common start of the steps that run manage.py in the API
# container (migrate, static): API_CONTAINER is set, MANAGE is split into MANAGE_CMD, a work
# directory $WORK exists (removed on exit), and the container runs (waits up to
# API_START_TIMEOUT_SECONDS). It leaves the API_* target (api_use_container) on it. On a swarm
# (SWARM_NODE_HOSTS) API_CONTAINER is the API's service, and it waits for one running task of it
# (one, migrate's) or for every task swarm wants running (all, static's: each holds its own
# static files); SWARM_TASKS then lists the tasks, and the target is the first.
prepare_api_step() {
  if swarm_mode; then
    require_vars API_CONTAINER "the API's swarm service name; set by the deployment"
  else
    require_vars API_CONTAINER "the API container's name; set by the deployment"
  fi
  API_START_TIMEOUT_SECONDS="${API_START_TIMEOUT_SECONDS:-120}"
  require_int API_START_TIMEOUT_SECONDS 1
  docker_setup_env
  split_manage
  make_work_dir
  if swarm_mode; then
    swarm_setup_env
    swarm_wait_tasks "$API_CONTAINER" "$API_START_TIMEOUT_SECONDS" "${1:-one}"
    api_use_task "${SWARM_TASKS[0]}"
  else
    wait_running "$API_CONTAINER" "$API_START_TIMEOUT_SECONDS"
    api_use_container
  fi
}

# The API container a step talks to: API_TARGET, its name for `docker exec`; API_HOST, the engine
# that runs it ("": the one DOCKER_HOST names); API_ON, " on swarm node <node>" on a swarm, for
# messages ("in $API_TARGET$API_ON"); API_SUFFIX, " (in <container> on swarm node <node>)" on a
# swarm, for the summary lines, where the one host's say nothing.
# shellcheck disable=SC2034 # used by the step scripts that source this file
API_TARGET="" API_HOST="" API_ON="" API_SUFFIX=""

# api_use_container: the target is the one host's API_CONTAINER.
api_use_container() {
  # shellcheck disable=SC2034 # API_SUFFIX is used by the step scripts
  API_TARGET=$API_CONTAINER API_HOST="" API_ON="" API_SUFFIX=""
}

# api_docker ARGS...: docker against the engine that runs the target API container.
api_docker() {
  on_node "$API_HOST" docker "$@"
}
lib_remove_work() { rm -rf -- "$WORK"; }

# --- Leftovers of a killed run. ------------------------------------------------------------
# A cancelled `pulumi up` SIGKILLs the running step's script (docs/step-scripts.md), so its exit
# handler never removes its work directory or drops its scratch database. Both are named with the
# run's PID and this machine's tag; the next run removes those whose process is gone. Another run's,
# still alive or on another machine, are left alone and named.

# This machine's tag: 8 hex digits of its host name (scratch database names must stay short).
HOST_TAG=$(uname -n | sha256sum | cut -c1-8)

# pid_alive PID: true while a process with this PID exists on this machine.
pid_alive() {
  [[ -d "/proc/$1" ]]
}

# make_work_dir: WORK, a new work directory (removed on exit) named after the step and this run's
# PID, after removing the work directories killed runs left.
make_work_dir() {
  local tmp="${TMPDIR:-/tmp}" dir pid
  shopt -s nullglob
  for dir in "$tmp"/utilitarian-step-*.*.*; do
    pid=${dir#"$tmp"/utilitarian-step-*.}
    pid=${pid%%.*}
    if [[ ! "$pid" =~ ^[0-9]+$ ]] || pid_alive "$pid"; then continue; fi
    log "removing work directory $dir (left by an interrupted run, pid $pid)"
    rm -rf -- "$dir"
  done
  shopt -u nullglob
  WORK=$(mktemp -d "$tmp/utilitarian-step-$STEP.$$.XXXXXX")
  on_exit lib_remove_work
}

# scratch_db_name: a name for this run's scratch database (at most 63 characters).
scratch_db_name() {
  printf 'utilitarian_backup_verify_%s_%s_%s' "$(date -u +%s)" "$$" "$HOST_TAG"
}

# drop_stale_scratch_dbs DB < NAMES: of the scratch database names on stdin (one a line, as
# SCRATCH_DBS_SQL lists them), drop those of killed backups on this machine, via DB.
# shellcheck disable=SC2034 # used by backup.sh, which sources this file
SCRATCH_DBS_SQL="select datname from pg_database where datname like 'utilitarian\_backup\_verify\_%' order by 1"
drop_stale_scratch_dbs() {
  local via=$1 name pid
  while IFS= read -r name; do
    [[ -n "$name" ]] || continue
    if [[ "$name" =~ ^utilitarian_backup_verify_[0-9]+_([0-9]+)_([0-9a-f]{8})$ && "${BASH_REMATCH[2]}" == "$HOST_TAG" ]] && ! pid_alive "${BASH_REMATCH[1]}"; then
      pid=${BASH_REMATCH[1]}
      if pg_drop_db "$name" "$via"; then
        log "dropped scratch database $name (left by an interrupted backup, pid $pid)"
      else
        log "WARNING: could not drop scratch database $name, left by an interrupted backup; drop it by hand"
      fi
    else
      log "note: scratch database $name belongs to a backup still running or run on another machine; once none runs, drop it by hand"
    fi
  done
}

# The maintenance window's record. --------------------------------------------------------------
# shellcheck source-path=SCRIPTDIR source=window.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/window.sh"
