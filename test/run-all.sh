#!/usr/bin/env bash
# Every test, on a fresh Debian machine or on one that already has what they need:
#   1. installs the Debian packages the real tests use, only those missing: docker.io,
#      postgresql, debootstrap, the shell linter, strace (the engine tests trace connect(2)),
#      chromium (headless: pages and pictures screenshotted) and a font for its text, and what
#      the multi-node swarm fixture uses (docker-registry, skopeo, pigz, iptables, iproute2,
#      curl);
#   2. starts dockerd when no engine answers;
#   3. builds the stand-in images (cached by content: seconds when nothing changed) and the
#      Pulumi engine from Go modules (toolchain/build.sh, cached by content the same way);
#   4. type-checks, lints (ESLint, Prettier's check), shellchecks the scripts, and runs every
#      vitest test, nothing skipped.
# Run as root (or with the packages and a Docker engine already there): `npm test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
say() { printf '[run-all %4ss] %s\n' "$((SECONDS - start))" "$*"; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
[[ -x /usr/lib/postgresql/15/bin/initdb ]] && command -v pg_dump >/dev/null || missing+=(postgresql postgresql-client)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v strace >/dev/null || missing+=(strace)
command -v chromium >/dev/null || missing+=(chromium)
# The multi-node swarm fixture (test/fixtures/swarm.sh): its registry and what copies images into
# it, the FORWARD rule for its bridge, namespaces and veths, the registry's readiness check, and
# unpigz, which dockerd uses (when there) to unpack pulled layers on more than one core.
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v unpigz >/dev/null || missing+=(pigz)
command -v iptables >/dev/null || missing+=(iptables)
command -v ip >/dev/null || missing+=(iproute2)
command -v curl >/dev/null || missing+=(curl)
# chromium's dependencies pull in some font (fontconfig's first choice is this one); named here
# because the screenshot checks need text drawn, whatever else changes.
[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
if ((${#missing[@]})); then
  if ((EUID != 0)); then
    echo "missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash test/fixtures/docker-engine.sh

say "building stand-in images"
bash test/fixtures/build-images.sh

say "building the Pulumi engine from Go modules (toolchain/build.sh)"
bash toolchain/build.sh >/dev/null

say "type-checking, linting and shellchecking"
npx tsc --noEmit -p tsconfig.json
npm run --silent lint
shellcheck -x scripts/*.sh test/fixtures/*.sh test/run-all.sh scripts/dev-up.sh bench/*/*.sh toolchain/*.sh toolchain/pulumi

say "smoke-testing the stand-in images"
bash test/fixtures/smoke.sh

say "running every test"
mkdir -p test/.work
status=0
npx vitest run --reporter=default --reporter=json --outputFile=test/.work/vitest.json || status=$?
# shellcheck disable=SC2016 # JavaScript, not shell, in single quotes
node -e '
  const r = require("./test/.work/vitest.json");
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
  if (r.numTotalTests === 0) process.exit(1);
' || status=1
say "done (exit $status)"
exit "$status"
