# shellcheck shell=bash
# The maintenance window's record (docs/window-report.md), sourced by lib.sh. The steps of an
# upgrade or a rollback write what really happened into one directory beside the backups:
#
#   $BACKUP_DIR/windows/<UTC stamp>-<from>-to-<to>/
#     journal.jsonl       each step's start, end (with its facts) and failure; open and close
#     steps/<step>-<n>.log  each attempt's stderr, as `pulumi up` showed it
#     docker-events.jsonl   Docker's own events of the stack's containers and of image pulls
#     queue.tsv           RabbitMQ's queue depths, sampled while the window is open
#     proxy.log           the maintenance proxy's log over the window (its view of the outage)
#
# The backup (or, for a rollback, the restore) opens the window; verify closes it; a failed step
# leaves it open, so the re-run of `pulumi up` resumes it. Each close or failure writes the report
# (report.json, report.md, report.svg) with scripts/window-report.js. Recording never fails a step:
# a problem with it is logged and the step goes on. Steps run without BACKUP_DIR record nothing.

WINDOW_DIR=""
# The sampler's interval: each rabbitmqctl call starts an Erlang VM in the broker's container,
# 0.9 CPU seconds a call (measured: 5 calls, 4.49 s of the container's cpuacct), so every 10 s it
# takes about a tenth of a core from the window's work.
WINDOW_QUEUE_SAMPLE_SECONDS="${WINDOW_QUEUE_SAMPLE_SECONDS:-10}"
# How far before the window's opening Docker's events are read back, so the pull is seen.
WINDOW_EVENTS_LOOKBACK_SECONDS=900

# window_root: where the windows are, or nothing when this step has no BACKUP_DIR.
window_root() {
  [[ -n "${BACKUP_DIR:-}" ]] && printf '%s/windows' "$BACKUP_DIR"
}

# window_now: the time, ISO 8601 UTC with milliseconds.
window_now() {
  local ms
  ms=$(now_ms)
  printf '%s.%03dZ' "$(date -u -d "@$((ms / 1000))" +%Y-%m-%dT%H:%M:%S)" "$((ms % 1000))"
}

# window_append JSON_FIELDS: a journal line {"at": <now>, JSON_FIELDS}. Never fails (errexit).
window_append() {
  { printf '{"at":"%s",%s}\n' "$(window_now)" "$1" >>"$WINDOW_DIR/journal.jsonl"; } 2>/dev/null ||
    log "window: cannot write $WINDOW_DIR/journal.jsonl; this record is lost"
}

# window_stack CONTAINER: the stack label of CONTAINER (every container of a deployment has it).
window_stack() {
  docker inspect -f '{{index .Config.Labels "io.utilitarian.stack"}}' "$1" 2>/dev/null || true
}

# window_open FROM TO STACK: open a window for the change FROM -> TO, or resume the open one (a
# re-run after a failure); the opener's window_step_start then starts the recorder.
# WINDOW_STAGES (JSON, the plan's stages: key and title) labels its report.
window_open() {
  local from=$1 to=$2 stack=$3 root name
  root=$(window_root) || return 0
  mkdir -p -- "$root" || { log "window: cannot create $root; this window is not recorded"; return 0; }
  name=$(cat -- "$root/open" 2>/dev/null || true)
  if [[ -n "$name" && -d "$root/$name" && "$name" == *"-to-$to" ]]; then
    WINDOW_DIR="$root/$name"
    log "window: resuming $name (a step of it failed before)"
  else
    if [[ -n "$name" && -d "$root/$name" ]]; then
      # Another change is under way (a rollback after a failed upgrade): the failed window keeps
      # its report and is closed as left.
      WINDOW_DIR="$root/$name"
      window_append "\"event\":\"left\",\"for\":$(json_string "$from -> $to")"
      log "window: $name was left unfinished; a new window opens for $from -> $to"
    fi
    name="$(date -u +%Y%m%dT%H%M%SZ)-$from-to-$to"
    WINDOW_DIR="$root/$name"
    mkdir -p -- "$WINDOW_DIR/steps" || { log "window: cannot create $WINDOW_DIR"; WINDOW_DIR=""; return 0; }
    window_append "\"event\":\"open\",\"from\":$(json_string "$from"),\"to\":$(json_string "$to"),\"stack\":$(json_string "$stack"),\"stages\":${WINDOW_STAGES:-[]},\"images\":$(window_images_json)"
    { printf '%s\n' "$name" >"$root/open.tmp" && mv -f -- "$root/open.tmp" "$root/open"; } 2>/dev/null ||
      log "window: cannot mark $name open; later steps will not find it"
    log "window: opened $WINDOW_DIR"
  fi
}

