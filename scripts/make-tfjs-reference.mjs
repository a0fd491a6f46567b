#!/usr/bin/env node
// Regenerates test/fixtures/tfjs-reference/ (input crop, the 12 reference outputs, manifest.json).
//
//   node scripts/make-tfjs-reference.mjs [--out DIR]
//
// The reference is the original implementation: @tensorflow/tfjs 4.11.0 (pure JS, CPU backend,
// the version the models peer-depend on) running each UpscalerJS model.json, with UpscalerJS'
// own custom layers (setup(tf) from the esrgan-thick package) and UpscalerJS' pre/post-processing
// (upscaler@1.0.0 shared/tensor-utils.js, manifest/RESEARCH.md §3.5):
//   input:  RGB pixel values 0..255 as float32, NHWC; times 1/255 for models declared [0, 1] (thick)
//   output: clipByValue(0, range), times 255 for [0, 1] models, then rounded to 8 bits (Math.round)
// Packages come from the registry through pacote, pinned by integrity, and every file used is
// checked against the sha256 in sources.json; they are unpacked into the git-ignored
// .cache/upscalerjs/ (shared with the tests). NOT run by tests: thick takes ~10 s per model.
// See test/fixtures/tfjs-reference/README.md.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pacote from 'pacote';
import sharp from 'sharp';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const FIXTURES = join(ROOT, 'test/fixtures/tfjs-reference');
const SOURCES = JSON.parse(readFileSync(join(FIXTURES, 'sources.json'), 'utf8'));
const CACHE = join(ROOT, '.cache/upscalerjs');
const TFJS_VERSION = '4.11.0';
// 28×20: small enough for thick in pure JS, not square (a swapped height/width shows), and it
// holds the window's white frame, its dark glass and the bricks around it.
const CROP = { source: 'test/fixtures/photo-161x121.png', left: 84, top: 70, width: 28, height: 20 };

function parseArgs(argv) {
  let out = FIXTURES;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = resolve(argv[++i]);
    else {
      console.log('usage: node scripts/make-tfjs-reference.mjs [--out DIR]');
      process.exit(argv[i] === '-h' || argv[i] === '--help' ? 0 : 2);
    }
  }
  return { out };
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function packageDir(family) {
  const { spec, integrity } = SOURCES.packages[family];
  const dir = join(CACHE, spec.replace('/', '+'));
  if (!(await stat(join(dir, 'package.json')).then(() => true, () => false))) {
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    console.log(`extracting ${spec} into ${dir}`);
    await pacote.extract(spec, tmp, { integrity });
    await rename(tmp, dir).catch(async (e) => {
      await rm(tmp, { recursive: true, force: true });
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
    });
  }
  return dir;
}

async function readPinned(dir, rel, pin) {
  if (!pin) throw new Error(`${rel}: no pin in sources.json`);
  const bytes = await readFile(join(dir, rel));
  if (bytes.length !== pin.bytes || sha256(bytes) !== pin.sha256) throw new Error(`${join(dir, rel)} does not match its pin (delete the folder to fetch it again)`);
  return bytes;
}

async function loadModel(tf, family, scale) {
  const dir = await packageDir(family);
  const pins = SOURCES.packages[family];
  const rel = `models/x${scale}`;
  const json = JSON.parse((await readPinned(dir, `${rel}/model.json`, pins.files[`${rel}/model.json`])).toString('utf8'));
  const paths = json.weightsManifest.flatMap((g) => g.paths);
  const shards = await Promise.all(paths.map((p) => readPinned(dir, `${rel}/${p}`, pins.files[`${rel}/${p}`])));
  const data = Buffer.concat(shards);
  if (family === 'thick') {
    for (const [f, pin] of Object.entries(pins.setupFiles)) await readPinned(dir, f, pin);
    require(join(dir, `dist/cjs/models/esrgan-thick/src/x${scale}/index.js`)).default.setup(tf);
  }
  // tfjs-node would read file:// paths; pure tfjs takes an IOHandler (RESEARCH §5).
  const handler = {
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
    }),
  };
  return tf.loadLayersModel(handler);
}

