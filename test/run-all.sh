#!/usr/bin/env bash
# Every test, on a fresh Debian machine or on one that already has what they need:
#   1. installs the Debian packages the real tests use, only those missing: docker.io,
#      postgresql, debootstrap and the shell linter;
#   2. starts dockerd when no engine answers;
#   3. builds the stand-in images (cached by content: seconds when nothing changed);
#   4. type-checks, shellchecks the scripts, and runs every vitest test, nothing skipped.
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
if ((${#missing[@]})); then
  if ((EUID != 0)); then
    echo "missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The daemon's flags: containers keep running while the daemon restarts (--live-restore), and
# published ports are served by iptables, not by docker-proxy, which dies with the daemon
# (--userland-proxy=false). The fault test restarts the daemon mid-upgrade and counts on both
# (test/support/docker-daemon.ts); they are what production hosts should run with too (README).
DOCKERD_FLAGS=(--live-restore --userland-proxy=false)
DOCKERD_LOG=/var/log/utilitarian-dockerd.log
start_dockerd() {
  say "starting dockerd ${DOCKERD_FLAGS[*]}"
  (setsid dockerd "${DOCKERD_FLAGS[@]}" >>"$DOCKERD_LOG" 2>&1 &)
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && break
    sleep 1
  done
  docker version --format 'Docker engine {{.Server.Version}}' || { tail -20 "$DOCKERD_LOG" >&2; exit 1; }
}
if ! docker version >/dev/null 2>&1; then
  start_dockerd
else
  # A daemon an earlier run of this script started without the flags (and that runs nothing) is
  # restarted with them; any other daemon is left alone, and the fault test names what it lacks.
  pid=$(pgrep -x dockerd || true)
  if [[ -n "$pid" && "$(readlink "/proc/$pid/fd/1" 2>/dev/null)" == "$DOCKERD_LOG" ]] &&
    ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--live-restore --userland-proxy=false" &&
    [[ -z "$(docker ps -q)" ]]; then
    say "restarting dockerd (pid $pid) with ${DOCKERD_FLAGS[*]}"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
      [[ -e "/proc/$pid" ]] || break
      sleep 1
    done
    start_dockerd
  fi
fi

say "building stand-in images"
bash test/fixtures/build-images.sh

say "type-checking and shellchecking"
npx tsc --noEmit -p tsconfig.json
shellcheck -x scripts/*.sh test/fixtures/*.sh test/run-all.sh scripts/dev-up.sh

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
