#!/bin/sh
# Runs every fuzz target (fuzz_frames, fuzz_http, fuzz_segment, fuzz_jenkins, fuzz_status_http,
# fuzz_tls),
# SECONDS split evenly between them, so the whole run stays within SECONDS plus start-up, on
# scratch copies of their seed corpora
# (the tree's seeds are never written to). Exits non-zero if a fuzzer finds a crash or an
# invariant failure; the reproducer is kept in BUILD_DIR/fuzz-artifacts/.
#
# usage: run_fuzz.sh BUILD_DIR SECONDS     (BUILD_DIR configured with CXX=clang++ -Dfuzz=true)
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$1
duration=$2
targets="frames http segment jenkins status_http tls"
# Each target gets an equal share of the time, on its own seed directory.
count=$(echo $targets | wc -w)
share=$((duration / count))
if [ "$share" -lt 1 ]; then share=1; fi
artifacts="$build_dir/fuzz-artifacts"
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

status=0
for target in $targets; do
  fuzzer="$build_dir/test/fuzz/fuzz_$target"
  seeds="$(cd "$(dirname "$0")" && pwd)/seeds/$target"
  if [ ! -x "$fuzzer" ]; then
    echo "$fuzzer not found: configure with CXX=clang++ meson setup BUILD_DIR -Dfuzz=true" >&2
    exit 2
  fi
  mkdir "$work/$target"
  cp "$seeds"/* "$work/$target/"
  rc=0
  "$fuzzer" -max_total_time="$share" -max_len=20000 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/$target" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "fuzz_$target failed (exit $rc); reproducer in $artifacts/" >&2
    status=$rc
  fi
done
exit "$status"
