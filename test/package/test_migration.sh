#!/usr/bin/env bash
# Migration test of the Debian package: gearman-job-server holding jobs in its -q libsqlite3
# queue is replaced by roundhouse, the same jobs are served to a `gearman` worker, then roundhouse
# is removed and gearman-job-server comes back.
#
#   test/package/test_migration.sh build-deb/roundhouse_<version>_<arch>.deb
#
# Where it runs: in a throw-away root, NOT on this machine's own package database. The root is
# this machine's /usr, /etc and /var seen through overlay mounts (writes go to a temporary upper
# directory), with a /dev and /run of its own, inside a private mount namespace (unshare -m), with
# policy-rc.d forbidding service starts. So the machine's gearman-job-server (other tests use it
# as the reference server), its files and its dpkg database are never touched; the mounts end
# with the namespace, even if the test is killed, and the upper layers are deleted afterwards
# from outside it. dpkg, apt-get and the maintainer scripts run for real inside that root
# (chroot). systemd does not run there, so the test starts each server itself, the way its unit
# does (same user, same command line), on a free loopback port.
#
# Needs root (mounts) and the .deb of gearman-job-server in /var/cache/apt/archives (tools/dev
# setup leaves it there); prints SKIP and exits 77 when the machine cannot do this. Exit 0 = pass.
set -euo pipefail

if [ "${1:-}" != "--inside" ]; then
  deb=${1:?usage: $0 ROUNDHOUSE_DEB}
  deb=$(realpath "$deb")
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the migration test needs root (overlay mounts in a private namespace)"
    exit 77
  fi
  if ! command -v unshare >/dev/null || ! unshare --mount true 2>/dev/null; then
    echo "SKIP: no private mount namespace here (unshare --mount failed)"
    exit 77
  fi
  work=$(mktemp -d /tmp/rh-migration.XXXXXX)
  rc=0
  unshare --mount --propagation private -- bash "$0" --inside "$deb" "$work" || rc=$?
  # The mounts lived only in the namespace that just ended: here $work holds plain directories
  # (the overlays' upper layers and empty mount points). --one-file-system: never cross a mount.
  if grep -q " $work/" /proc/mounts; then
    echo "test_migration.sh: $work still has mounts here; left in place" >&2
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
fi
deb=$2
work=$3

