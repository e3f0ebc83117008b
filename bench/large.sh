#!/usr/bin/env bash
# First runs of large components (issue 14, part 5): componentize-py tasks,
# ~18 MB each, almost all of it the CPython interpreter they share. Each
# round, on an empty cache: the first run of a Python task (everything
# compiled), the first run after editing its Python source, the first run
# of a second Python task (another WIT world), and a later run (a miss on
# new arguments: the compiled artefact is kept). With a BASE binary (a
# build without the function cache), the same in the same round, and the
# per-round ratios NEW / BASE. Prints one Markdown table of medians.
#
#   bash bench/large.sh [ROUNDS] [BASE_CAIRN]
#
# Needs componentize-py (`pip install componentize-py==0.25.1`).
rounds=${1:-3}
base=${2:-}
source "$(dirname "$0")/common.sh"
command -v componentize-py > /dev/null || { echo "install componentize-py: pip install componentize-py==0.25.1" >&2; exit 1; }
py="$work/large"
mkdir -p "$py"

# task NAME WIT SOURCE: builds $py/NAME.wasm from the Python SOURCE (again
# only when the WIT or the source changed).
task() {
  local dir="$py/$1"
  mkdir -p "$dir/wit"
  printf '%s\n' "$2" > "$dir/wit/world.wit"
  printf '%s\n' "$3" > "$dir/app.py"
  cat "$dir/wit/world.wit" "$dir/app.py" > "$dir/sources"
  [ -s "$py/$1.wasm" ] && cmp -s "$dir/sources" "$dir/built" && return
  (cd "$dir" && componentize-py -d wit -w task componentize app -o "../$1.wasm" > /dev/null)
  cp "$dir/sources" "$dir/built"
}
greet_wit='package demo:greet;

interface greeter {
  greet: func(name: string) -> string;
}

world task {
  export greeter;
}'
task greet "$greet_wit" 'import wit_world
from wit_world import exports

class Greeter(exports.Greeter):
    def greet(self, name: str) -> str:
        return "Hello, " + name + "!"'
task greet-edited "$greet_wit" 'import wit_world
from wit_world import exports

class Greeter(exports.Greeter):
    def greet(self, name: str) -> str:
        words = [w.capitalize() for w in name.split()]
        return "Good day, " + " ".join(words) + "."'
task stats 'package demo:stats;

interface stats {
  mean: func(xs: list<f64>) -> f64;
}

world task {
  export stats;
}' 'import wit_world
from wit_world import exports
import statistics

class Stats(exports.Stats):
    def mean(self, xs: list[float]) -> float:
        return statistics.fmean(xs) if xs else 0.0'

ms() { # command… → wall ms of one run
  local t0 t1
  t0=$(date +%s%N); "$@" > /dev/null; t1=$(date +%s%N)
  awk -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f", ns / 1e6}'
}
# round BIN CACHE → four wall ms: cold, edited, second task, later run
round() {
  rm -rf "$2"
  local c=("$1" --cache-dir "$2" run)
  echo "$(ms "${c[@]}" "$py/greet.wasm" greet --name Ada) \
$(ms "${c[@]}" "$py/greet-edited.wasm" greet --name Ada) \
$(ms "${c[@]}" "$py/stats.wasm" mean --xs '[1.0, 2.5]') \
$(ms "${c[@]}" "$py/greet.wasm" greet --name Bo)"
}

: > "$py/new.txt"; : > "$py/base.txt"
for _ in $(seq "$rounds"); do
  round "$cairn" "$py/cache-new" >> "$py/new.txt"
  [ -n "$base" ] && round "$base" "$py/cache-base" >> "$py/base.txt"
done
col() { awk -v c="$2" '{print $c}' "$1" | median; }
ratio() { paste -d' ' "$py/new.txt" "$py/base.txt" | awk -v c="$1" '{printf "%.3f\n", $c / $(c + 4)}' | median; }
rows=("first run, cold machine (empty cache)" "first run after editing the Python source"
  "first run of a second Python task" "later run (new arguments, artefact kept)")
echo "| $rounds rounds, wall ms (median) | BASE | NEW | NEW / BASE |"
echo "|---|---|---|---|"
for i in 1 2 3 4; do
  if [ -n "$base" ]; then
    echo "| ${rows[$((i - 1))]} | $(col "$py/base.txt" $i) | $(col "$py/new.txt" $i) | $(ratio $i) |"
  else
    echo "| ${rows[$((i - 1))]} | — | $(col "$py/new.txt" $i) | — |"
  fi
done
sizes=$(for t in greet greet-edited stats; do printf '%s %s MB, ' "$t" "$(awk -v b="$(stat -c %s "$py/$t.wasm")" 'BEGIN {printf "%.1f", b / 1e6}')"; done)
echo "| component sizes | ${sizes%, } | | |"
echo "| function cache after a round (NEW) | $(du -m "$py/cache-new/index.redb" | cut -f1) MiB index | | |"
