#!/usr/bin/env bash
# The main job: the dev stack (stacks/Pulumi.dev.yaml) on the local Docker engine.
#   bash scripts/dev-up.sh [pulumi up flags, e.g. --yes]
# Needs a Docker engine, Node 20+, pg_dump 15+ (postgresql-client) and, for the first build of
# the stand-in images, the Debian archive this machine's apt uses. The Pulumi CLI is the
# project's pinned one (devDependency `pulumi`, the engine version the upgrade ordering is
# verified against): `npx pulumi` downloads it on first use into ~/.pulumi/versions/<version>
# (PULUMI_HOME moves that). State is kept in ./.pulumi (a local backend) unless
# PULUMI_BACKEND_URL says otherwise; secrets are generated once and stored encrypted in the
# stack (passphrase: PULUMI_CONFIG_PASSPHRASE, empty by default for dev).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() { echo "dev-up: $*" >&2; exit 1; }
docker version >/dev/null 2>&1 || fail "no Docker engine answers: start Docker (or set DOCKER_HOST)"
command -v pg_dump >/dev/null || fail "pg_dump is missing: install postgresql-client (15 or newer); backups run on this machine"

[[ node_modules/.package-lock.json -nt package-lock.json ]] || npm ci --no-audit --no-fund
# The pinned CLI from node_modules, never whatever `pulumi` is on PATH or newest in the registry.
pulumi() { npx --no -- pulumi "$@"; }
bash test/fixtures/build-images.sh

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
