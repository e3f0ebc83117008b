#!/usr/bin/env bash
# Shared-tier figures: starts a JetStream server on loopback and two release
# workers (each with its own cache), then runs the `remote` example, which
# prints Markdown rows for BENCHMARKS.md. Needs nats-server.
#   bash bench/remote.sh
source "$(dirname "$0")/common.sh"
cargo build -q --release -p cairn-host --example remote
start_tier
target/release/examples/remote "$url" "$PWD/examples/target/wasm32-wasip2/release"