# window_begin STEP [FROM TO]: the step's start in the window. With FROM and TO (the opener: the
# backup, or a rollback's restore) a window for FROM -> TO opens, unless it is open already; none
# opens on a first install (FROM none). Without them the step joins the open window, if any. A
# step its wrapper recorded (UTILITARIAN_WINDOW_STEP) only finds the window.
window_begin() {
  local step=$1 from=${2:-} to=${3:-}
  [[ -n "$(window_root)" ]] || return 0
  # Only the deployment opens windows (it gives WINDOW_STAGES): a backup run by hand records nothing.
  if [[ -z "${UTILITARIAN_WINDOW_STEP:-}" && -n "${WINDOW_STAGES:-}" && -n "$from" && "$from" != none ]]; then
    window_open "$from" "$to" "$(window_stack "${API_CONTAINER:-}")"
  fi
  window_find
  window_step_start "$step"
}

# window_images_json: WINDOW_IMAGES (the application's image reference for the new version, pulled
# before the window opens) with the ID each has here, as JSON: containers name their image by ID,
# Docker's pull events by reference.
window_images_json() {
  local ref id sep="" out="["
  for ref in ${WINDOW_IMAGES:-}; do
    id=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null) || continue
    out+="$sep{\"ref\":$(json_string "$ref"),\"id\":$(json_string "$id")}"
    sep=","
  done
  printf '%s]' "$out"
}

# window_find: WINDOW_DIR is the open window, if any.
window_find() {
  local root name
  root=$(window_root) || return 0
  name=$(cat -- "$root/open" 2>/dev/null || true)
  [[ -n "$name" && -d "$root/$name" ]] && WINDOW_DIR="$root/$name"
  return 0
}

# window_step_start STEP: record the step's start in the open window, copy its stderr into
# steps/STEP-<attempt>.log, and start the recorder unless it runs. A step run by a wrapper
# (writers-stopped.sh runs the backup) is recorded once, by the wrapper, which exports the step.
WINDOW_OWNER=false
window_step_start() {
  local step=$1 attempt log_file orig
  [[ -n "$WINDOW_DIR" ]] || return 0
  [[ "${UTILITARIAN_WINDOW_STEP:-}" == "$step" ]] && return 0
  attempt=$(($(grep -c "\"event\":\"start\",\"step\":\"$step\"" "$WINDOW_DIR/journal.jsonl" 2>/dev/null || true) + 1))
  log_file="steps/$step-$attempt.log"
  window_append "\"event\":\"start\",\"step\":\"$step\",\"attempt\":$attempt,\"log\":\"$log_file\""
  export UTILITARIAN_WINDOW_STEP=$step
  WINDOW_OWNER=true
  WINDOW_STEP=$step
  WINDOW_LOG=$log_file
  # stderr through tee; the exit handler writes to LIB_STDERR, which must be the tee too. The
  # original stays open as WINDOW_STDERR, to be restored once the tee has had everything.
  orig=$LIB_STDERR
  exec 2> >(tee -a -- "$WINDOW_DIR/$log_file" >&"$orig")
  WINDOW_TEE=$!
  exec {LIB_STDERR}>&2
  WINDOW_STDERR=$orig
  window_watch_start "$(window_stack_of_window)"
}