step() { printf '\n=== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

old_deb=$(ls /var/cache/apt/archives/gearman-job-server_*.deb 2>/dev/null | head -n 1 || true)
[ -n "$old_deb" ] || { echo "SKIP: no gearman-job-server .deb in /var/cache/apt/archives"; exit 77; }
dpkg-query -W -f='${Status}' gearman-job-server 2>/dev/null | grep -q 'install ok installed' ||
  { echo "SKIP: gearman-job-server is not installed on this machine"; exit 77; }

R=$work/root
pids=()
# Only processes are stopped here; nothing is deleted inside this namespace (see above).
cleanup() {
  if [ -s "$R/run/gearman/gearmand.pid" ]; then kill "$(cat "$R/run/gearman/gearmand.pid")" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

step "throw-away root: overlays of /usr /etc /var in a private mount namespace"
mkdir -p "$R"/{usr,etc,var,proc,dev,run,tmp,sys}
for d in usr etc var; do
  mkdir -p "$work/upper-$d" "$work/work-$d"
  mount -t overlay overlay \
    -o "lowerdir=/$d,upperdir=$work/upper-$d,workdir=$work/work-$d" "$R/$d"
done
for l in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$l" ]; then ln -s "$(readlink "/$l")" "$R/$l"; fi
done
mount -t proc proc "$R/proc"
# A /dev of its own (tmpfs with the few nodes dpkg, apt and the servers use), never the host's.
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read -r name major minor <<<"$node"
  mknod -m 0666 "$R/dev/$name" c "$major" "$minor"
done
mkdir "$R/dev/pts" "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
# apt's log wants a pty: a devpts instance of its own (newinstance), not the host's.
if mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts" 2>/dev/null; then
  ln -s pts/ptmx "$R/dev/ptmx"
fi
mount -t tmpfs tmpfs "$R/run"
chmod 1777 "$R/tmp"
printf '#!/bin/sh\n# services are started by the test, not by maintainer scripts\nexit 101\n' \
  > "$R/usr/sbin/policy-rc.d"
chmod +x "$R/usr/sbin/policy-rc.d"
in_root() { chroot "$R" "$@"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
wait_port() {  # wait_port PID NAME
  for _ in $(seq 1 100); do
    if gearadmin -h 127.0.0.1 -p "$port" --server-version >/dev/null 2>&1; then return 0; fi
    kill -0 "$1" 2>/dev/null || [ "$2" = gearmand ] || fail "$2 exited before answering"
    sleep 0.1
  done
  fail "$2 did not answer on port $port"
}

step "gearman-job-server with -q libsqlite3 (PARAMS as an operator would set them)"
cat > "$R/etc/default/gearman-job-server" <<EOF
# Parameters to pass to gearmand.
PARAMS="--listen=127.0.0.1 --port=$port \\
 --daemon \\
 --log-file=/var/log/gearman-job-server/gearmand.log \\
 -q libsqlite3 --libsqlite3-db=/var/lib/gearman/queue.db \\
 --verbose=INFO --job-retries=3 --keepalive --ssl"
EOF
cp "$R/etc/default/gearman-job-server" "$work/defaults.orig"
run cat "$R/etc/default/gearman-job-server"
install -d -o gearman -g gearman "$R/run/gearman" "$R/var/lib/gearman" \
  "$R/var/log/gearman-job-server"
# What the gearman-job-server unit runs: User=gearman, ExecStart=gearmand --pid-file=... $PARAMS
start_gearmand() {
  # shellcheck disable=SC1091
  ( . "$R/etc/default/gearman-job-server"
    eval "set -- $PARAMS"
    chroot --userspec=gearman:gearman "$R" /usr/sbin/gearmand \
      --pid-file=/run/gearman/gearmand.pid "$@" )
  wait_port 0 gearmand
}
stop_gearmand() {
  kill "$(cat "$R/run/gearman/gearmand.pid")"
  for _ in $(seq 1 100); do
    [ -e "$R/run/gearman/gearmand.pid" ] || return 0
    kill -0 "$(cat "$R/run/gearman/gearmand.pid")" 2>/dev/null || return 0
    sleep 0.1
  done
  fail "gearmand did not stop"
}
start_gearmand
run gearadmin -h 127.0.0.1 -p "$port" --server-version

step "background jobs submitted to gearmand"
submit() { run gearman -h 127.0.0.1 -p "$port" "$@"; }
submit -f rh_migrate -b "normal-1"
submit -f rh_migrate -b "normal-2"
submit -f rh_migrate -I -b "high-1"
submit -f rh_migrate -L -b "low-1"
submit -f rh_migrate -u fixed-unique -b "with-unique"
submit -f rh_other -b "other-1"
run gearadmin -h 127.0.0.1 -p "$port" --status
printf 'high-1\nlow-1\nnormal-1\nnormal-2\nwith-unique\n' > "$work/expected"
stop_gearmand
step "jobs before: gearmand's table"
run sqlite3 "$R/var/lib/gearman/queue.db" \
  "SELECT function_name, priority, unique_key <> '' AS has_unique, CAST(data AS TEXT)
   FROM gearman_queue ORDER BY function_name, priority, data"
before=$(sqlite3 "$R/var/lib/gearman/queue.db" "SELECT count(*) FROM gearman_queue")
[ "$before" = 6 ] || fail "gearmand holds $before rows, expected 6"

step "install roundhouse with apt (it stands in for gearman-job-server)"
cp "$deb" "$R/tmp/"
run in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  "/tmp/$(basename "$deb")"
run in_root dpkg-query -W -f='${Package} ${Version} ${Status}\n' roundhouse gearman-job-server
in_root dpkg-query -W -f='${Status}' gearman-job-server | grep -q 'deinstall ok config-files' ||
  fail "gearman-job-server was not removed (its configuration stays, as for any removal)"
run cat "$R/etc/roundhouse/roundhouse.conf"
grep -qx "port = $port" "$R/etc/roundhouse/roundhouse.conf" || fail "port not carried"
grep -qx "listen = 127.0.0.1" "$R/etc/roundhouse/roundhouse.conf" || fail "listen not carried"
grep -qx "verbose = INFO" "$R/etc/roundhouse/roundhouse.conf" || fail "verbose not carried"
grep -qx "job-retries = 3" "$R/etc/roundhouse/roundhouse.conf" || fail "job-retries not carried"
grep -qx "ssl" "$R/etc/roundhouse/roundhouse.conf" || fail "--ssl not carried"
grep -q "^# - --daemon: not carried" "$R/etc/roundhouse/roundhouse.conf" ||
  fail "--daemon not explained"
run ls -l "$R/var/lib/roundhouse"
[ ! -e "$R/var/lib/gearman/queue.db" ] || fail "gearmand's queue was not moved"
run in_root /usr/sbin/roundhouse --check-args --config-file /etc/roundhouse/roundhouse.conf
run in_root man -w roundhouse
run zcat "$R/usr/share/man/man8/roundhouse.8.gz" | head -n 5

step "roundhouse started as its unit does (User=roundhouse, ExecStart from the unit)"
unit="$R/lib/systemd/system/roundhouse.service"
[ -f "$unit" ] || unit="$R/usr/lib/systemd/system/roundhouse.service"
run grep -E '^(User|ExecStart|WorkingDirectory|Alias)=' "$unit"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
chroot --userspec=roundhouse:roundhouse "$R" sh -c "cd /var/lib/roundhouse && exec $exec_start" \
  > "$work/roundhouse.log" 2>&1 &
rh=$!
pids+=("$rh")
wait_port "$rh" roundhouse
run gearadmin -h 127.0.0.1 -p "$port" --server-version
step "jobs after: roundhouse's queue (imported from gearmand's table)"
run gearadmin -h 127.0.0.1 -p "$port" --status
run gearadmin -h 127.0.0.1 -p "$port" --priority-status
status=$(gearadmin -h 127.0.0.1 -p "$port" --status)
grep -qP '^rh_migrate\t5\t0\t0$' <<<"$status" || fail "rh_migrate does not hold 5 jobs"
grep -qP '^rh_other\t1\t0\t0$' <<<"$status" || fail "rh_other does not hold 1 job"
run sqlite3 "$R/var/lib/roundhouse/roundhouse.db" "SELECT count(*) FROM gearman_queue"
[ "$(sqlite3 "$R/var/lib/roundhouse/roundhouse.db" "SELECT count(*) FROM gearman_queue")" = 0 ] ||
  fail "the imported gearmand rows were not deleted"

step "the same jobs served to a gearman worker"
: > "$work/served"
run gearman -h 127.0.0.1 -p "$port" -w -f rh_migrate -c 5 -- \
  sh -c "cat >> '$work/served'; echo >> '$work/served'"
run cat "$work/served"
sort "$work/served" | diff -u "$work/expected" - || fail "served jobs differ from submitted ones"
[ "$(head -n 1 "$work/served")" = high-1 ] || fail "the HIGH job was not served first"
[ "$(tail -n 1 "$work/served")" = low-1 ] || fail "the LOW job was not served last"
run gearadmin -h 127.0.0.1 -p "$port" --status
kill -TERM "$rh"
wait "$rh" || fail "roundhouse exited with $?"
run tail -n 4 "$work/roundhouse.log"

step "remove roundhouse: configuration, queue and user stay"
run in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y roundhouse
[ ! -e "$R/usr/sbin/roundhouse" ] || fail "binary left behind"
[ -f "$R/etc/roundhouse/roundhouse.conf" ] || fail "remove deleted the configuration"
[ -f "$R/var/lib/roundhouse/roundhouse.db" ] || fail "remove deleted the queue"
in_root getent passwd roundhouse >/dev/null || fail "remove deleted the user"
run in_root dpkg-query -W -f='${Package} ${Status}\n' roundhouse

step "gearman-job-server back, with its own configuration untouched"
run in_root env DEBIAN_FRONTEND=noninteractive dpkg -i "/var/cache/apt/archives/$(basename "$old_deb")"
diff -u "$work/defaults.orig" "$R/etc/default/gearman-job-server" ||
  fail "/etc/default/gearman-job-server changed"
start_gearmand
run gearadmin -h 127.0.0.1 -p "$port" --server-version
run gearadmin -h 127.0.0.1 -p "$port" --status
stop_gearmand

step "purge roundhouse: its configuration goes; the queue database stays (it may hold jobs)"
run in_root dpkg --purge roundhouse
[ ! -e "$R/etc/roundhouse/roundhouse.conf" ] || fail "purge kept the configuration"
[ -f "$R/var/lib/roundhouse/roundhouse.db" ] || fail "purge deleted the queue database"

echo
echo "PASS: migration from gearman-job-server (-q libsqlite3) to roundhouse and back"
