#!/usr/bin/env bash
# The main job: the dev stack (stacks/Pulumi.dev.yaml) on the local Docker engine.
#   bash scripts/dev-up.sh [pulumi up flags, e.g. --yes]
# Needs a Docker engine, Node 20+, Go 1.25+ (the first run builds the Pulumi engine from Go
# modules), pg_dump 15+ (postgresql-client) and, for the first build of the stand-in images, the
# Debian archive this machine's apt uses. The Pulumi CLI is toolchain/pulumi: the CLI and
# language host built from Go modules at the version package.json pins, the engine every test
# runs, never another `pulumi` on PATH. Its home (plugins) is ./.pulumi/home unless PULUMI_HOME
# says otherwise; the provider plugins are the real ones where they can be downloaded, else the
# stand-ins of test/provider (toolchain/provider-plugins.sh says which). State is kept in
# ./.pulumi (a local backend) unless PULUMI_BACKEND_URL says otherwise; secrets are generated
# once and stored encrypted in the stack (passphrase: PULUMI_CONFIG_PASSPHRASE, empty by default
# for dev).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() { echo "dev-up: $*" >&2; exit 1; }
docker version >/dev/null 2>&1 || fail "no Docker engine answers: start Docker (or set DOCKER_HOST)"
command -v pg_dump >/dev/null || fail "pg_dump is missing: install postgresql-client (15 or newer); backups run on this machine"
command -v go >/dev/null || fail "go is missing: install Go 1.25 or newer (toolchain/build.sh builds the Pulumi CLI with it)"

[[ node_modules/.package-lock.json -nt package-lock.json ]] || npm ci --no-audit --no-fund
pulumi() { bash toolchain/pulumi "$@"; }
bash toolchain/build.sh >/dev/null
bash test/fixtures/build-images.sh
export PULUMI_HOME="${PULUMI_HOME:-$PWD/.pulumi/home}"
bash toolchain/provider-plugins.sh "$PULUMI_HOME"

if [[ -z "${PULUMI_BACKEND_URL:-}" ]]; then
  mkdir -p .pulumi
  export PULUMI_BACKEND_URL="file://$PWD/.pulumi"
fi
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
pulumi stack select dev --create --non-interactive

# A secret is set once, from stdin (never on a command line), and kept across runs.
random() { head -c 36 /dev/urandom | base64 | tr -d '/+=\n'; }
ensure_secret() {
  local key=$1 value=$2
  if ! pulumi config get "$key" --stack dev >/dev/null 2>&1; then
    printf '%s' "$value" | pulumi config set --secret --stack dev "$key" >/dev/null
    echo "dev-up: generated $key"
  fi
}
ensure_secret utilitarian:secretKey "$(random)$(random)"
ensure_secret utilitarian:databasePassword "$(random)"
ensure_secret utilitarian:databaseAdminPassword "$(random)"
ensure_secret utilitarian:rabbitmqPassword "$(random)"
ensure_secret utilitarian:edgeAuthToken "$(random)"
# The stand-in API accepts the edge services' token from its environment (the real API keeps
# tokens in its database: create one in the admin and set utilitarian:edgeAuthToken to it).
if ! pulumi config get --path 'utilitarian:apiSecretEnv.STANDIN_ACCEPTED_TOKEN' --stack dev >/dev/null 2>&1; then
  pulumi config get utilitarian:edgeAuthToken --stack dev |
    pulumi config set --secret --path 'utilitarian:apiSecretEnv.STANDIN_ACCEPTED_TOKEN' --stack dev >/dev/null
fi

pulumi up --stack dev "$@"