# window_step_end FACTS_JSON: the step succeeded, with its facts (a JSON object). The script that
# has the facts says so, also when its wrapper recorded the start (the backup's).
window_step_end() {
  [[ -n "$WINDOW_DIR" && -n "${UTILITARIAN_WINDOW_STEP:-}" ]] || return 0
  local facts=${1:-}
  [[ -n "$facts" ]] || facts='{}'
  window_append "\"event\":\"end\",\"step\":\"$UTILITARIAN_WINDOW_STEP\",\"facts\":$facts"
}

# window_after_exit RC REASON: from lib.sh's exit handler, after the reason is logged. A failed
# step is recorded with its reason, and the report written, with the window left open.
window_after_exit() {
  local rc=$1 reason=$2
  [[ -n "$WINDOW_DIR" && "$WINDOW_OWNER" == true ]] || return 0
  window_flush_log
  ((rc != 0)) || return 0
  window_append "\"event\":\"fail\",\"step\":\"$WINDOW_STEP\",\"reason\":$(json_string "$reason"),\"log\":\"$WINDOW_LOG\""
  window_watch_stop
  window_collect_proxy_log
  window_write_report >/dev/null
}

# window_flush_log: stderr back to the original, and the tee finished (within 5 s: a process that
# still holds its pipe must not hold up the step), so the log is complete.
window_flush_log() {
  local i
  [[ -n "${WINDOW_TEE:-}" ]] || return 0
  # `{LIB_STDERR}>&...` would open another descriptor: the tee's must be closed first.
  exec 2>&"$WINDOW_STDERR" {LIB_STDERR}>&-
  exec {LIB_STDERR}>&"$WINDOW_STDERR"
  for ((i = 0; i < 50; i++)); do
    kill -0 "$WINDOW_TEE" 2>/dev/null || break
    sleep 0.1
  done
  WINDOW_TEE=""
}

# window_close: verify succeeded; the last queue sample, the proxy's log, the report. Prints
# REPORT_FILE=<the Markdown report> for the stack output; when verify ran outside a window (a
# setting changed), the last completed window's, so the output keeps naming it.
window_close() {
  local root name
  root=$(window_root) || return 0
  if [[ -z "$WINDOW_DIR" || "$WINDOW_OWNER" != true ]]; then
    while IFS= read -r name; do
      if [[ -f "$root/$name/report.md" ]] && grep -q '"event":"close"' "$root/$name/journal.jsonl" 2>/dev/null; then
        printf 'REPORT_FILE=%s\n' "$root/$name/report.md"
        return 0
      fi
    done < <(find "$root" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | LC_ALL=C sort -r)
    return 0
  fi
  window_watch_stop
  window_sample_queues "$(window_stack_of_window)"
  window_collect_proxy_log
  window_append '"event":"close"'
  rm -f -- "$root/open"
  if window_write_report >/dev/null; then
    log "window: report written: $WINDOW_DIR/report.md"
    printf 'REPORT_FILE=%s\n' "$WINDOW_DIR/report.md"
  fi
}

# window_write_report: report.json, .md and .svg from the window's records.
window_write_report() {
  local out
  if ! command -v node >/dev/null; then
    log "window: node is not on PATH; the report is not written (the records are in $WINDOW_DIR)"
    return 1
  fi
  if ! out=$(node "$(dirname "${BASH_SOURCE[0]}")/window-report.js" write "$WINDOW_DIR" 2>&1); then
    log "window: the report could not be written: ${out//$'\n'/ }"
    return 1
  fi
  printf '%s\n' "$out"
}

# window_stack_of_window: the stack label the window's open event names.
window_stack_of_window() {
  sed -n '1s/.*"stack":"\([^"]*\)".*/\1/p' "$WINDOW_DIR/journal.jsonl" 2>/dev/null
}

