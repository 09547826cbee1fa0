# shellcheck shell=bash
# shellcheck disable=SC2317 # the functions defined in pg_clients_direct are called by the scripts
# Sourced by backup.sh and restore.sh, after lib.sh and pg_setup_env.
#
# On Debian and Ubuntu, psql, pg_dump and pg_restore on PATH are links to pg_wrapper, a Perl
# script that picks the client binary to run: about 25 ms of CPU and 50 ms of wall time at each
# start, and these scripts start a dozen. With PGHOST set, as both scripts require, pg_wrapper
# ignores PGCLUSTER and its cluster maps and runs the newest installed
# /usr/lib/postgresql/<version>/bin/<command>, with PGSYSCONFDIR set to /etc/postgresql-common
# unless it is set already (pg_wrapper(1); /usr/share/postgresql-common/pg_wrapper). pg_clients_direct
# does the same once: for each of the three commands that is pg_wrapper on PATH, a shell function
# of the same name runs that binary, and PG_DUMP, PG_RESTORE and PSQL name what to run from child
# shells, which do not see the functions. A command that is not pg_wrapper (another distribution's
# client, a test's stand-in) is left as it is.
PG_DUMP=pg_dump
PG_RESTORE=pg_restore
PSQL=psql
pg_minor() { # VERSION: the part after the dot, 0 without one
  if [[ "$1" == *.* ]]; then printf '%d' "$((10#${1#*.}))"; else printf 0; fi
}
pg_clients_direct() {
  local tool path target bin best version best_version
  [[ -n "${PGHOST:-}" ]] || return 0
  for tool in psql pg_dump pg_restore; do
    path=$(type -P "$tool") || continue
    target=$(readlink -f -- "$path") || continue
    [[ "$target" == /usr/share/postgresql-common/pg_wrapper ]] || continue
    best="" best_version=""
    for bin in /usr/lib/postgresql/*/bin/"$tool"; do
      [[ -x "$bin" ]] || continue
      version=${bin#/usr/lib/postgresql/}
      version=${version%%/*}
      [[ "$version" =~ ^[0-9]+(\.[0-9]+)?$ ]] || continue
      # Versions are 9.6, 10, 15...: compare major, then minor (0 when there is none).
      if [[ -z "$best" ]] || ((${version%%.*} > ${best_version%%.*})) ||
        ((${version%%.*} == ${best_version%%.*} && $(pg_minor "$version") > $(pg_minor "$best_version"))); then
        best=$bin
        best_version=$version
      fi
    done
    [[ -n "$best" ]] || continue
    export PGSYSCONFDIR="${PGSYSCONFDIR:-/etc/postgresql-common}"
    case "$tool" in
    psql)
      PSQL=$best
      psql() { "$PSQL" "$@"; }
      ;;
    pg_dump)
      PG_DUMP=$best
      pg_dump() { "$PG_DUMP" "$@"; }
      ;;
    pg_restore)
      PG_RESTORE=$best
      pg_restore() { "$PG_RESTORE" "$@"; }
      ;;
    esac
  done
}
