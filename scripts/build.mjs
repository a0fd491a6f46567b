// Bundles the CLI with esbuild. Native and large runtime packages stay external: they are
// dependencies, loaded from node_modules at run time. Also builds the bridge's web page into
// dist/page/ (the server serves index.html at / and page.js at /page.js).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['bridge-server/cli.ts'],
  outfile: 'dist/cli.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  external: ['sharp', 'onnxruntime-node', 'onnxruntime-web', 'pacote', 'playwright-core'],
  logLevel: 'warning',
  define: { UPBRIDGE_VERSION: JSON.stringify(version) },
});

// The page's "in this browser" engine checks the .wasm files the bridge serves against these.
const ortDist = 'node_modules/onnxruntime-web/dist';
const ortPins = {
  version: JSON.parse(readFileSync('node_modules/onnxruntime-web/package.json', 'utf8')).version,
  wasm: createHash('sha256').update(readFileSync(`${ortDist}/ort-wasm-simd-threaded.wasm`)).digest('hex'),
  webgpu: createHash('sha256').update(readFileSync(`${ortDist}/ort-wasm-simd-threaded.asyncify.wasm`)).digest('hex'),
  glue: createHash('sha256').update(readFileSync(`${ortDist}/ort-wasm-simd-threaded.mjs`)).digest('hex'),
};

// The page's inference worker (core/web/ort-worker.ts), carried as text and started from a blob URL.
const ortWorker = await build({ entryPoints: ['core/web/ort-worker.ts'], bundle: true, write: false, platform: 'browser', format: 'iife', target: 'es2020', logLevel: 'warning' });

await build({
  define: { UPBRIDGE_ORT_PINS: JSON.stringify(ortPins), UPBRIDGE_ORT_WORKER_SOURCE: JSON.stringify(ortWorker.outputFiles[0].text) },
  entryPoints: ['bridge-server/page/page.ts'],
  outfile: 'dist/page/page.js',
  bundle: true,
  platform: 'browser',
  target: 'es2020',
  format: 'iife',
  logLevel: 'warning',
});
mkdirSync('dist/page', { recursive: true });

for (const file of ['index.html', 'page.css']) {
  if (existsSync(`bridge-server/page/${file}`)) copyFileSync(`bridge-server/page/${file}`, `dist/page/${file}`);
}

// The browser half of `upbridge bench`'s browser section (bridge-server/bench-browser.ts serves it).
await build({
  entryPoints: ['bridge-server/bench-browser-page.ts'],
  outfile: 'dist/bench-web/bench.js',
  bundle: true,
  platform: 'browser',
  target: 'es2020',
  format: 'iife',
  logLevel: 'warning',
});

// The plugins: each has its own build script (bundle, copy static files, package).
for (const plugin of ['photoshop', 'figma']) {
  const script = new URL(`./build-${plugin}.mjs`, import.meta.url);
  if (existsSync(script)) await (await import(script.href)).buildPlugin();
}
