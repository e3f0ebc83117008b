#!/bin/sh
# Builds the js-report task into examples/target/js/js-report.wasm (or into
# the directory given as $1) with the JavaScript guest SDK's build command.
# Needs the SDK's tools: `npm ci --prefix guest-sdk/js` (see guest-sdk/js/README.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sdk="$here/../../guest-sdk/js"
out="${1:-$here/../target/js}"
if [ ! -d "$sdk/node_modules/@bytecodealliance/componentize-js" ]; then
    echo "build.sh: componentize-js is not installed; run \`npm ci --prefix guest-sdk/js\`" >&2
    exit 2
fi
exec node "$sdk/build.mjs" "$here/src/report.js" --wit "$here/wit" --world report \
    -o "$out/js-report.wasm"
