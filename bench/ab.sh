#!/usr/bin/env bash
# A/B: runs one benchmark script in two checkouts, back to back, REPS times
# (A then B each time), so both see the same machine state; prints each
# run's output under a header. Make the checkouts with `git worktree add
# --detach DIR REV`; each builds its own release binaries (bench/common.sh).
# The examples' wasm components should be the same on both sides: the
# script warns when they differ (their panic messages embed the checkout's
# path, so copy one side's .wasm files over the other's to compare hosts only).
#
#   bash bench/ab.sh DIR_A DIR_B BENCH [REPS] [ARGS…]
#   bash bench/ab.sh /work/wt-base /work/wt-new cli 3 21
set -uo pipefail
a=$1 b=$2 bench=$3 reps=${4:-2}
shift $(( $# < 4 ? $# : 4 ))
sums() { (cd "$1/examples/target/wasm32-wasip2/release" 2>/dev/null && sha256sum ./*.wasm); }
for rep in $(seq "$reps"); do
  for dir in "$a" "$b"; do
    echo "## $bench · $dir ($(git -C "$dir" rev-parse --short HEAD)) · rep $rep · $(date -u +%T) · load $(cut -d' ' -f1 /proc/loadavg)"
    (cd "$dir" && bash "bench/$bench.sh" "$@")
  done
  [ "$(sums "$a")" = "$(sums "$b")" ] || echo "warning: the examples' wasm differ between $a and $b"
done
