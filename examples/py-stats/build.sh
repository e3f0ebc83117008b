#!/usr/bin/env bash
# Builds the Python task into OUT (default examples/target/py/py_stats.wasm)
# from the app.py in APP_DIR (default: this directory) and the WIT here.
# Needs componentize-py (`pip install componentize-py==0.25.1`).
#
#   examples/py-stats/build.sh [OUT] [APP_DIR]
#
# componentize-py builds are not reproducible (every build has other bytes,
# so another cache key): the build is skipped when OUT was built from the
# same sources, recorded next to it in OUT.sources.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../target/py/py_stats.wasm}"
app="$(cd "${2:-$here}" && pwd)"
sdk="$here/../../guest-sdk/python"
mkdir -p "$(dirname "$out")"
sources="$( (componentize-py --version
  cd "$app" && find -L . -name '*.py' -not -path '*/__pycache__/*' | sort | xargs sha256sum
  cd "$here" && find -L wit -name '*.wit' | sort | xargs sha256sum
  sha256sum "$sdk/cairn_task.py") | sha256sum | cut -d' ' -f1)"
if [ -f "$out" ] && [ "$(cat "$out.sources" 2>/dev/null)" = "$sources" ]; then
  exit 0
fi
# Built aside and renamed: an interrupted build leaves neither a cut
# component nor a record saying it is up to date.
rm -f "$out.sources"
PYTHONDONTWRITEBYTECODE=1 componentize-py -q -d "$here/wit" -w stats componentize \
  -p "$app" -p "$sdk" app -o "$out.part"
mv "$out.part" "$out"
echo "$sources" > "$out.sources"
