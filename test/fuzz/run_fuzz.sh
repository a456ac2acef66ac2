#!/bin/sh
# Runs fuzz_frames for a bounded time on a scratch copy of the seed corpus (the tree's seeds are
# never written to). Exits non-zero if the fuzzer finds a crash or an invariant failure; the
# reproducer is kept in BUILD_DIR/fuzz-artifacts/.
#
# usage: run_fuzz.sh BUILD_DIR SECONDS     (BUILD_DIR configured with CXX=clang++ -Dfuzz=true)
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$1
duration=$2
fuzzer="$build_dir/test/fuzz/fuzz_frames"
seeds="$(cd "$(dirname "$0")" && pwd)/seeds/frames"

if [ ! -x "$fuzzer" ]; then
  echo "$fuzzer not found: configure with CXX=clang++ meson setup BUILD_DIR -Dfuzz=true" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp "$seeds"/* "$work/corpus/"
artifacts="$build_dir/fuzz-artifacts"
mkdir -p "$artifacts"

status=0
"$fuzzer" -max_total_time="$duration" -max_len=20000 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/corpus" || status=$?

if [ "$status" -ne 0 ]; then
  echo "fuzz_frames failed (exit $status); reproducer in $artifacts/" >&2
fi
exit "$status"
