# Shared by the bench scripts (sourced): release builds of the host and the
# examples, the work directory, and the median of numbers on stdin.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q --release -p cairn
cargo build -q --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
work=target/bench
mkdir -p "$work"
cairn="$PWD/target/release/cairn"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
