#!/usr/bin/env bash
# The real engine's floor (docs/benchmarks.md, "The engine's floor"): `pulumi preview` and a
# no-op `pulumi up` of an empty TypeScript program, and of a program with one resource (the
# component's SchemaGuard, served by the SDK's dynamic-provider plugin), with toolchain/pulumi
# and a local file backend. Rounds interleave the four commands, so load from other work on the
# machine falls on all of them alike; medians are printed.
#   bash bench/engine/run.sh [ROUNDS]      (default 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rounds=${1:-5}
project=$PWD
pulumi=$project/toolchain/pulumi
bash toolchain/build.sh >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/utilitarian-bench-engine.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PULUMI_CONFIG_PASSPHRASE="" PULUMI_HOME="$work/home" PULUMI_BACKEND_URL="file://$work/state"
mkdir -p "$PULUMI_HOME" "$work/state"

make_program() { # NAME INDEX_TS
  local dir=$work/$1
  mkdir -p "$dir"
  printf 'name: %s\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n' "$1" >"$dir/Pulumi.yaml"
  printf '{"name": "%s", "private": true, "dependencies": {"@pulumi/pulumi": "*"}}\n' "$1" >"$dir/package.json"
  printf '{"compilerOptions": {"strict": true, "target": "es2022", "module": "commonjs", "moduleResolution": "node", "skipLibCheck": true}, "files": ["index.ts"]}\n' >"$dir/tsconfig.json"
  printf '%s\n' "$2" >"$dir/index.ts"
  ln -s "$project/node_modules" "$dir/node_modules"
  (cd "$dir" && "$pulumi" stack init bench --non-interactive >/dev/null 2>&1 && "$pulumi" up --yes --stack bench --non-interactive >/dev/null)
}
make_program empty 'export const answer = 42;'
make_program guard "import { SchemaGuard } from \"$project/components/schemaGuard\";
export const version = new SchemaGuard(\"schema-guard\", { version: \"1.0.0\" }).version;"

declare -A times
timed() { # KEY DIR ARGS...
  local key=$1 dir=$2 started ended
  shift 2
  started=$(date +%s%N)
  (cd "$dir" && "$pulumi" "$@" --stack bench --non-interactive >/dev/null)
  ended=$(date +%s%N)
  times[$key]+="$(((ended - started) / 1000000)) "
}
for ((round = 1; round <= rounds; round++)); do
  for program in empty guard; do
    timed "$program preview" "$work/$program" preview --expect-no-changes
    timed "$program up" "$work/$program" up --yes --expect-no-changes
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "engine: $("$pulumi" version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $rounds rounds"
for command in preview up; do
  floor=$(median <<<"${times[empty $command]}")
  one=$(median <<<"${times[guard $command]}")
  printf '%-8s empty program %6d ms   one dynamic resource %6d ms   ratio %.2f\n' "$command" "$floor" "$one" "$(awk -v a="$one" -v b="$floor" 'BEGIN { print a / b }')"
done
