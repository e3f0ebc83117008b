#!/usr/bin/env bash
# CLI wall times of the small examples (release build): first run (miss),
# warm run (hit), and a new process re-executing an already-compiled
# component. Medians of N runs; prints one Markdown table.
#
#   bash bench/cli.sh [RUNS]
runs=${1:-21}
source "$(dirname "$0")/common.sh"
text="$work/book-64.txt"
if [ ! -f "$text" ]; then examples/make-text.sh "$text" 64; sleep 1; fi
wasm=examples/target/wasm32-wasip2/release

ms() { # command… → wall ms of one run
  local t0 t1
  t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N)
  awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f", ns / 1e6}'
}
repeat() { for _ in $(seq "$runs"); do ms "$@"; echo; done | median; }

hello=(run "$wasm/hello.wasm" greet --name Ada)
words=(run "$wasm/words.wasm" top --text "@$text" --n 3)

echo "| run | wall ms (median of $runs unless one) |"
echo "|---|---|"
for name in hello words; do
  declare -n cmd=$name
  rm -rf "$work/cli-cache"
  echo "| $name: first run, empty cache (hash inputs, compile, execute) | $(ms "$cairn" --cache-dir "$work/cli-cache" "${cmd[@]}") |"
  echo "| $name: warm run (hit) | $(repeat "$cairn" --cache-dir "$work/cli-cache" "${cmd[@]}") |"
  echo "| $name: new process, \`--no-cache\`, compiled code kept | $(repeat "$cairn" --cache-dir "$work/cli-cache" "${cmd[0]}" --no-cache "${cmd[@]:1}") |"
done
