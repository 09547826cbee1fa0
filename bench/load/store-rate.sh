#!/usr/bin/env bash
# Store rate of the stand-in edge services (docs/benchmarks.md, "Load"): how many readings per
# second the poster stores through the API, without the deployment, the upgrade or a load
# generator in the way. On a private network: the stand-in PostgreSQL, RabbitMQ and API (migrated)
# with the poster stopped; N readings are queued in `utilitarian.new_meter_readings` (persistent,
# confirmed); then the poster starts and the database is counted every 0.2 s until it holds all N.
# With --through processor, N DLMS envelopes are queued in `utilitarian.dlms_push_messages`
# instead and the processor runs as well (its per-message publish confirm included).
#
#   npm run bench:store-rate -- [--readings 3000] [--version 1.1.0] [--through poster|processor] [--rounds 1]
#                               [--concurrency N]   (the poster's POSTER_CONCURRENCY; default: the image's)
#                               [--before COMMIT]   (also the stand-ins of that commit, side by side)
#
# Prints one line per run: the rate from 10 % to 100 % of the readings stored (the containers'
# start left out), the time to all N, and rows stored against distinct meters (a duplicate shows).
# With --before, the API, poster and processor images are also built from COMMIT's
# test/fixtures/images (on the current base; tagged bench-store-rate/*, removed at the end), and
# every round measures both, in an order that alternates; the medians close the output.
# Needs a Docker engine and the stand-in images (test/fixtures/build-images.sh, run here: cached).
# Its own names (`bsr-*`), removed at the end; nothing is published on the host.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/../.."
READINGS=3000
VERSION=1.1.0
THROUGH=poster
ROUNDS=1
CONCURRENCY=
BEFORE=
while (($#)); do
  case "$1" in
    --readings) READINGS=${2:?}; shift 2 ;;
    --version) VERSION=${2:?}; shift 2 ;;
    --through) THROUGH=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --concurrency) CONCURRENCY=${2:?}; shift 2 ;;
    --before) BEFORE=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[[ "$READINGS" =~ ^[1-9][0-9]*$ && "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "--readings and --rounds must be whole numbers >= 1" >&2; exit 2; }
[[ "$THROUGH" == poster || "$THROUGH" == processor ]] || { echo "--through must be poster or processor" >&2; exit 2; }

P=bsr
TOKEN=bench-store-rate-token
# Throwaway credentials: this stack lives for the length of the benchmark, on a private network.
AMQP="amqp://bench:bench@rabbitmq:5672//"
DB_URL="postgres://postgres:bench@postgres:5432/utilitarian"
IMAGES=utilitarian-standin
OLD=bench-store-rate
RESULTS=$(mktemp)
say() { printf '[store-rate] %s\n' "$*"; }
cleanup() {
  docker rm -f "$P-postgres" "$P-rabbitmq" "$P-api" "$P-poster" "$P-processor" >/dev/null 2>&1 || true
  docker network rm "$P-net" >/dev/null 2>&1 || true
}
cleanup_all() {
  cleanup
  if [[ -n "$BEFORE" ]]; then
    docker rmi "$OLD/utilitarian:$VERSION" "$OLD/poster:before" "$OLD/dlms-processor:before" >/dev/null 2>&1 || true
  fi
  rm -f "$RESULTS"
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM

docker version >/dev/null 2>&1 || { echo "no Docker engine answers (bash test/fixtures/docker-engine.sh starts one)" >&2; exit 1; }
bash test/fixtures/build-images.sh >/dev/null

count() { docker exec "$P-postgres" psql -X -qAt -U postgres -d utilitarian -c "$1"; }
now() { date +%s.%N; }

# round <label> <api image> <poster image> <processor image>
round() {
  local label=$1 api_image=$2 poster_image=$3 processor_image=$4
  cleanup
  docker network create "$P-net" >/dev/null
  docker run -d --name "$P-postgres" --network "$P-net" --network-alias postgres \
    -e POSTGRES_PASSWORD=bench -e POSTGRES_DB=utilitarian "$IMAGES/postgres:15" >/dev/null
  docker run -d --name "$P-rabbitmq" --network "$P-net" --network-alias rabbitmq \
    -e RABBITMQ_DEFAULT_USER=bench -e RABBITMQ_DEFAULT_PASS=bench "$IMAGES/rabbitmq:3" >/dev/null
  for _ in $(seq 90); do docker exec "$P-postgres" pg_isready -q -U postgres -d utilitarian && break; sleep 1; done
  docker run -d --name "$P-api" --network "$P-net" --network-alias api -e SECRET_KEY=bench-store-rate \
    -e "DATABASE_URL=$DB_URL" -e "AMQP_CONNECTION_STRING=$AMQP" -e "STANDIN_ACCEPTED_TOKEN=$TOKEN" \
    "$api_image" >/dev/null
  docker exec "$P-api" python manage.py migrate --no-input >/dev/null
  for _ in $(seq 90); do docker exec "$P-rabbitmq" rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1 && break; sleep 1; done

  local queue=utilitarian.new_meter_readings
  [[ "$THROUGH" == processor ]] && queue=utilitarian.dlms_push_messages
  # Queue the readings with the edge images' own pika, from a throwaway container.
  docker run --rm --network "$P-net" -e "AMQP_CONNECTION_STRING=$AMQP" "$IMAGES/poster:1.0.0" python -c '
import base64, json, sys
import pika
from standin_common import amqp_parameters, declare_queue
n, queue, through = int(sys.argv[1]), sys.argv[2], sys.argv[3]
connection = pika.BlockingConnection(amqp_parameters())
channel = connection.channel()
declare_queue(channel, "utilitarian", queue)
channel.confirm_delivery()
for i in range(n):
    reading = {"meter": f"SR-{i}", "value": i + 0.5, "timestamp": "2026-01-01T00:00:00+00:00"}
    if through == "processor":
        reading = {"payload": base64.b64encode(json.dumps(reading).encode()).decode(), "source": "bench", "received_at": "2026-01-01T00:00:00+00:00", "peer": "127.0.0.1:1"}
    else:
        reading["source"] = "bench"
    channel.basic_publish("utilitarian", queue, json.dumps(reading).encode(), pika.BasicProperties(content_type="application/json", delivery_mode=2))
connection.close()
' "$READINGS" "$queue" "$THROUGH"

  local edge=(-e "AMQP_CONNECTION_STRING=$AMQP" -e UTILITARIAN_BASE_URL=http://api:8000 -e "UTILITARIAN_AUTH_TOKEN=$TOKEN")
  local started
  started=$(now)
  local poster_env=()
  [[ -n "$CONCURRENCY" ]] && poster_env=(-e "POSTER_CONCURRENCY=$CONCURRENCY")
  docker run -d --name "$P-poster" --network "$P-net" "${edge[@]}" "${poster_env[@]}" "$poster_image" >/dev/null
  [[ "$THROUGH" == processor ]] && docker run -d --name "$P-processor" --network "$P-net" "${edge[@]}" "$processor_image" >/dev/null
  local stored=0 tenth="" at="" deadline
  deadline=$(( $(date +%s) + 1800 ))
  while ((stored < READINGS)); do
    (( $(date +%s) < deadline )) || { say "gave up after 30 min: $stored of $READINGS stored"; return 1; }
    sleep 0.2
    stored=$(count "select count(*) from readings_meterreading")
    at=$(now)
    [[ -z "$tenth" ]] && ((stored * 10 >= READINGS)) && tenth="$at $stored"
  done
  local distinct
  distinct=$(count "select count(distinct upper(meter)) from readings_meterreading")
  read -r tenth_at tenth_count <<<"$tenth"
  python3 -c '
import sys
n, started, tenth_at, tenth_count, done_at, stored, distinct, through, label, results = sys.argv[1:]
n, tenth_count, stored, distinct = int(n), int(tenth_count), int(stored), int(distinct)
rate = (stored - tenth_count) / (float(done_at) - float(tenth_at)) if float(done_at) > float(tenth_at) else float("nan")
print(f"[store-rate] {label}, through the {through}: {rate:.1f} readings/s (10 % to 100 %); all {n} stored {float(done_at) - float(started):.1f} s after the start; rows {stored}, distinct meters {distinct}")
with open(results, "a") as f:
    f.write(f"{label}\t{rate:.1f}\n")
' "$READINGS" "$started" "$tenth_at" "$tenth_count" "$at" "$stored" "$distinct" "$THROUGH" "$label" "$RESULTS"
}

if [[ -n "$BEFORE" ]]; then
  commit=$(git rev-parse --short "$BEFORE^{commit}")
  src=$(mktemp -d)
  git archive "$commit" test/fixtures/images | tar -x -C "$src"
  say "building the stand-ins of $commit ($OLD/*)"
  ctx="$src/test/fixtures/images"
  docker build -q --build-arg "BASE=$IMAGES/base:latest" --build-arg "VERSION=$VERSION" -t "$OLD/utilitarian:$VERSION" -f "$ctx/utilitarian/Dockerfile" "$ctx" >/dev/null
  docker build -q --build-arg "BASE=$IMAGES/base:latest" -t "$OLD/poster:before" -f "$ctx/poster/Dockerfile" "$ctx" >/dev/null
  docker build -q --build-arg "BASE=$IMAGES/base:latest" -t "$OLD/dlms-processor:before" -f "$ctx/dlms-processor/Dockerfile" "$ctx" >/dev/null
  rm -rf "$src"
fi

now_images=("$IMAGES/utilitarian:$VERSION" "$IMAGES/poster:1.0.0" "$IMAGES/dlms-processor:1.0.0")
old_images=("$OLD/utilitarian:$VERSION" "$OLD/poster:before" "$OLD/dlms-processor:before")
say "$ROUNDS round(s) of $READINGS readings, API $VERSION, through the $THROUGH${CONCURRENCY:+, POSTER_CONCURRENCY=$CONCURRENCY}${BEFORE:+, against the stand-ins of $BEFORE}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
  if [[ -z "$BEFORE" ]]; then
    round now "${now_images[@]}"
  elif ((r % 2)); then
    round "before ($commit)" "${old_images[@]}"
    round now "${now_images[@]}"
  else
    round now "${now_images[@]}"
    round "before ($commit)" "${old_images[@]}"
  fi
done
python3 -c '
import statistics, sys
by = {}
for line in open(sys.argv[1]):
    label, rate = line.rstrip("\n").split("\t")
    by.setdefault(label, []).append(float(rate))
for label, rates in by.items():
    print(f"[store-rate] median {label}: {statistics.median(rates):.1f} readings/s over {len(rates)} run(s)")
' "$RESULTS"
say "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
