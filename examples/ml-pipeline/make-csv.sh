#!/usr/bin/env bash
# Writes a deterministic CSV of about SIZE_MB MiB for the ML pipeline:
# 8 numeric features and a 0/1 label that a logistic model can learn.
#   make-csv.sh OUT [SIZE_MB]
set -euo pipefail
out=${1:?usage: make-csv.sh OUT [SIZE_MB]}
size_mb=${2:-256}
awk -v bytes=$((size_mb * 1024 * 1024)) 'BEGIN {
  split("1.5 -2.0 0.7 0.0 3.1 -0.4 1.1 -1.8", w, " ")
  seed = 42
  print "f1,f2,f3,f4,f5,f6,f7,f8,label"
  written = 0
  while (written < bytes) {
    z = 0.3; line = ""
    for (i = 1; i <= 8; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648
      x = (seed / 2147483648) * 2 - 1
      z += w[i] * x
      line = line sprintf("%.4f,", x)
    }
    seed = (seed * 1103515245 + 12345) % 2147483648
    noise = ((seed / 2147483648) - 0.5) * 2
    line = line (z + noise > 0 ? "1" : "0")
    print line
    written += length(line) + 1
  }
}' > "$out"
