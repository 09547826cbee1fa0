#!/usr/bin/env bash
# Daemon-restart benchmark (docs/benchmarks.md, "A Docker daemon restart and the UDP server"): what
# `udpServer.network` changes when dockerd restarts while meters push. Two stand-in UDP servers run
# side by side, one in the host's network (`host`, on UDP 4059) and one on a private network with
# its port published (`bridge`), both publishing to one stand-in RabbitMQ, each into its own queue.
# Every datagram goes to both, each from a new socket; the daemon is stopped (SIGTERM) and started
# again with its own command line while they arrive; then each queue is counted.
#
#   bash bench/daemon-restart/run.sh [--messages 5000] [--rate 500] [--restart-after 3]
#
# It RESTARTS THE LOCAL DOCKER DAEMON: run it on a test machine whose dockerd runs with
# --live-restore (test/fixtures/docker-engine.sh starts one so), never on a production host.
# Needs the stand-in images (test/fixtures/build-images.sh) and UDP 4059 free on this host.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MESSAGES=5000
RATE=500
RESTART_AFTER=3
while (($#)); do
  case "$1" in
    --messages) MESSAGES=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --restart-after) RESTART_AFTER=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
P=bench-dr
BRIDGE_PORT=24059
AMQP_PORT=25673
say() { printf '[daemon-restart] %s\n' "$*"; }
cleanup() {
  docker rm -f "$P-rabbitmq" "$P-udp-host" "$P-udp-bridge" >/dev/null 2>&1 || true
  docker network rm "$P-net" >/dev/null 2>&1 || true
}
trap cleanup EXIT

[[ "$(docker info --format '{{.LiveRestoreEnabled}}')" == true ]] || { echo "dockerd runs without --live-restore: a restart would stop every container (start it with test/fixtures/docker-engine.sh)" >&2; exit 1; }
pid=$(pgrep -x dockerd) || { echo "no local dockerd process to restart" >&2; exit 1; }
mapfile -d '' -t argv <"/proc/$pid/cmdline"
log=$(readlink "/proc/$pid/fd/1" || true)
[[ "$log" == /* && -f "$log" ]] || log=/dev/null

cleanup
docker network create "$P-net" >/dev/null
# A throwaway password: this broker lives for the length of the benchmark, on loopback only.
docker run -d --name "$P-rabbitmq" --network "$P-net" --network-alias rabbitmq -p "127.0.0.1:$AMQP_PORT:5672" \
  -e RABBITMQ_DEFAULT_USER=bench -e RABBITMQ_DEFAULT_PASS=bench utilitarian-standin/rabbitmq:3 >/dev/null
for _ in $(seq 90); do docker exec "$P-rabbitmq" rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1 && break; sleep 1; done
docker run -d --name "$P-udp-host" --network host -e "AMQP_CONNECTION_STRING=amqp://bench:bench@127.0.0.1:$AMQP_PORT//" \
  -e AMQP_DEFAULT_QUEUE_NAME=bench.host -e AMQP_DEFAULT_QUEUE_ROUTING_KEY=bench.host utilitarian-standin/dlms-udp-server:1.0.0 >/dev/null
docker run -d --name "$P-udp-bridge" --network "$P-net" -p "127.0.0.1:$BRIDGE_PORT:4059/udp" -e "AMQP_CONNECTION_STRING=amqp://bench:bench@rabbitmq:5672//" \
  -e AMQP_DEFAULT_QUEUE_NAME=bench.bridge -e AMQP_DEFAULT_QUEUE_ROUTING_KEY=bench.bridge utilitarian-standin/dlms-udp-server:1.0.0 >/dev/null
sleep 4

python3 "$HERE/send.py" "$MESSAGES" "$RATE" 4059 "$BRIDGE_PORT" &
sender=$!
sleep "$RESTART_AFTER"
stopped=$(date +%s.%N)
kill -TERM "$pid"
while [[ -e "/proc/$pid" ]]; do sleep 0.05; done
(setsid "${argv[@]}" >>"$log" 2>&1 &)
until docker version >/dev/null 2>&1; do sleep 0.05; done
say "daemon did not answer for $(python3 -c "import time; print(f'{time.time() - $stopped:.1f}')") s"
wait "$sender"
sleep 5
docker exec "$P-rabbitmq" rabbitmqctl -q list_queues name messages | while read -r queue stored; do
  [[ "$queue" == bench.* ]] && say "${queue#bench.}: $stored of $MESSAGES stored, $((MESSAGES - stored)) lost"
done
