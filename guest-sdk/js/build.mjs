#!/usr/bin/env node
// cairn-js-build: builds a JavaScript cairn task into a WebAssembly component
// with componentize-js, leaving out the WASI imports cairn does not provide.
//
//   cairn-js-build <source.js> --wit <dir> [--world <name>] -o <out.wasm>
//
// 1. Bundles <source.js> and what it imports (relative files, npm packages
//    such as this one's `blob.js`) into one module with rolldown; WIT
//    imports (`cairn:task/blobs@0.1.0`, …) stay imports.
// 2. Builds the component with componentize-js, `disableFeatures: ['http',
//    'fetch-event']`: its default build imports `wasi:http` (for `fetch`) and
//    exports an HTTP handler; cairn gives tasks no network and refuses such a
//    component. The task keeps `console.log` (stdio), `Math.random` and
//    clocks, which cairn provides deterministically.
//
// (`jco componentize --disable http fetch-event` does the same, but jco
// 1.35.0 cannot read a WIT directory: its wasm-tools runs with no preopens.)

import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { rolldown } from 'rolldown';

const usage = 'usage: cairn-js-build <source.js> --wit <dir> [--world <name>] -o <out.wasm>';

/** The componentize-js features a cairn task never uses. */
const DISABLED = ['http', 'fetch-event'];

/** A WIT import (`cairn:task/blobs@0.1.0`) or a `node:` builtin: not bundled. */
const EXTERNAL = /^[a-z][a-z0-9-]*:/;

function fail(message) {
  console.error(`cairn-js-build: ${message}`);
  process.exit(2);
}

/** `entry` and everything it imports, as one ES module's source. */
async function bundle(entry) {
  const build = await rolldown({
    input: entry,
    cwd: dirname(entry),
    platform: 'neutral',
    external: (id) => EXTERNAL.test(id),
    resolve: { mainFields: ['module', 'main'] },
  });
  try {
    const { output } = await build.generate({ format: 'esm', codeSplitting: false });
    if (output.length !== 1) throw new Error('dynamic imports are not supported');
    return output[0].code;
  } finally {
    await build.close();
  }
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      wit: { type: 'string', short: 'w' },
      world: { type: 'string', short: 'n' },
      out: { type: 'string', short: 'o' },
    },
  });
} catch (e) {
  fail(`${e.message}\n${usage}`);
}
const { values, positionals } = parsed;
if (positionals.length !== 1 || !values.wit || !values.out) fail(usage);

const source = positionals[0];
const temp = await mkdtemp(join(tmpdir(), 'cairn-js-build-'));
try {
  const bundled = join(temp, 'task.js');
  await writeFile(bundled, await bundle(resolve(source)));
  const { component } = await componentize({
    sourcePath: bundled,
    witPath: resolve(values.wit),
    worldName: values.world,
    disableFeatures: DISABLED,
  });
  await mkdir(dirname(resolve(values.out)), { recursive: true });
  await writeFile(values.out, component);
  console.error(`cairn-js-build: wrote ${values.out} (${component.length} bytes)`);
} catch (e) {
  fail(`building ${source} failed: ${e.message ?? e}`);
} finally {
  await rm(temp, { recursive: true, force: true });
}
