#!/usr/bin/env bash
# Shared-tier figures: starts a JetStream server on loopback and two release
# workers (each with its own cache), then runs the `remote` example, which
# prints Markdown rows for BENCHMARKS.md. Needs nats-server.
#   bash bench/remote.sh
source "$(dirname "$0")/common.sh"
cargo build -q --release -p cairn --example remote
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
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
target/release/examples/remote "$url" "$PWD/examples/target/wasm32-wasip2/release"
