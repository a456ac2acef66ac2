#!/usr/bin/env bash
# Has the real gearmand (Debian 1.1.20, libsqlite3 queue) write a queue file, then imports it with
# the storage unit-test binary ('[.gearmand-import]' in gearmand_import_test.cc, which lists the
# jobs submitted here; keep the two in step).
#
# Usage: gearmand_import_test.sh STORAGE_UNIT_TESTS_BINARY
# Exit 77 (meson: skipped) when gearmand or the gearman CLI is not installed.
#
# What gearmand 1.1.20 does, observed: it creates `gearman_queue` at start-up and writes each
# background job's row at once (one transaction per job; no --store-queue-on-shutdown needed),
# so the rows survive SIGKILL, which is how this script stops it. The gearman CLI sends a UUID
# unique for -b jobs without -u; a second submit with the same -u coalesces and writes nothing.
set -euo pipefail

unit_tests=${1:?usage: $0 STORAGE_UNIT_TESTS_BINARY}
gearmand=${GEARMAND:-/usr/sbin/gearmand}
if [[ ! -x $gearmand ]] || ! command -v gearman >/dev/null || ! command -v gearadmin >/dev/null; then
  echo "gearmand or gearman-tools not installed; skipping" >&2
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rh-gearmand-import-XXXXXX")
pid=
cleanup() {
  if [[ -n $pid ]]; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

db=$work/gearmand.db
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Another process may take the port between free_port and gearmand's bind; then gearmand exits
# and we try another. We only talk to the server once `getpid` answers with our child's pid, so
# jobs never go to someone else's server.
started=
for attempt in 1 2 3 4 5; do
  port=$(free_port)
  "$gearmand" -q libsqlite3 --libsqlite3-db="$db" --port "$port" --listen 127.0.0.1 \
    --log-file "$work/gearmand.log" --verbose INFO &
  pid=$!
  for _ in $(seq 1 100); do
    if [[ $(gearadmin -h 127.0.0.1 -p "$port" --getpid 2>/dev/null || true) == "$pid" ]]; then
      started=yes
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $started ]] && break
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
done
if [[ -z $started ]]; then
  echo "gearmand did not start; log:" >&2
  cat "$work/gearmand.log" >&2 || true
  exit 1
fi

submit() { gearman -h 127.0.0.1 -p "$port" "$@"; }
submit -f rh_import_a -b normal-1
submit -f rh_import_a -I -b high-1
submit -f rh_import_b -L -b low-1
submit -f rh_import_a -u dup -b first
submit -f rh_import_a -u dup -b second  # coalesces onto the previous job
submit -f rh_import_a -b normal-2
printf 'bin\0ary\n' | submit -f rh_import_b -b  # DATA from stdin, with a NUL byte

status=$(gearadmin -h 127.0.0.1 -p "$port" --status)
echo "gearmand status before the kill:"
echo "$status"

{ kill -9 "$pid" && wait "$pid"; } 2>/dev/null || true  # quiet: bash reports the SIGKILL
pid=

ROUNDHOUSE_GEARMAND_DB=$db "$unit_tests" '[gearmand-import]'
