#!/usr/bin/env bash
# dist/gearmand-params-to-conf: gearman-job-server's PARAMS become roundhouse configuration, and
# whatever cannot be carried is said (doc/migration.md §1.3). Runs without root.
#   test/package/test_params_to_conf.sh ROUNDHOUSE_BIN
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:?usage: $0 ROUNDHOUSE_BIN}
tool=$top/dist/gearmand-params-to-conf
template=$top/dist/roundhouse.conf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi
}
convert() {  # convert NAME PARAMS -> $work/NAME.conf, $work/NAME.err
  printf 'PARAMS="%s"\n' "$2" > "$work/$1.defaults"
  "$tool" --roundhouse "$bin" --template "$template" "$work/$1.defaults" \
    > "$work/$1.conf" 2> "$work/$1.err"
}
valid() { "$bin" --check-args --config-file "$work/$1.conf"; }
has() { grep -qxF -- "$2" "$work/$1.conf"; }
has_note() { grep -qF -- "$2" "$work/$1.conf" && grep -qF -- "$2" "$work/$1.err"; }
active() { grep -cE "^$2( = .*)?$" "$work/$1.conf" || true; }

# Debian's shipped PARAMS.
convert debian '--listen=localhost --daemon --log-file=/var/log/gearman-job-server/gearmand.log'
check "debian: valid configuration" valid debian
check "debian: listen carried" has debian "listen = localhost"
check "debian: --daemon explained" has_note debian "--daemon: not carried"
check "debian: --log-file explained" has_note debian "--log-file=/var/log/gearman-job-server/gearmand.log: not carried"
check "debian: template's own settings kept" has debian "libsqlite3-db = /var/lib/roundhouse/roundhouse.db"

# A durable gearmand with short options, a repeated option and things roundhouse refuses.
convert full '--port=4731 -L 127.0.0.1 -q libsqlite3 --libsqlite3-db=/var/lib/gearman/q.db --libsqlite3-table=jobs --verbose=INFO --job-retries=3 -j5 -R -t8 --keepalive --ssl -v --libdrizzle-db=x bogus'
check "full: valid configuration" valid full
check "full: port replaces the template's" test "$(active full port)" = 1
check "full: port carried" has full "port = 4731"
check "full: -L carried" has full "listen = 127.0.0.1"
check "full: -q carried" has full "queue-type = libsqlite3"
check "full: table carried" has full "libsqlite3-table = jobs"
check "full: the last -j wins" has full "job-retries = 5"
check "full: job-retries once" test "$(active full job-retries)" = 1
check "full: -R carried" has full "round-robin"
check "full: -t8 carried" has full "threads = 8"
check "full: --ssl carried (TLS offered once certificates are in place)" has full "ssl"
check "full: -v explained" has_note full "-v: not carried"
check "full: plugin option refused" has_note full "--libdrizzle-db=x: refused by roundhouse"
check "full: stray word refused" has_note full "bogus: refused: not an option"
check "full: database path reported" test "$("$tool" --db-path "$work/full.defaults")" = /var/lib/gearman/q.db

# gearmand's HTTP protocol carries over (-r http with its port).
convert http '-p 4732 -r http --http-port=8088'
check "http: valid configuration" valid http
check "http: -r carried" has http "protocol = http"
check "http: --http-port carried" has http "http-port = 8088"
check "http: the status API keeps its own port" has http "status-port = 4780"

# No defaults file (gearman-job-server never installed): the template as it is.
"$tool" --roundhouse "$bin" --template "$template" "$work/none" > "$work/none.conf" 2> "$work/none.err"
check "no defaults file: template unchanged" cmp -s "$template" "$work/none.conf"
check "no defaults file: no database" test -z "$("$tool" --db-path "$work/none")"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"; exit 1
fi
echo "all checks passed"