# window_container STACK ROLE: the name of the stack's running container of ROLE, if any.
window_container() {
  docker ps --filter "label=io.utilitarian.stack=$1" --filter "label=io.utilitarian.role=$2" \
    --format '{{.Names}}' 2>/dev/null | head -n 1
}

# window_sample_queues STACK: one sample of every queue's depth into queue.tsv (a managed broker only).
window_sample_queues() {
  local broker now
  broker=$(window_container "$1" rabbitmq)
  [[ -n "$broker" ]] || return 0
  now=$(window_now)
  docker exec "$broker" rabbitmqctl list_queues -q --no-table-headers name messages </dev/null 2>/dev/null |
    awk -v at="$now" 'NF == 2 && $2 ~ /^[0-9]+$/ { printf "%s\t%s\t%s\n", at, $1, $2 }' >>"$WINDOW_DIR/queue.tsv" || true
}

# window_collect_proxy_log: the proxy's log since the window opened, when the stack has a proxy.
window_collect_proxy_log() {
  local proxy since
  proxy=$(window_container "$(window_stack_of_window)" proxy)
  [[ -n "$proxy" ]] || return 0
  since=$(sed -n '1s/^{"at":"\([^"]*\)".*/\1/p' "$WINDOW_DIR/journal.jsonl")
  docker logs --timestamps --since "$since" "$proxy" >"$WINDOW_DIR/proxy.log" 2>&1 || true
}

# window_engine_pid: the `pulumi` process this step runs under (the nearest ancestor of that
# name), or nothing.
window_engine_pid() {
  local pid=$PPID comm stat
  while [[ "$pid" =~ ^[0-9]+$ ]] && ((pid > 1)); do
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
    [[ "$comm" == pulumi ]] && { printf '%s' "$pid"; return 0; }
    # The parent is the field after the state, which follows the name in parentheses (which may
    # hold spaces and parentheses itself).
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
    read -r _ pid _ <<<"${stat##*) }"
  done
}

# window_watch_start STACK: the recorder of Docker's events and the queues, in a session of its
# own that holds none of the step's output (`pulumi up` waits for every holder of it). It runs
# while this window is open and `pulumi up` runs, at most 12 hours; a failed step or the close
# stops it. When `pulumi up` ends without either (an engine operation failed), it writes the report.
window_watch_start() {
  local stack=$1 pid since
  pid=$(cat -- "$WINDOW_DIR/watch.pid" 2>/dev/null || true)
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then return 0; fi
  rm -f -- "$WINDOW_DIR/watch.stop"
  # Resumed: from where the last recorder stopped (Docker keeps its last 256 events to read back).
  since=$(($(date -u +%s) - WINDOW_EVENTS_LOOKBACK_SECONDS))
  [[ -s "$WINDOW_DIR/docker-events.jsonl" ]] && since=$(tail -n 1 "$WINDOW_DIR/docker-events.jsonl" | sed -n 's/.*"timeNano":\([0-9]*\).*/\1/p' | awk '{ printf "%.9f", $1 / 1e9 + 0.000000001 }')
  setsid bash "$(dirname "${BASH_SOURCE[0]}")/window-watch.sh" "$WINDOW_DIR" "$stack" "$since" "$(window_engine_pid)" \
    </dev/null >/dev/null 2>>"$WINDOW_DIR/watch.log" {LIB_STDOUT}>&- {LIB_STDERR}>&- {WINDOW_STDERR}>&- &
  printf '%s\n' "$!" >"$WINDOW_DIR/watch.pid" || log "window: cannot write $WINDOW_DIR/watch.pid"
}

# window_watch_stop: stop the recorder and wait until it has written its last event.
window_watch_stop() {
  local pid i
  touch -- "$WINDOW_DIR/watch.stop"
  pid=$(cat -- "$WINDOW_DIR/watch.pid" 2>/dev/null || true)
  [[ -n "$pid" ]] || return 0
  kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  rm -f -- "$WINDOW_DIR/watch.pid"
}
