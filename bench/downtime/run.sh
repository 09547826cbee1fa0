#!/usr/bin/env bash
# Downtime benchmark (docs/benchmarks.md, "Downtime"): the 1.0.0 -> 1.1.0 upgrade of the
# stand-in stack, carried out by the project's `pulumi up` (the real engine, toolchain/pulumi) and by the vendor's runbook
# taken literally (runbook-literal.sh), on fresh stacks, several rounds in alternating order.
#
#   npm run bench:downtime -- [--rounds 3] [--payload-mb 300] [--ways project,literal] [--json FILE]
#
# --ways may add `project-writers-running`: the project's `up` with backup.stopWriters off.
# Needs a Docker engine, the stand-in images (test/fixtures/build-images.sh), the engine toolchain
# (toolchain/build.sh; both run here, cached) and Debian's `docker-registry` (apt-get install docker-registry). It
#   1. starts that registry on a free loopback port (Docker pulls from 127.0.0.0/8 over plain
#      HTTP without configuration), its storage in a temporary directory;
#   2. builds the benchmark's app images, each version's stand-in plus a layer of PAYLOAD_MB of
#      random bytes (Dockerfile.payload), and pushes them and the edge images to the registry;
#   3. removes the local copy of 1.1.0, so that the upgrade's pull is a real download;
#   4. runs the rounds (run.ts, under vitest, as the engine tests run);
#   5. removes everything it made: the stack (containers, network and volumes named with its
#      own prefix `bdt`), the registry's images, the registry process and its storage.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

ROUNDS=3
PAYLOAD_MB=300
WAYS=project,literal
JSON="$ROOT/test/.work/downtime-bench.json"
# The benchmark's own container/network/volume prefix: never `rh`, the tests' stand-in stack.
STACK_PREFIX=bdt
while (($#)); do
  case "$1" in
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    --payload-mb) PAYLOAD_MB=${2:?--payload-mb needs a number}; shift 2 ;;
    --ways) WAYS=${2:?--ways needs a comma-separated list}; shift 2 ;;
    --json) JSON=${2:?--json needs a file}; shift 2 ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown option $1; see the header of bench/downtime/run.sh" >&2; exit 2 ;;
  esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a whole number >= 1; got '$ROUNDS'" >&2; exit 2; }
[[ "$PAYLOAD_MB" =~ ^[0-9]+$ ]] || { echo "--payload-mb must be a whole number of MiB; got '$PAYLOAD_MB'" >&2; exit 2; }

start=$SECONDS
say() { printf '[bench:downtime %4ss] %s\n' "$((SECONDS - start))" "$*"; }

command -v docker-registry >/dev/null || { echo "Debian's docker-registry is not installed: apt-get install docker-registry" >&2; exit 1; }
docker version >/dev/null 2>&1 || { echo "no Docker engine answers; start dockerd" >&2; exit 1; }

say "type-checking the benchmark"
npx tsc --noEmit -p bench/downtime/tsconfig.json

say "stand-in images (cached by content)"
bash test/fixtures/build-images.sh >/dev/null
say "the Pulumi engine (cached by content)"
bash toolchain/build.sh >/dev/null

# A loopback port nothing listens on, below the ephemeral range (as test/support/ports.ts does).
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 12000))
    if [[ -z "$(ss -Hltn "sport = :$port")" ]]; then echo "$port"; return; fi
  done
  echo "no free loopback port found" >&2
  return 1
}

REGISTRY_PID=""
STORAGE="$(mktemp -d "${TMPDIR:-/var/tmp}/utilitarian-bench-registry.XXXXXX")"
PORT="$(free_port)"
REGISTRY="127.0.0.1:$PORT"

cleanup() {
  local status=$?
  say "cleaning up: stack '$STACK_PREFIX', images $REGISTRY/*, the registry (pid ${REGISTRY_PID:-none})"
  mapfile -t ids < <(docker ps -aq --filter "label=io.utilitarian.stack=$STACK_PREFIX")
  ((${#ids[@]} == 0)) || docker rm -f "${ids[@]}" >/dev/null || true
  docker network rm "$STACK_PREFIX-net" >/dev/null 2>&1 || true
  docker volume rm "$STACK_PREFIX-postgres-data" "$STACK_PREFIX-rabbitmq-data" >/dev/null 2>&1 || true
  mapfile -t tags < <(docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -F "$REGISTRY/" || true)
  ((${#tags[@]} == 0)) || docker rmi "${tags[@]}" >/dev/null || true
  if [[ -n "$REGISTRY_PID" ]]; then kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; fi
  rm -rf "$STORAGE"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$STORAGE/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STORAGE/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
docker-registry serve "$STORAGE/config.yml" >"$STORAGE/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 1 50); do
  curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://$REGISTRY/v2/" >/dev/null || { cat "$STORAGE/registry.log" >&2; echo "the registry did not start" >&2; exit 1; }
say "registry (docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')) on $REGISTRY, pid $REGISTRY_PID"

APP="$REGISTRY/utilitarian-standin/utilitarian"
for version in 1.0.0 1.1.0; do
  say "building $APP:$version: the stand-in plus $PAYLOAD_MB MiB of random bytes"
  # The classic builder: its layers live in the image store only, so removing the image below
  # leaves nothing a pull could reuse.
  if ! DOCKER_BUILDKIT=0 docker build -q --build-arg "FROM_IMAGE=utilitarian-standin/utilitarian:$version" \
    --build-arg "PAYLOAD_MB=$PAYLOAD_MB" -t "$APP:$version" - <"$HERE/Dockerfile.payload" >"$STORAGE/build.log" 2>&1; then
    cat "$STORAGE/build.log" >&2
    exit 1
  fi
done
for image in dlms-processor:1.0.0 poster:1.0.0 dlms-udp-server:1.0.0; do
  docker tag "utilitarian-standin/$image" "$REGISTRY/utilitarian-standin/$image"
done
for ref in "$APP:1.0.0" "$APP:1.1.0" "$REGISTRY/utilitarian-standin/dlms-processor:1.0.0" \
  "$REGISTRY/utilitarian-standin/poster:1.0.0" "$REGISTRY/utilitarian-standin/dlms-udp-server:1.0.0"; do
  say "pushing $ref"
  docker push -q "$ref" >/dev/null
done
# 1.1.0 exists only in the registry from here on: each upgrade pulls it (run.ts removes it again
# before each one).
docker rmi "$APP:1.1.0" >/dev/null

say "running $ROUNDS round(s)"
mkdir -p "$(dirname "$JSON")"
DOWNTIME_REGISTRY="$REGISTRY" DOWNTIME_ROUNDS="$ROUNDS" DOWNTIME_PAYLOAD_MB="$PAYLOAD_MB" DOWNTIME_JSON="$JSON" DOWNTIME_WAYS="$WAYS" \
  DOWNTIME_PREFIX="$STACK_PREFIX" npx vitest run --config bench/downtime/vitest.config.mts
say "done; figures in $JSON"
