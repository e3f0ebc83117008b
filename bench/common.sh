# Shared by the bench scripts (sourced): release builds of the host and the
# examples, the work directory, and the median of numbers on stdin.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q --release -p cairn-host
cargo build -q --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
work=target/bench
mkdir -p "$work"
cairn="$PWD/target/release/cairn"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

# A JetStream server on a free loopback port and two workers (w1, w2) with
# empty caches, all stopped and removed on exit; sets $dir and $url.
start_tier() {
  dir=$(mktemp -d)
  local port=$((20000 + RANDOM % 20000))
  url="nats://127.0.0.1:$port"
  nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/nats" >"$dir/server.log" 2>&1 &
  pids=($!)
  trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
  sleep 0.5
  for w in w1 w2; do
    "$cairn" --cache-dir "$dir/$w" worker --remote "$url" --name "$w" 2>"$dir/$w.log" &
    pids+=($!)
  done
  sleep 0.5
}
