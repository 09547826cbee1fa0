#!/usr/bin/env bash
# The resource plugins the program's npm packages ask for (docker, postgresql, command), in a
# Pulumi home, for the main job: each real plugin `pulumi plugin install` can download, and in
# place of one it cannot, the stand-in of test/provider, said loudly. On these machines no
# Pulumi download site answers and the Go module proxy refuses the providers' modules, so the
# stand-ins are what runs here (README, "The engine toolchain"). A plugin already installed,
# real or stand-in, is kept: to replace a stand-in by the real plugin later, run
# `PULUMI_HOME=<home> toolchain/pulumi plugin install resource NAME VERSION --reinstall`.
#   bash toolchain/provider-plugins.sh PULUMI_HOME
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(dirname "$here")
home=${1:?usage: provider-plugins.sh PULUMI_HOME}
bin=$(bash "$here/build.sh")
for package in docker postgresql command; do
  version=$(node -p "require('$project/node_modules/@pulumi/$package/package.json').pulumi.version")
  [[ -x $home/plugins/resource-$package-v$version/pulumi-resource-$package ]] && continue
  if PULUMI_HOME=$home "$bin/pulumi" plugin install resource "$package" "$version" --non-interactive >/dev/null 2>&1; then
    echo "provider-plugins: installed the real $package $version" >&2
  else
    echo "provider-plugins: the real $package $version plugin cannot be downloaded or built here; using the stand-in of test/provider (the real Docker engine, PostgreSQL and shell, driven by the engine's provider protocol)" >&2
    bash "$here/standin-providers.sh" "$home" "$package"
  fi
done
