#!/usr/bin/env bash
# The CLI hit against the process floor (issue 15): `cairn --version`, a
# warm hit of hello, a warm hit of the seed pipeline (small CSV: a hit only
# stats it), and `run --batch` of N distinct hits against a batch of one,
# each a new process, interleaved in every round so all see the same
# machine; prints medians, the hit / --version ratios and the batch cost per
# line beyond process start. Sync calls of one hello hit by `strace -c`.
# With a second binary (another commit's release build), every round runs
# both, this checkout's first, each on its own caches.
#
#   bash bench/floor.sh [ROUNDS] [BASE_CAIRN] [BATCH_LINES]
rounds=${1:-21}
base=${2:-}
lines=${3:-2000}
source "$(dirname "$0")/common.sh"
wasm=examples/target/wasm32-wasip2/release
csv="$work/data-8.csv"
if [ ! -f "$csv" ]; then examples/ml-pipeline/make-csv.sh "$csv" 8; sleep 1; fi
for i in $(seq "$lines"); do echo "greet(\"n$i\", false)"; done > "$work/floor-batch-$lines.txt"
echo 'greet("n1", false)' > "$work/floor-batch-1.txt"

bins=(new)
declare -A bin=([new]="$cairn")
if [ -n "$base" ]; then bins+=(base); bin[base]=$base; fi

# One command of kind $2 with binary $1, output discarded.
one() {
  local c=${bin[$1]} cache="$work/floor-cache-$1"
  case $2 in
    version) "$c" --version ;;
    hello) "$c" --cache-dir "$cache" run "$wasm/hello.wasm" greet --name Ada ;;
    pipeline) (cd examples/ml-pipeline && "$c" --cache-dir "../../$cache" run pipeline \
        --data "@../../$csv" --hp '{learning-rate: 0.5, epochs: 2}') ;;
    batch1) "$c" --cache-dir "$cache" run --batch "$work/floor-batch-1.txt" "$wasm/hello.wasm" ;;
    batchN) "$c" --cache-dir "$cache" run --batch "$work/floor-batch-$lines.txt" "$wasm/hello.wasm" ;;
  esac > /dev/null 2>&1
}

kinds=(version hello pipeline batch1 batchN)
for b in "${bins[@]}"; do
  rm -rf "$work/floor-cache-$b"
  for k in "${kinds[@]}"; do one "$b" "$k"; one "$b" "$k"; done # fill, warm
done
samples="$work/floor-samples.txt"
: > "$samples"
for r in $(seq "$rounds"); do
  for b in "${bins[@]}"; do
    for k in "${kinds[@]}"; do
      t0=$EPOCHREALTIME; one "$b" "$k"; t1=$EPOCHREALTIME
      echo "$r $b $k $t0 $t1" >> "$samples"
    done
  done
done

echo "$rounds rounds, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), batch of $lines lines"
for b in "${bins[@]}"; do
  syncs=$(strace -f -c -e trace=fsync,fdatasync,sync_file_range -o /dev/stdout \
    "${bin[$b]}" --cache-dir "$work/floor-cache-$b" run "$wasm/hello.wasm" greet --name Ada 2>/dev/null |
    awk '$NF == "total" {print $4}')
  echo "$b: sync calls in one hello hit: ${syncs:-0}"
done
python3 - "$samples" "$lines" <<'EOF'
import sys, statistics as st
from collections import defaultdict
t = defaultdict(dict)
for line in open(sys.argv[1]):
    r, b, k, t0, t1 = line.split()
    t[(b, k)][int(r)] = (float(t1) - float(t0)) * 1e3
n = int(sys.argv[2])
med = lambda b, k: st.median(t[(b, k)].values())
ratio = lambda b, k, d: st.median(t[(b, k)][r] / t[(b, d)][r] for r in t[(b, k)])
print("| binary | --version ms | hello hit ms | pipeline hit ms | hello / --version | pipeline / --version | batch µs per line |")
print("|---|---|---|---|---|---|---|")
for b in sorted({b for b, _ in t}, key=lambda b: b != "base"):
    per_line = st.median((t[(b, "batchN")][r] - t[(b, "batch1")][r]) * 1e3 / (n - 1) for r in t[(b, "batchN")])
    print(f"| {b} | {med(b, 'version'):.2f} | {med(b, 'hello'):.2f} | {med(b, 'pipeline'):.2f} "
          f"| {ratio(b, 'hello', 'version'):.2f} | {ratio(b, 'pipeline', 'version'):.2f} | {per_line:.1f} |")
EOF
