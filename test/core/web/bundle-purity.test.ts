import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { build, Metafile } from 'esbuild';

/**
 * The browser's bundles hold none of Node: built the way scripts/build.mjs builds them (esbuild,
 * platform browser), with every Node builtin marked external so that an import of one shows up
 * in the metafile instead of failing the build with a less readable error. Then the metafile's
 * inputs (every file that went in) are checked: no builtin import, no sharp, no
 * onnxruntime-node, and no use of Node's global `Buffer` in our own sources.
 */
const ROOT = path.join(__dirname, '..', '..', '..');
const BUILTINS = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const NODE_ONLY_PACKAGES = /(^|\/)node_modules\/(sharp|@img\/sharp[^/]*|onnxruntime-node)\//;

async function metafileOf(entry: string | string[]): Promise<{ metafile: Metafile }> {
  const entries = (Array.isArray(entry) ? entry : [entry]).map((e) => path.join(ROOT, e));
  const result = await build({
    entryPoints: entries,
    // Several entries need an output folder; nothing is written.
    ...(entries.length > 1 ? { outdir: path.join(ROOT, '.cache', 'purity-out') } : {}),
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    target: 'es2020',
    metafile: true,
    logLevel: 'silent',
    // A native addon (onnxruntime-node's binding) would fail the build before the check could name it.
    loader: { '.node': 'empty' },
    external: BUILTINS,
    define: { UPBRIDGE_ORT_PINS: 'undefined', UPBRIDGE_ORT_WORKER_SOURCE: 'undefined' },
  });
  return { metafile: result.metafile };
}

/** Our own source, comments removed: a `Buffer` in a doc comment is not a use. */
function code(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

async function problems(entry: string | string[]): Promise<{ problems: string[]; inputs: string[] }> {
  const { metafile } = await metafileOf(entry);
  const found: string[] = [];
  const inputs = Object.keys(metafile.inputs);
  for (const [file, input] of Object.entries(metafile.inputs)) {
    if (NODE_ONLY_PACKAGES.test(file)) found.push(`${file} (a Node-only package)`);
    for (const imported of input.imports) {
      if (imported.external && BUILTINS.includes(imported.path)) found.push(`${file} imports the Node builtin ${imported.path}`);
    }
    if (!file.includes('node_modules/') && /\.(ts|js|mjs)$/.test(file)) {
      if (/\bBuffer\b/.test(code(await fs.readFile(path.join(ROOT, file), 'utf8')))) found.push(`${file} uses Buffer`);
    }
  }
  return { problems: found, inputs };
}

const PIPELINE = ['core/upscale.ts', 'core/tiler.ts', 'core/convert/ncnn-to-onnx.ts', 'core/web/ort-web-runner.ts'];

test.each([
  ['core/web/index.ts', 'the web core', PIPELINE],
  ['core/web/ort-worker.ts', 'the inference worker', ['core/web/ort-web-runner.ts', 'core/convert/fp16.ts']],
  ['plugins/figma/src/ui/ui.ts', "the Figma plugin's UI", PIPELINE],
  ['bridge-server/page/page.ts', "the bridge's page", PIPELINE],
])('%s (%s) bundles for the browser with no Node builtin, Buffer, sharp or onnxruntime-node', async (entry, _what, expected) => {
  const { problems: found, inputs } = await problems(entry);
  expect(found).toEqual([]);
  // It really is the web engine that was checked: the shared pipeline, the converter and ORT web.
  expect(inputs).toEqual(expect.arrayContaining(expected));
  expect(inputs.some((f) => f.includes('node_modules/onnxruntime-web/dist/'))).toBe(true);
});

/** Every module of core/ outside core/node/ and core/web/: the parts both runtimes share. */
async function sharedCoreModules(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (rel !== 'core/node' && rel !== 'core/web') await walk(rel);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) found.push(rel);
    }
  };
  await walk('core');
  return found;
}

test('every shared module of core/ (tiler, blending, scale, modes, metrics, fidelity, converters) bundles for the browser with none of Node', async () => {
  const modules = await sharedCoreModules();
  expect(modules).toEqual(expect.arrayContaining(['core/tiler.ts', 'core/blend.ts', 'core/scale.ts', 'core/modes.ts', 'core/metrics.ts', 'core/convert/ncnn-to-onnx.ts', 'core/convert/fp16.ts']));
  const { problems: found, inputs } = await problems(modules);
  expect(found).toEqual([]);
  // Nothing under core/node/ is reachable from them.
  expect(inputs.filter((f) => f.startsWith('core/node/'))).toEqual([]);
});

test('the check itself catches a Node builtin, Buffer and onnxruntime-node', async () => {
  const dir = path.join(ROOT, '.cache', 'purity-probe');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'bad.ts'), "import { readFileSync } from 'node:fs';\nimport * as ort from 'onnxruntime-node';\nexport const x = [readFileSync, ort, Buffer.from('a')];\n");
  const { problems: found } = await problems(path.relative(ROOT, path.join(dir, 'bad.ts')));
  expect(found).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/imports the Node builtin node:fs$/),
      expect.stringMatching(/bad\.ts uses Buffer$/),
      expect.stringMatching(/node_modules\/onnxruntime-node\/.* \(a Node-only package\)$/),
    ]),
  );
});
