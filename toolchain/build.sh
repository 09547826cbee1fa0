#!/usr/bin/env bash
# Builds the Pulumi engine this project runs, from the Go module proxy only, and prints the
# directory that holds it:
#   pulumi                          the CLI (toolchain/cli), version = package.json's devDependency `pulumi`
#   pulumi-language-nodejs          the Node.js language host (toolchain/language-host)
#   pulumi-resource-pulumi-nodejs   the dynamic-provider plugin: @pulumi/pulumi's own script
# The engine finds its bundled plugins (nodejs, pulumi-nodejs) beside the `pulumi` binary, so
# nothing goes on PATH. Finished binaries are kept by content in
# ${UTILITARIAN_TOOLCHAIN_CACHE:-~/.cache/utilitarian-deploy/toolchain}/<key>: a second run takes
# well under a second. A build is made in a scratch directory and renamed into place whole, so an
# interrupted one leaves nothing half-installed.
#   bash toolchain/build.sh            build if needed; print the directory
#   GO=/path/to/go bash toolchain/build.sh   another go command (the tests inject a failing one)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(dirname "$here")
go=${GO:-go}
say() { printf 'toolchain: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

command -v "$go" >/dev/null || fail "no Go toolchain ('$go' is not on PATH): install Go 1.25 or newer (this machine's image has it)"
command -v node >/dev/null || fail "node is not on PATH: the language host runs Node.js programs"

# The one place of the CLI's version: package.json. The wrapper's go.mod must agree.
pinned=$(node -p 'require(process.argv[1]).devDependencies.pulumi' "$project/package.json")
[[ $pinned =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "package.json pins devDependency pulumi '$pinned': expected an exact version such as 3.250.0"
required=$(awk '$1 == "github.com/pulumi/pulumi/pkg/v3" || ($1 == "require" && $2 == "github.com/pulumi/pulumi/pkg/v3") { print $NF }' "$here/cli/go.mod" | tr -d ' ')
required=${required#v}
[[ $required == "$pinned" ]] || fail "toolchain/cli/go.mod requires pkg/v3 v$required but package.json pins pulumi $pinned: in toolchain/cli run \`go get github.com/pulumi/pulumi/pkg/v3@v$pinned github.com/pulumi/pulumi/sdk/v3@v$pinned && go mod tidy\`"
host_version=$(awk '$1 == "github.com/pulumi/pulumi/sdk/v3" { print $2; exit } $1 == "require" && $2 == "github.com/pulumi/pulumi/sdk/v3" { print $3; exit }' "$here/language-host/go.mod")

dynamic_plugin="$project/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
[[ -f $dynamic_plugin ]] || fail "$dynamic_plugin is missing: run \`npm ci\` first (@pulumi/pulumi ships the dynamic-provider plugin)"

go_version=$("$go" env GOVERSION)
key=$( {
  echo "$go_version"
  cat "$here/build.sh" "$here/cli/go.mod" "$here/cli/go.sum" "$here/language-host/go.mod" "$here/language-host/go.sum" "$dynamic_plugin"
} | sha256sum | cut -c1-16)
cache=${UTILITARIAN_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/utilitarian-deploy/toolchain}
dest="$cache/pulumi-v$pinned-$key"
if [[ -x $dest/pulumi && -x $dest/pulumi-language-nodejs && -x $dest/pulumi-resource-pulumi-nodejs ]]; then
  echo "$dest"
  exit 0
fi

mkdir -p "$cache"
scratch=$(mktemp -d "$cache/.building.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# A scratch directory left by a build that was killed (SIGKILL runs no trap) is removed once it
# is an hour old: a live build finishes in minutes.
find "$cache" -maxdepth 1 -name '.building.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true

# Static binaries, no paths of this machine in them, only the modules go.sum lists.
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath"
version_flag=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version
build() { # build DIR PACKAGE OUTPUT VERSION
  local dir=$1 package=$2 output=$3 version=$4 started=$SECONDS
  say "downloading the modules of toolchain/$dir"
  (cd "$here/$dir" && "$go" mod download) ||
    fail "a module of toolchain/$dir/go.mod could not be downloaded (the go command named it above): check that the Go module proxy answers (\`go env GOPROXY\`; \`go list -m <module>@<version>\` for the one named)"
  say "building $package $version"
  (cd "$here/$dir" && "$go" build -ldflags "-s -w -X $version_flag=$version" -o "$scratch/$output" "$package") ||
    fail "go build of $package failed (its errors are above)"
  say "built $output in $((SECONDS - started)) s"
}
build cli github.com/pulumi/pulumi/pkg/v3/cmd/pulumi pulumi "v$pinned"
build language-host github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs pulumi-language-nodejs "$host_version"
install -m 0755 "$dynamic_plugin" "$scratch/pulumi-resource-pulumi-nodejs"

"$scratch/pulumi" version | grep -qx "v$pinned" || fail "the built CLI says $("$scratch/pulumi" version), not v$pinned"
# Another build may have finished first: keep its copy.
mv -T "$scratch" "$dest" 2>/dev/null || [[ -x $dest/pulumi ]] || fail "could not install into $dest"
trap - EXIT
rm -rf "$scratch"
say "installed in $dest"
echo "$dest"
