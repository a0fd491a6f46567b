#!/usr/bin/env node
// Runs a TypeScript entry point: esbuild bundles it (platform node, CommonJS) to a temporary file,
// which runs in a child Node process with the remaining arguments; the exit code is passed on.
// Native and large runtime packages stay external and load from node_modules.
//
//   node scripts/run-ts.mjs scripts/load-test.ts --seconds 60
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  process.stderr.write('usage: node scripts/run-ts.mjs <entry.ts> [args...]\n');
  process.exit(2);
}

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
// Inside the checkout (git-ignored .cache), so `require` of the externals resolves from node_modules.
mkdirSync(path.join(root, '.cache'), { recursive: true });
const dir = mkdtempSync(path.join(root, '.cache', 'run-ts-'));
const outfile = path.join(dir, `${path.basename(entry).replace(/\.[cm]?tsx?$/, '')}.cjs`);

let code = 1;
try {
  await build({
    entryPoints: [path.resolve(entry)],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'inline',
    external: ['sharp', 'onnxruntime-node', 'pacote', 'fastify', '@fastify/*'],
    logLevel: 'warning',
  });
  code = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', outfile, ...args], { stdio: 'inherit' });
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (status, signal) => resolve(status ?? (signal ? 128 : 1)));
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
