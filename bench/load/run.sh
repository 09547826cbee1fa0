#!/usr/bin/env bash
# Load benchmark (docs/benchmarks.md, "Load"): the 1.0.0 -> 1.1.0 upgrade of the stand-in stack
# under the steady rate of 10,000 meters every 15 minutes and a burst (default 500 msg/s for
# 60 s, started 2 s before the upgrade): the load test's scenario (test/support/load-upgrade.ts)
# at full size. Every message must be stored exactly once; the figures (rates held, peak depth per
# queue, the UDP server's buffer, time to drain, store rate after the burst) go to the JSON file.
#
#   npm run bench:load -- [--burst-rate 500] [--burst-seconds 60] [--json test/.work/load-bench.json]
#
# Needs a Docker engine (test/fixtures/docker-engine.sh starts one), the stand-in images
# (test/fixtures/build-images.sh) and the engine toolchain (toolchain/build.sh), both run here and
# cached. The upgrade is a real `pulumi up`. Its own stack prefix `bld`, removed at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BURST_RATE=500
BURST_SECONDS=60
JSON="$ROOT/test/.work/load-bench.json"
while (($#)); do
  case "$1" in
    --burst-rate) BURST_RATE=${2:?--burst-rate needs a number}; shift 2 ;;
    --burst-seconds) BURST_SECONDS=${2:?--burst-seconds needs a number}; shift 2 ;;
    --json) JSON=${2:?--json needs a file}; shift 2 ;;
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown option $1; see the header of bench/load/run.sh" >&2; exit 2 ;;
  esac
done
[[ "$BURST_RATE" =~ ^[1-9][0-9]*$ && "$BURST_SECONDS" =~ ^[1-9][0-9]*$ ]] || { echo "--burst-rate and --burst-seconds must be whole numbers >= 1" >&2; exit 2; }
[[ "$JSON" == /* ]] || JSON="$ROOT/$JSON"

start=$SECONDS
say() { printf '[bench:load %4ss] %s\n' "$((SECONDS - start))" "$*"; }
docker version >/dev/null 2>&1 || { echo "no Docker engine answers (bash test/fixtures/docker-engine.sh starts one)" >&2; exit 1; }

say "type-checking the benchmark"
npx tsc --noEmit -p bench/load/tsconfig.json
say "stand-in images (cached by content)"
bash test/fixtures/build-images.sh >/dev/null
say "the Pulumi engine (cached by content)"
bash toolchain/build.sh >/dev/null
say "burst of $BURST_RATE msg/s for $BURST_SECONDS s across the upgrade; load average $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_BENCH_BURST_RATE="$BURST_RATE" LOAD_BENCH_BURST_SECONDS="$BURST_SECONDS" LOAD_BENCH_JSON="$JSON" \
  npx vitest run --config bench/load/vitest.config.mts
say "done; figures in $JSON"
