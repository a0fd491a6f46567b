// Builds the Figma plugin into dist/figma/: code.js (the main thread), ui.html (the iframe, its
// script inlined: the manifest's `ui` names a single HTML file, whose text Figma hands to the main
// thread as __html__) and manifest.json. "Import plugin from manifest" in Figma loads the folder.
// scripts/build.mjs calls buildPlugin(); `node scripts/build-figma.mjs` builds just this plugin.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = `${root}plugins/figma`;
const out = `${root}dist/figma`;
const SCRIPT_MARKER = /<!-- UI_SCRIPT:[^>]*-->/;

/**
 * "Upscale here" fetches onnxruntime-web's .wasm from the npm CDNs; it must be exactly the build
 * this bundle's JavaScript was made with, so its sha256 is taken from node_modules and pinned.
 */
function ortWasmPins() {
  const dist = `${root}node_modules/onnxruntime-web/dist`;
  const hash = (file) => createHash('sha256').update(readFileSync(`${dist}/${file}`)).digest('hex');
  const { version } = JSON.parse(readFileSync(`${root}node_modules/onnxruntime-web/package.json`, 'utf8'));
  return { version, wasm: hash('ort-wasm-simd-threaded.wasm'), webgpu: hash('ort-wasm-simd-threaded.asyncify.wasm'), glue: hash('ort-wasm-simd-threaded.mjs') };
}

/** core/web/ort-worker.ts as text: the UI starts it as a blob-URL worker (one inlined HTML file has no other URL). */
async function workerSource() {
  const result = await build({ entryPoints: [`${root}core/web/ort-worker.ts`], bundle: true, write: false, platform: 'browser', format: 'iife', target: 'es2020', logLevel: 'warning' });
  return result.outputFiles[0].text;
}

async function bundle(entry, target) {
  const result = await build({
    define: { UPBRIDGE_ORT_PINS: JSON.stringify(ortWasmPins()), UPBRIDGE_ORT_WORKER_SOURCE: JSON.stringify(await workerSource()) },
    entryPoints: [`${source}/src/${entry}`],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    target,
    logLevel: 'warning',
  });
  return result.outputFiles[0].text;
}

export async function buildPlugin() {
  mkdirSync(out, { recursive: true });
  // Figma's sandbox runs modern JavaScript, but es2017 keeps the main thread safe on older
  // desktop apps at no cost; the iframe is Chromium.
  writeFileSync(`${out}/code.js`, await bundle('main.ts', 'es2017'));

  const html = readFileSync(`${source}/src/ui.html`, 'utf8');
  if (!SCRIPT_MARKER.test(html)) throw new Error('plugins/figma/src/ui.html lost its UI_SCRIPT marker');
  // "</script" inside the code would end the inline element early.
  const script = (await bundle('ui/ui.ts', 'es2020')).replace(/<\/script/gi, '<\\/script');
  writeFileSync(`${out}/ui.html`, html.replace(SCRIPT_MARKER, () => `<script>\n${script}</script>`));

  JSON.parse(readFileSync(`${source}/manifest.json`, 'utf8'));
  copyFileSync(`${source}/manifest.json`, `${out}/manifest.json`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildPlugin();
