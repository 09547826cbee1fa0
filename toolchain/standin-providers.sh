#!/usr/bin/env bash
# Installs the stand-in docker, postgresql and command provider plugins (test/provider: the
# engine's gRPC provider protocol, carried out against the real Docker engine, PostgreSQL and
# shell) into a Pulumi home, each under the exact name and version its npm package asks the
# engine for, because the real ones cannot be built here: the Go module proxy refuses their
# provider modules (README, "The engine toolchain"). A Pulumi home that holds a real plugin of
# that version is left alone.
#   bash toolchain/standin-providers.sh PULUMI_HOME [PACKAGE...]   (default: docker postgresql command)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(dirname "$here")
home=${1:?usage: standin-providers.sh PULUMI_HOME [PACKAGE...]}
shift
packages=("$@")
((${#packages[@]})) || packages=(docker postgresql command)

out="$project/node_modules/.cache/utilitarian-standin-providers"
server="$out/test/provider/server.js"
# Compiled again only when a source changed (tsc takes seconds; the engine starts a plugin per run).
newest_source=$(find "$project/test/provider" "$project/test/support/provider-facts.ts" "$project/test/support/exec.ts" "$project/test/support/engine-types.ts" -name '*.ts' -newer "$server" 2>/dev/null | head -1 || true)
if [[ ! -f $server || -n $newest_source ]]; then
  (cd "$project" && npx tsc -p test/provider/tsconfig.json)
fi

for package in "${packages[@]}"; do
  version=$(node -p "require('$project/node_modules/@pulumi/$package/package.json').pulumi.version")
  dir="$home/plugins/resource-$package-v$version"
  binary="$dir/pulumi-resource-$package"
  if [[ -x $binary ]] && ! grep -q 'utilitarian-deploy stand-in' "$binary" 2>/dev/null; then
    continue # a real plugin of that version: never replaced
  fi
  mkdir -p "$dir"
  tmp=$(mktemp "$dir/.pulumi-resource-$package.XXXXXX")
  cat >"$tmp" <<LAUNCHER
#!/bin/sh
# utilitarian-deploy stand-in for pulumi-resource-$package v$version (toolchain/standin-providers.sh)
STANDIN_PLUGIN_VERSION=$version exec node "$server" $package "\$@"
LAUNCHER
  chmod +x "$tmp"
  mv "$tmp" "$binary"
done
