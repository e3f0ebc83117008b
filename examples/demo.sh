#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs the word-count example
# twice: the first run executes (a miss), the second is answered from the
# cache (a hit) without compiling, instantiating or reading the text.
#
#   bash examples/demo.sh [SIZE_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-64}

rustup target add wasm32-wasip2
cargo build -p cairn-host
cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml

mkdir -p target/demo
if [ ! -f "target/demo/book-$size_mb.txt" ]; then
  examples/make-text.sh "target/demo/book-$size_mb.txt" "$size_mb"
  # A file written moments ago is hashed again on its next use: its timestamp
  # cannot vouch for its content yet. Let it settle so the warm run is a stat.
  sleep 1
fi
# A fresh cache, so the first run is a miss.
rm -rf target/demo/cache

run() {
  /usr/bin/time -f "  wall time: %e s" target/debug/cairn --cache-dir target/demo/cache \
    run --json examples/target/wasm32-wasip2/release/words.wasm top --text "@target/demo/book-$size_mb.txt" --n 3
}
echo "== first run (miss: executes)"
run
echo "== second run (hit: nothing executes)"
run
