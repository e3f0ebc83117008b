#!/usr/bin/env bash
# The seed pipeline on a large CSV, end to end through the CLI (release build):
# cold run, warm re-runs (median of N), changed hyper-parameters, and the
# second flow over the shared training sub-flow. Prints one Markdown table.
#
#   bash bench/pipeline.sh [CSV_MB] [WARM_RUNS]
mb=${1:-256}
runs=${2:-21}
source "$(dirname "$0")/common.sh"
csv="$work/data-$mb.csv"
if [ ! -f "$csv" ]; then
  examples/ml-pipeline/make-csv.sh "$csv" "$mb"
  sleep 1 # let the timestamp settle, so `stat` can vouch for the file
fi
cache="$work/cache"
rm -rf "$cache"

# run TASK EPOCHS → prints "wall_ms executed hits bytes_hashed"
run() {
  local t0 t1 out
  t0=$(date +%s%N)
  out=$(cd examples/ml-pipeline && "$cairn" --cache-dir "../../$cache" run --json "$1" \
        --data "@../../$csv" --hp "{learning-rate: 0.5, epochs: $2}")
  t1=$(date +%s%N)
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sys.argv[2], d["executed"], d["hits"], d["bytes_hashed"])' \
    "$out" "$(( (t1 - t0) / 1000 ))"
}

ms_median() { median | awk '{printf "%.1f", $1 / 1000}'; }
spread() { sort -n | awk '{a[NR]=$1} END {printf "%.1f–%.1f", a[1]/1000, a[NR]/1000}'; }

row() { # label, "us executed hits bytes"
  set -- "$1" $2
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$(awk -v us="$2" 'BEGIN {printf "%.1f", us / 1000}')" "$3" "$4" "$5"
}

echo "CSV: $csv ($(du -m "$csv" | cut -f1) MiB), cache: $cache, $(nproc) cores"
echo
echo "| run | wall ms | executed | hits | input bytes hashed |"
echo "|---|---|---|---|---|"
row "cold: pipeline, epochs 10" "$(run pipeline 10)"
warm=()
for _ in $(seq "$runs"); do warm+=("$(run pipeline 10)"); done
last=${warm[-1]}
set -- $last
printf '| warm: pipeline, epochs 10 (median of %s; min–max %s) | %s | %s | %s | %s |\n' \
  "$runs" "$(printf '%s\n' "${warm[@]}" | cut -d' ' -f1 | spread)" \
  "$(printf '%s\n' "${warm[@]}" | cut -d' ' -f1 | ms_median)" "$2" "$3" "$4"
row "changed hyper-parameters: epochs 20" "$(run pipeline 20)"
row "second flow (compare), epochs 10" "$(run compare 10)"
