#!/usr/bin/env bash
# The seed pipeline dispatched to two workers through a JetStream server on
# loopback (release): cold wall time, what the client's cache holds after it,
# and the same flow from a third, empty cache. Needs nats-server.
#   bash bench/dispatch.sh [CSV_MB]
mb=${1:-256}
source "$(dirname "$0")/common.sh"
cairn=${CAIRN_BIN:-$cairn} # another build to compare with
csv="$work/data-$mb.csv"
if [ ! -f "$csv" ]; then examples/ml-pipeline/make-csv.sh "$csv" "$mb"; sleep 1; fi
start_tier
run() { # CACHE OPTIONS… → wall seconds
  local t0 t1
  t0=$(date +%s%N)
  (cd examples/ml-pipeline && "$cairn" --cache-dir "$1" run "${@:2}" pipeline \
    --data "@$OLDPWD/$csv" --hp '{learning-rate: 0.5, epochs: 10}' >/dev/null)
  t1=$(date +%s%N)
  awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.2f", ns / 1e9}'
}
echo "| seed pipeline, $mb MiB CSV | wall s |"
echo "|---|---|"
echo "| cold, dispatched to 2 workers | $(run "$dir/client" --remote "$url" --dispatch) |"
echo "| client cache afterwards | $(du -sh "$dir/client" | cut -f1) |"
echo "| the same flow from a third, empty cache (one shared hit) | $(run "$dir/third" --remote "$url") |"
echo "| cold, local only (no server) | $(run "$dir/local") |"
