#!/usr/bin/env bash
# The cache verbs on a large cache: fills one with N tiny entries (hello,
# one `run --batch`), then times `cache stats`, `cache ls`, `cache gc` under
# a budget that evicts about half. Prints one Markdown table.
#
#   bash bench/cache.sh [ENTRIES]
entries=${1:-20000}
source "$(dirname "$0")/common.sh"
hello=examples/target/wasm32-wasip2/release/hello.wasm
cache="$work/cache-$entries"
rm -rf "$cache"
for i in $(seq "$entries"); do echo "greet(\"n$i\", false)"; done > "$work/batch-$entries.txt"

ms() { # command… → wall ms of one run
  local t0 t1
  t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N)
  awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f", ns / 1e6}'
}
c() { "$cairn" --cache-dir "$cache" "$@"; }

echo "| $entries tiny entries | wall ms |"
echo "|---|---|"
echo "| fill: \`run --batch\` ($entries executed and stored) | $(ms c run --batch "$work/batch-$entries.txt" "$hello") |"
echo "| \`cache stats\` | $(ms c cache stats) |"
echo "| \`cache ls\` | $(ms c cache ls) |"
half=$((entries * 10))   # about half of the ~21 bytes per value, in bytes
echo "| \`cache gc --max-size $half\` | $(ms c cache gc --max-size "$half") |"
echo "| index file | $(du -m "$cache/index.redb" | cut -f1) MiB |"
