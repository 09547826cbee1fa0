#!/usr/bin/env bash
# The maintenance window's recorder (scripts/window.sh starts and stops it):
#   window-watch.sh WINDOW_DIR STACK SINCE [ENGINE_PID]
# Appends Docker's own events (the containers' create, start, kill, die, stop, destroy and health
# changes; image pulls) from SINCE (Unix seconds) into WINDOW_DIR/docker-events.jsonl, and samples
# the stack's RabbitMQ queues into queue.tsv every WINDOW_QUEUE_SAMPLE_SECONDS. It ends when the
# window is no longer the open one, when watch.stop appears, or after 12 hours; and when the
# `pulumi` process ENGINE_PID has ended, after writing the report (no step failed or closed it).
# It holds no descriptor of the step that started it but its files: `pulumi up` waits until every
# holder of a step's output has closed it, and a background job gets every descriptor its shell
# has open, named or not.
for fd in "/proc/$$/fd/"*; do
  fd=${fd##*/}
  if ((fd > 2 && fd != 255)); then eval "exec $fd>&-"; fi
done
# shellcheck disable=SC2034 # STEP is read by lib.sh
STEP=window
# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e

WINDOW_DIR=$1
STACK=$2
SINCE=$3
ENGINE_PID=${4:-}
docker_setup_env

# Every event of every container on the engine would be too many: only these kinds are recorded,
# and the report keeps the stack's own (by its label; image pulls carry no label).
docker events --since "$SINCE" --format '{{json .}}' \
  --filter type=container --filter type=image \
  --filter event=create --filter event=start --filter event=kill --filter event=die \
  --filter event=stop --filter event=destroy --filter event=health_status --filter event=pull \
  </dev/null >>"$WINDOW_DIR/docker-events.jsonl" &
EVENTS=$!
stop_events() { kill "$EVENTS" 2>/dev/null; }
on_exit stop_events

name=$(basename -- "$WINDOW_DIR")
open_file="$(dirname -- "$WINDOW_DIR")/open"
deadline=$((SECONDS + 12 * 3600))
while [[ ! -e "$WINDOW_DIR/watch.stop" && "$(cat -- "$open_file" 2>/dev/null)" == "$name" ]] && ((SECONDS < deadline)); do
  window_sample_queues "$STACK"
  for ((i = 0; i < WINDOW_QUEUE_SAMPLE_SECONDS * 5; i++)); do
    [[ -e "$WINDOW_DIR/watch.stop" ]] && break
    sleep 0.2
  done
  if [[ -n "$ENGINE_PID" ]] && ! kill -0 "$ENGINE_PID" 2>/dev/null; then
    log "pulumi (pid $ENGINE_PID) has ended and left the window open: writing its report"
    stop_events
    window_collect_proxy_log
    window_write_report >/dev/null
    break
  fi
done
