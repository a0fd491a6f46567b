/**
 * Peak memory of a huge output (issue 8): 16x of a photo, written as a PNG row by row
 * (core/node/upscale-stream.ts), against the bound "peak RSS under 1.5× the output's 8-bit size
 * plus a constant". Not a jest test: 16x of 1024² takes minutes of both CPUs.
 *
 *   node scripts/run-ts.mjs scripts/huge-output.ts [--size 1024] [--scale 16] [--model realesr-general-x4v3]
 *        [--source ../shared/images/hr/CSet14_barbara.png] [--usual] [--keep] [--json-out file]
 *
 * The input is the source photo resized (Lanczos) to cover size×size and centre-cropped: Set5/Set14
 * hold no 1024² photo. `--usual` measures the non-streaming path instead (upscaleRaster, then
 * writeImage: sharp encodes the whole raster), for comparison. Run one measurement per process:
 * peak RSS (VmHWM) is per process.
 *
 * Measured (2 shared vCPUs, Node 20, realesr-general-x4v3, tile 256, overlap 32, CSet14_barbara
 * to 1024²): 16x → 16384×16384 RGB, 768 MiB at 8 bits; peak RSS 838 MiB (1.09× the output; 0.77×
 * above the 250 MiB constant; limit 1.5× + constant = 1402 MiB), 733 s, a 209 MiB PNG. 16x of 256²
 * (4096², 48 MiB): streaming peak 456 MiB, usual path 511 MiB; there the constant and the
 * width-sized float band dominate.
 *
 * Prints one JSON line: output size, its 8-bit size, peak RSS (VmHWM), RSS before inference and
 * after one window was inferred (the constant: Node, sharp, ORT and its working memory for a
 * window), peak ÷ output, and whether peak < 1.5 × output + that constant.
 */
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { findModel } from '../core/catalogue';
import { decodeImage, sharpResampler, writeImage } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import { ortRunner } from '../core/node/ort-session';
import { upscaleToPngFile } from '../core/node/upscale-stream';
import { outputSize, upscaleRaster, UpscaleOptions } from '../core/upscale';

const MiB = 2 ** 20;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

/** kB figures from /proc/self/status (Linux), in MiB. */
function procStatus(field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'));
  if (!match) throw new Error(`no ${field} in /proc/self/status (Linux only)`);
  return Number(match[1]) / 1024;
}

async function main(): Promise<void> {
  const size = Number(arg('size', '1024'));
  const scale = Number(arg('scale', '16'));
  const modelId = arg('model', 'realesr-general-x4v3');
  // Relative to the checkout (run from its root, as npm scripts are): the bundle runs from .cache/.
  const source = arg('source', path.resolve('..', 'shared', 'images', 'hr', 'CSet14_barbara.png'));
  const usual = flag('usual');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-huge-'));
  const output = path.join(dir, `huge-${size}-x${scale}.png`);

  const photo = await sharp(source).resize(size, size, { fit: 'cover', kernel: 'lanczos3' }).removeAlpha().png().toBuffer();
  const { raster: input, metadata } = await decodeImage(photo, 'source');
  const model = findModel(modelId);
  const runner = await ortRunner((await new ModelStore().ensureOne(model.id)).onnxPath);
  const out = outputSize(input.width, input.height, scale);
  const outputBytes = out.width * out.height * input.channels; // 8-bit
  const baseline = procStatus('VmRSS');
  // ORT's working memory for one window (activations, arena) does not grow with the output: one
  // run of the largest window (tile + overlap on both sides) counts it into the constant.
  const side = model.tile + 2 * model.overlap;
  await runner.run({ data: new Float32Array(3 * side * side).fill(0.5), channels: 3, width: side, height: side });
  const warm = procStatus('VmRSS');

  let lastLog = 0;
  const started = performance.now();
  const options: UpscaleOptions = {
    scale,
    tile: model.tile,
    overlap: model.overlap,
    alpha: 'model',
    onProgress: (p) => {
      const now = performance.now();
      if (now - lastLog < 15000 && p.done !== p.total) return;
      lastLog = now;
      process.stderr.write(`${p.done}/${p.total} tiles, ${((now - started) / 1000).toFixed(0)} s, RSS ${procStatus('VmRSS').toFixed(0)} MiB, peak ${procStatus('VmHWM').toFixed(0)} MiB\n`);
    },
  };
  let passes = 0;
  let tiles = 0;
  let streamed = false;
  if (usual) {
    const result = await upscaleRaster(input, runner, model.scale, sharpResampler, options);
    await writeImage(output, result.raster, metadata);
    ({ passes, tiles } = result);
  } else {
    const result = await upscaleToPngFile(output, input, runner, model.scale, options, metadata);
    ({ passes, tiles, streamed } = result);
  }
  const seconds = (performance.now() - started) / 1000;
  const peak = procStatus('VmHWM');

  // The file is a complete PNG: sharp reads its header and decodes (sequentially, to the last
  // row) a strip at the bottom, through every IDAT and the zlib stream's end.
  const fileBytes = (await fs.stat(output)).size;
  const header = await sharp(output, { limitInputPixels: false }).metadata();
  const bottom = await sharp(output, { limitInputPixels: false, sequentialRead: true })
    .extract({ left: 0, top: out.height - 16, width: Math.min(256, out.width), height: 16 })
    .raw()
    .toBuffer();
  if (header.width !== out.width || header.height !== out.height || bottom.length !== Math.min(256, out.width) * 16 * input.channels) {
    throw new Error(`the written PNG is ${header.width}×${header.height}, expected ${out.width}×${out.height}`);
  }
  if (!flag('keep')) await fs.rm(dir, { recursive: true, force: true });

  const report = {
    path: usual ? 'usual (upscaleRaster + writeImage)' : 'streaming (upscaleToPngFile)',
    model: model.id,
    tile: model.tile,
    overlap: model.overlap,
    input: { width: input.width, height: input.height, source: path.basename(source) },
    output: { width: out.width, height: out.height, channels: input.channels, bytes8bit: outputBytes, MiB: Number((outputBytes / MiB).toFixed(1)), fileMiB: Number((fileBytes / MiB).toFixed(1)) },
    passes,
    tiles,
    streamed,
    seconds: Number(seconds.toFixed(1)),
    rss: {
      // Node, sharp, the input and the ORT session, before any inference.
      baselineMiB: Number(baseline.toFixed(0)),
      // The same after one window was inferred: the constant of "1.5 × output + a constant".
      constantMiB: Number(warm.toFixed(0)),
      peakMiB: Number(peak.toFixed(0)),
      peakOverOutput: Number(((peak * MiB) / outputBytes).toFixed(3)),
      peakAboveConstantOverOutput: Number((((peak - warm) * MiB) / outputBytes).toFixed(3)),
      limitMiB: Number((1.5 * outputBytes / MiB + warm).toFixed(0)),
      withinLimit: peak * MiB < 1.5 * outputBytes + warm * MiB,
    },
    ...(flag('keep') ? { file: output } : {}),
    node: process.version,
    cpus: os.cpus().length,
  };
  const line = JSON.stringify(report);
  process.stdout.write(`${line}\n`);
  const jsonOut = arg('json-out', '');
  if (jsonOut) await fs.writeFile(jsonOut, `${line}\n`);
}

main().catch((e) => {
  process.stderr.write(`huge-output: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
