#!/usr/bin/env bash
# The cost of the default time limit: alternates calls without a limit
# (--timeout none) and with the default (10 min: epoch checks compiled in, a
# 1 s tick) and prints each call's execution ms, for BENCHMARKS.md
# ("The default time limit"). Usage: bench/timeout-cost.sh [ROUNDS]
# (after `cargo build` and building examples/ for wasm32-wasip2).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${CAIRN:-$root/target/debug/cairn}
R=$root/examples/target/wasm32-wasip2/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
C=$work/cache
bash "$root/examples/make-text.sh" "$work/book.txt" 32
bash "$root/examples/ml-pipeline/make-csv.sh" "$work/data.csv" 16 >/dev/null
words() { "$B" --cache-dir "$C" run --no-cache $1 --json "$R/words.wasm" top --text "@$work/book.txt" --n 3 | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_ms"])'; }
fit() { (cd "$root/examples/ml-pipeline" && "$B" --cache-dir "$C" run --no-cache $1 --json pipeline --data "@$work/data.csv" --hp '{learning-rate: 0.5, epochs: 10}') | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(c["ms"] for c in d["calls"] if c["export"].endswith("#fit")))'; }
# Compile both artefacts first.
for m in "--timeout none" ""; do words "$m" >/dev/null; fit "$m" >/dev/null; done
for _ in $(seq 1 "${1:-10}"); do
  for m in none default; do
    if [ "$m" = none ]; then t="--timeout none"; else t=""; fi
    echo "words $m $(words "$t")"
    echo "fit $m $(fit "$t")"
  done
done