async function main() {
  const { out } = parseArgs(process.argv.slice(2));
  await mkdir(out, { recursive: true });
  const tf = require('@tensorflow/tfjs');
  if (tf.version.tfjs !== TFJS_VERSION) throw new Error(`@tensorflow/tfjs ${tf.version.tfjs} installed; the references use ${TFJS_VERSION}`);
  tf.enableProdMode(); // silences the "install tfjs-node" banner; computation is unchanged
  await tf.setBackend('cpu');
  await tf.ready();

  const { data: pixels, info } = await sharp(join(ROOT, CROP.source))
    .extract({ left: CROP.left, top: CROP.top, width: CROP.width, height: CROP.height })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`crop has ${info.channels} channels`);
  const inputFile = join(out, 'input.png');
  await sharp(pixels, { raw: { width: CROP.width, height: CROP.height, channels: 3 } }).png({ compressionLevel: 9, adaptiveFiltering: false }).toFile(inputFile);

  const manifest = {
    generator: 'scripts/make-tfjs-reference.mjs',
    reference: `@tensorflow/tfjs@${TFJS_VERSION} (pure JS), backend ${tf.getBackend()}`,
    tools: { node: process.version, sharp: sharp.versions.sharp, libvips: sharp.versions.vips },
    packages: Object.fromEntries(Object.entries(SOURCES.packages).map(([f, p]) => [f, { spec: p.spec, integrity: p.integrity, inputRange: p.inputRange }])),
    input: { file: 'input.png', ...CROP, sha256: sha256(await readFile(inputFile)) },
    preprocessing: 'NHWC float32 of the RGB values 0..255; models with inputRange 1 get tf.mul(x, 1/255) (UpscalerJS scaleIncomingPixels)',
    postprocessing: 'y.clipByValue(0, inputRange).mul(inputRange === 1 ? 255 : 1) (UpscalerJS scaleOutput), then Math.round to uint8',
    outputs: [],
  };

  for (const family of Object.keys(SOURCES.packages)) {
    const range = SOURCES.packages[family].inputRange;
    for (const scale of SOURCES.packages[family].scales) {
      const id = `esrgan-${family}-x${scale}`;
      const model = await loadModel(tf, family, scale);
      const t0 = performance.now();
      const result = tf.tidy(() => {
        let x = tf.tensor4d(Float32Array.from(pixels), [1, CROP.height, CROP.width, 3]);
        if (range === 1) x = tf.mul(x, 1 / 255);
        const y = model.predict(x);
        const scaled = y.clipByValue(0, range).mul(range === 1 ? 255 : 1);
        return { shape: y.shape, raw: y.dataSync(), scaled: scaled.dataSync() };
      });
      const secs = (performance.now() - t0) / 1000;
      model.dispose();
      const [, h, w, c] = result.shape;
      if (h !== CROP.height * scale || w !== CROP.width * scale || c !== 3) throw new Error(`${id}: output shape ${result.shape}`);
      const u8 = Uint8Array.from(result.scaled, (v) => Math.round(v));
      const file = `${id}.png`;
      await sharp(u8, { raw: { width: w, height: h, channels: 3 } }).png({ compressionLevel: 9, adaptiveFiltering: false }).toFile(join(out, file));
      let min = Infinity;
      let max = -Infinity;
      let clipped = 0;
      for (const v of result.raw) {
        min = Math.min(min, v);
        max = Math.max(max, v);
        if (v < 0 || v > range) clipped++;
      }
      manifest.outputs.push({
        file,
        model: `${SOURCES.packages[family].spec} models/x${scale}/model.json`,
        scale,
        inputRange: range,
        width: w,
        height: h,
        // Before clipping: how far the network overshoots its declared range.
        rawMin: Number(min.toPrecision(6)),
        rawMax: Number(max.toPrecision(6)),
        clippedFraction: Number((clipped / result.raw.length).toFixed(5)),
        sha256: sha256(await readFile(join(out, file))),
      });
      console.log(`${file} ${w}x${h} in ${secs.toFixed(1)} s; raw ${min.toFixed(4)}..${max.toFixed(4)}, ${clipped} values clipped`);
    }
  }
  await writeFile(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`wrote ${join(out, 'manifest.json')}`);
}

await main();
