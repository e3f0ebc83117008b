#!/usr/bin/env bash
# Flows that fan out, each against its sequential version in the same run
# (release build):
#   1. the ML sweep: 8 hyper-parameter sets trained through the `training`
#      sub-flow all at once (`sweep`) and one after the other
#      (`sweep-in-turn`), each from an empty cache, alternately REPS times;
#   2. the same sweep with its calls dispatched to 2 workers (needs
#      nats-server; skipped without it);
#   3. words-map over 1,000 chunks of a 1 MiB text, at once and in turn
#      (`words-map-in-turn`): the cold cost per call and the warm hit;
#   4. a call through an `async` import against a sync one, its result a
#      hit (each flow run again over 1,000 stored chunks against 1).
#   bash bench/fanout.sh [REPS] [CSV_MB] [EPOCHS]
reps=${1:-3}
mb=${2:-32}
epochs=${3:-10}
source "$(dirname "$0")/common.sh"
csv="$work/data-$mb.csv"
if [ ! -f "$csv" ]; then examples/ml-pipeline/make-csv.sh "$csv" "$mb"; sleep 1; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
hps="[$(for i in 1 2 3 4 5 6 7 8; do printf '{learning-rate: 0.%d, epochs: %d}, ' "$i" "$epochs"; done)]"
hps=${hps/, ]/]}
secs() { awk -v ns="$1" 'BEGIN {printf "%.3f", ns / 1e9}'; }
sweep() { # CACHE EXPORT OPTIONS… → wall seconds
  local t0 t1
  t0=$(date +%s%N)
  (cd examples/ml-pipeline && "$cairn" --cache-dir "$1" run "${@:3}" sweep "$2" \
    --data "@$OLDPWD/$csv" --hps "$hps" >/dev/null)
  t1=$(date +%s%N)
  secs $((t1 - t0))
}

echo "sweep of 8 trainings ($mb MiB CSV, $epochs epochs), $(nproc) cores, $reps runs each:" >&2
: >"$tmp/at-once"; : >"$tmp/in-turn"
for r in $(seq "$reps"); do
  rm -rf "$tmp/c"; sweep "$tmp/c" sweep >>"$tmp/at-once"; echo >>"$tmp/at-once"
  rm -rf "$tmp/c"; sweep "$tmp/c" sweep-in-turn >>"$tmp/in-turn"; echo >>"$tmp/in-turn"
done
at_once=$(median <"$tmp/at-once")
in_turn=$(median <"$tmp/in-turn")
echo "| sweep, 8 × training, cold | at once (\`sweep\`) | in turn (\`sweep-in-turn\`) | ratio |"
echo "|---|---|---|---|"
echo "| wall s, median of $reps | $at_once | $in_turn | $(awk -v a="$at_once" -v b="$in_turn" 'BEGIN {printf "%.2f", a / b}') |"
rm -rf "$tmp/c"; sweep "$tmp/c" sweep >/dev/null
echo "| the same sweep again (one hit) | $(sweep "$tmp/c" sweep) | | |"

if command -v nats-server >/dev/null; then
  start_tier
  echo "| at once, fits dispatched to 2 workers on this machine, cold | $(sweep "$tmp/d" sweep --remote "$url" --dispatch) | | |"
fi

text="$tmp/text.txt"
examples/make-text.sh "$text" 1
sleep 1 # past the racy window: the inputs are then recognised by stat
map() { # FLOW CACHE TEXT CHUNKS OPTIONS… → wall seconds
  local t0 t1
  t0=$(date +%s%N)
  "$cairn" --cache-dir "$2" run "${@:5}" "examples/target/wasm32-wasip2/release/$1.wasm" total \
    --with examples/target/wasm32-wasip2/release/words.wasm --text "@$3" --chunks "$4" >/dev/null
  t1=$(date +%s%N)
  secs $((t1 - t0))
}
for f in words_map words_map_in_turn; do : >"$tmp/$f-1"; : >"$tmp/$f-1000"; : >"$tmp/$f-hit"; done
for r in $(seq "$reps"); do
  for f in words_map words_map_in_turn; do
    rm -rf "$tmp/m"; map $f "$tmp/m" "$text" 1 >>"$tmp/$f-1"; echo >>"$tmp/$f-1"
    rm -rf "$tmp/m"; map $f "$tmp/m" "$text" 1000 >>"$tmp/$f-1000"; echo >>"$tmp/$f-1000"
    map $f "$tmp/m" "$text" 1000 >>"$tmp/$f-hit"; echo >>"$tmp/$f-hit"
  done
done
row() { # LABEL FILE-SUFFIX
  local a b
  a=$(median <"$tmp/words_map-$2"); b=$(median <"$tmp/words_map_in_turn-$2")
  echo "| $1 | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}') |"
}
per_call() { # FLOW → ms per call, cold
  awk -v a="$(median <"$tmp/$1-1000")" -v b="$(median <"$tmp/$1-1")" 'BEGIN {printf "%.2f", (a - b) / 999 * 1e3}'
}
echo
echo "| words-map, 1 MiB text, wall s (median of $reps) | at once (\`words-map\`) | in turn (\`words-map-in-turn\`) | ratio |"
echo "|---|---|---|---|"
row "cold, 1 chunk" 1
row "cold, 1,000 chunks" 1000
echo "| cold cost per call, ms ((1,000 − 1) / 999) | $(per_call words_map) | $(per_call words_map_in_turn) | |"
row "warm, 1,000 chunks (one hit)" hit

# The cost of a call through each import, its result a hit: each flow run
# again (--refresh) over the 1,000 chunks whose counts are stored, against
# the same over 1 chunk.
for f in words_map words_map_in_turn; do
  map $f "$tmp/a" "$text" 1 >/dev/null; map $f "$tmp/a" "$text" 1000 >/dev/null
  : >"$tmp/$f-r1"; : >"$tmp/$f-r1000"
done
for r in $(seq "$reps"); do
  for f in words_map words_map_in_turn; do
    map $f "$tmp/a" "$text" 1 --refresh >>"$tmp/$f-r1"; echo >>"$tmp/$f-r1"
    map $f "$tmp/a" "$text" 1000 --refresh >>"$tmp/$f-r1000"; echo >>"$tmp/$f-r1000"
  done
done
hit_call() { # FLOW → µs per call
  awk -v a="$(median <"$tmp/$1-r1000")" -v b="$(median <"$tmp/$1-r1")" 'BEGIN {printf "%.0f", (a - b) / 999 * 1e6}'
}
echo
echo "| a call whose result is stored, flow run again (median of $reps) | async import | sync import |"
echo "|---|---|---|"
echo "| 1 chunk, s | $(median <"$tmp/words_map-r1") | $(median <"$tmp/words_map_in_turn-r1") |"
echo "| 1,000 chunks, s | $(median <"$tmp/words_map-r1000") | $(median <"$tmp/words_map_in_turn-r1000") |"
echo "| per call, µs | $(hit_call words_map) | $(hit_call words_map_in_turn) |"
