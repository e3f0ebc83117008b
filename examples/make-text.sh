#!/usr/bin/env bash
# Writes a deterministic English-like text of about SIZE_MB MiB to OUT, for
# the word-count example: make-text.sh OUT [SIZE_MB]
set -euo pipefail
out=${1:?usage: make-text.sh OUT [SIZE_MB]}
size_mb=${2:-64}
awk -v bytes=$((size_mb * 1024 * 1024)) 'BEGIN {
  n = split("the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if so no will more what up out about who can said them into its some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three", w, " ")
  seed = 12345
  written = 0
  line = ""
  while (written < bytes) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    # Zipf-like: low indexes far more often.
    i = w_count_pick(seed, n)
    line = line w[i] " "
    if (length(line) > 70) { print line; written += length(line) + 1; line = "" }
  }
}
function w_count_pick(s, n,   r) { r = (s % 10000) / 10000; return 1 + int(r * r * r * (n - 1)) }' > "$out"
