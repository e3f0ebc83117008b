#!/usr/bin/env bash
# The cold run against native (issue 15): each step of the seed ML pipeline
# (parse, train, evaluate) and the word count, run by cairn as a new
# process with `--no-cache` (the compiled artefact kept, so compiling is not
# counted) and by `native` (host/examples/native.rs: the same source files
# compiled natively), in alternating rounds; CPU time (user + sys) of each
# process. Then `compare` after `pipeline` (a fresh cache each round): the
# wall and CPU time of compare's one new call, and its sync calls (strace).
# With BASE_CAIRN and
# BASE_WASM (another commit's release build and examples), every round also
# runs them. Prints medians, and the medians of the per-round ratios.
#
#   bash bench/cold.sh [ROUNDS] [CSV_MB] [BASE_CAIRN BASE_WASM]
rounds=${1:-5}
mb=${2:-64}
base_cairn=${3:-}
base_wasm=${4:-}
source "$(dirname "$0")/common.sh"
cargo build -q --release -p cairn-host --example native
csv="$work/data-$mb.csv"
text="$work/book-$((mb / 4)).txt"
[ -f "$csv" ] || examples/ml-pipeline/make-csv.sh "$csv" "$mb"
[ -f "$text" ] || examples/make-text.sh "$text" "$((mb / 4))"
native=target/release/examples/native
"$native" parse "$csv" "$work/data-$mb.bin" > /dev/null
python3 - "$rounds" "$work" "$csv" "$text" "$cairn" examples/target/wasm32-wasip2/release \
  "$native" "$base_cairn" "$base_wasm" <<'EOF_PY'
import os, shutil, statistics as st, subprocess, sys, time
rounds, work, csv, text, cairn, wasm, native, base_cairn, base_wasm = sys.argv[1:]
rounds, data = int(rounds), csv[:-4] + ".bin"
sides = {"new": (cairn, os.path.abspath(wasm))}
if base_cairn:
    sides["base"] = (base_cairn, os.path.abspath(base_wasm))
hp = "{learning-rate: 0.5, epochs: 10}"
weights = subprocess.run([native, "train", data, "0.5", "10"], capture_output=True, text=True,
                         check=True).stdout.strip()

def run(cmd, cwd=None):
    """Wall and CPU (user + sys) seconds of one process; its stdout."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, out

def steps(side):
    if side == "native":
        return {"parse": [native, "parse", csv, f"{work}/native-out.bin"],
                "train": [native, "train", data, "0.5", "10"],
                "evaluate": [native, "evaluate", data] + weights.strip("[]").split(", "),
                "words": [native, "words", text, "3"]}
    c, w = sides[side]
    pre = [c, "--cache-dir", f"{work}/cold-cache-{side}", "run", "--no-cache"]
    return {"parse": pre + [f"{w}/ml_load.wasm", "parse-csv", "--csv", "@" + csv],
            "train": pre + [f"{w}/ml_train.wasm", "fit", "--dataset", "@" + data, "--hp", hp],
            "evaluate": pre + [f"{w}/ml_evaluate.wasm", "score", "--dataset", "@" + data,
                               "--weights", weights],
            "words": pre + [f"{w}/words.wasm", "top", "--text", "@" + text, "--n", "3"]}

def compare(side, trace=()):
    """compare after pipeline, on a fresh cache: wall and CPU of compare
    (run under `trace`, if given)."""
    c, w = sides[side]
    cache = f"{work}/cold-compare-{side}"
    shutil.rmtree(cache, ignore_errors=True)
    manifest = f"{work}/cold-{side}.toml"
    with open(manifest, "w") as f:
        f.write("[tasks]\n" + "".join(f'{t} = "{w}/ml_{t}.wasm"\n' for t in
                ["load", "train", "evaluate", "training", "pipeline", "compare"]))
    base = [c, "--cache-dir", cache, "run", "--manifest", manifest]
    for e in ("10", "20"):
        run(base + ["pipeline", "--data", "@" + csv, "--hp", f"{{learning-rate: 0.5, epochs: {e}}}"])
    return run(list(trace) + base + ["compare", "--data", "@" + csv, "--hp", hp])[:2]

def compare_syncs(side):
    """Sync calls of compare's first run, by strace."""
    out = f"{work}/cold-compare-{side}.strace"
    compare(side, ["strace", "-f", "-c", "-o", out, "-e",
                   "trace=fsync,fdatasync,sync_file_range,syncfs,msync"])
    total = [l.split() for l in open(out) if l.rstrip().endswith("total")]
    return total[0][3] if total else "0"

all_sides = list(sides) + ["native"]
outputs = {}
for s in sides:  # compile once: artefacts kept, as a user's second run would
    for k, cmd in steps(s).items():
        outputs[(s, k)] = run(cmd)[2]
cpu = {}
for r in range(rounds):
    for s in all_sides:
        for k, cmd in steps(s).items():
            cpu.setdefault((s, k), []).append(run(cmd)[1])
    for s in sides:
        wall, c = compare(s)
        cpu.setdefault((s, "compare wall"), []).append(wall)
        cpu.setdefault((s, "compare cpu"), []).append(c)
if "base" in sides:
    same = all(outputs[("new", k)].replace(b"blob:", b"") == outputs[("base", k)].replace(b"blob:", b"")
               for k in ["parse", "train", "evaluate", "words"])
    print(f"results of new and base identical: {same}")
print(f"{rounds} rounds, {os.cpu_count()} cores, load {open('/proc/loadavg').read().split()[:3]}, "
      f"CSV {csv}, text {text}")
print("| step | " + " | ".join(f"{s} CPU s" for s in all_sides) + " | "
      + " | ".join(f"{s} / native" for s in sides) + (" | new / base |" if "base" in sides else " |"))
print("|---" * (1 + len(all_sides) + len(sides) + ("base" in sides)) + "|")
for k in ["parse", "train", "evaluate", "words"]:
    med = [f"{st.median(cpu[(s, k)]):.3f}" for s in all_sides]
    rat = [f"{st.median(a / b for a, b in zip(cpu[(s, k)], cpu[('native', k)])):.2f}" for s in sides]
    if "base" in sides:
        rat.append(f"{st.median(a / b for a, b in zip(cpu[('new', k)], cpu[('base', k)])):.2f}")
    print(f"| {k} | " + " | ".join(med + rat) + " |")
for s in sides:
    print(f"{s}: compare after pipeline: wall {st.median(cpu[(s, 'compare wall')]) * 1e3:.1f} ms, "
          f"CPU {st.median(cpu[(s, 'compare cpu')]) * 1e3:.1f} ms, "
          f"{compare_syncs(s) if shutil.which('strace') else '?'} sync calls")
EOF_PY
