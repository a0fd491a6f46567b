import { promises as fs, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { findModel } from '../../core/catalogue';
import { planUpscale } from '../../core/modes';
import { lrPsnr } from '../../core/fidelity/degradation';
import { fillTransparentColour } from '../../core/alpha';
import { decodeImage, readImage, sharpResampler, writeImage } from '../../core/node/image-io';
import { shouldStream, upscaleFileStreaming, upscaleToPngFile, whyNotStreamed } from '../../core/node/upscale-stream';
import { upscaleFile } from '../../core/node/upscale-file';
import { Raster } from '../../core/raster';
import { InferenceRunner } from '../../core/session';
import { streamsRows, upscaleRaster, upscaleRasterToSink, UpscaleOptions } from '../../core/upscale';
import { runnerFor, syntheticRaster } from '../helpers';

const FAST = 'realesr-general-x4v3';
const X2 = 'esrgan-medium-x2';
const fixture = (name: string) => path.join(__dirname, '..', 'fixtures', name);

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-upscale-stream-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

function options(model: string, overrides: Partial<UpscaleOptions> = {}): UpscaleOptions {
  const entry = findModel(model);
  return { scale: entry.scale, tile: 4096, overlap: entry.exactOverlap ?? entry.overlap, alpha: 'model', ...overrides };
}

/** Collects the sink's rows into one raster, checking they come in order, each once. */
async function streamed(input: Raster, runner: InferenceRunner, model: string, opts: UpscaleOptions) {
  const parts: Raster[] = [];
  let next = 0;
  const result = await upscaleRasterToSink(input, runner, findModel(model).scale, sharpResampler, opts, async (rows, y) => {
    expect(y).toBe(next);
    expect(rows.height).toBeGreaterThan(0);
    next += rows.height;
    parts.push({ ...rows, data: rows.data.slice() });
    await new Promise((resolve) => setImmediate(resolve)); // a sink that really awaits
  });
  expect(next).toBe(result.height);
  const data = input.depth === 16 ? new Uint16Array(result.width * result.height * result.channels) : new Uint8Array(result.width * result.height * result.channels);
  let offset = 0;
  for (const p of parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  return { result, raster: { width: result.width, height: result.height, channels: result.channels, depth: result.depth, data } as Raster, batches: parts.length };
}

const same = (a: Raster, b: Raster) => {
  expect({ w: a.width, h: a.height, c: a.channels, d: a.depth }).toEqual({ w: b.width, h: b.height, c: b.channels, d: b.depth });
  expect(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength))).toBe(true);
};

/** An RGBA raster whose alpha is one level everywhere. */
function withFlatAlpha(r: Raster, level: number): Raster {
  const out = syntheticRaster(r.width, r.height, 4, r.depth);
  for (let i = 0; i < r.width * r.height; i++) {
    for (let c = 0; c < 3; c++) out.data[i * 4 + c] = r.data[i * 3 + c];
    out.data[i * 4 + 3] = level;
  }
  return out;
}

describe('streamed rows equal upscaleRaster\'s output, bit for bit', () => {
  let fast: InferenceRunner;
  beforeAll(async () => {
    fast = await runnerFor(FAST);
  });

  test.each([
    ['RGB 8-bit, odd size, a 3×2 tile grid', () => syntheticRaster(37, 29, 3, 8), { tile: 16 }],
    ['RGB 16-bit, tiled', () => syntheticRaster(23, 19, 3, 16), { tile: 12 }],
    ['grey 8-bit', () => syntheticRaster(21, 17, 1, 8), { tile: 16 }],
    ['grey+alpha 8-bit, alpha through the model', () => syntheticRaster(19, 13, 2, 8), { tile: 16 }],
    ['RGBA 8-bit, flat alpha (copied, not inferred)', () => withFlatAlpha(syntheticRaster(17, 15, 3, 8), 200), { tile: 16 }],
    ['RGBA 16-bit, alpha through the model', () => syntheticRaster(15, 11, 4, 16), { tile: 16 }],
    ['RGBA 8-bit, alpha by Lanczos', () => syntheticRaster(18, 14, 4, 8), { tile: 16, alpha: 'lanczos' as const }],
    ['16x with the 4x model: two passes, a 16-bit intermediate', () => syntheticRaster(9, 7, 3, 8), { scale: 16, tile: 8 }],
  ])('%s', async (_name, make, overrides) => {
    const input = make();
    const opts = options(FAST, overrides);
    const progress: number[] = [];
    const whole = await upscaleRaster(input, fast, 4, sharpResampler, opts);
    const out = await streamed(input, fast, FAST, { ...opts, onProgress: (p) => progress.push(p.done) });
    expect(out.result.streamed).toBe(true);
    expect(out.result).toMatchObject({ passes: whole.passes, tiles: whole.tiles });
    expect(progress[progress.length - 1]).toBe(whole.tiles);
    same(out.raster, whole.raster);
    // The rows really come in bands (one per tile row of the last pass), not all at the end.
    if (opts.tile < input.height) expect(out.batches).toBeGreaterThan(1);
  });

  test('2x model, 8x: three passes stream the last one', async () => {
    const runner = await runnerFor(X2);
    const input = syntheticRaster(7, 6, 3, 8);
    const opts = options(X2, { scale: 8, tile: 16 });
    const whole = await upscaleRaster(input, runner, 2, sharpResampler, opts);
    const out = await streamed(input, runner, X2, opts);
    expect(out.result).toMatchObject({ streamed: true, passes: 3 });
    same(out.raster, whole.raster);
  });

  test('a fractional scale (final Lanczos resize) is built whole, then handed over: same pixels, streamed false', async () => {
    const input = syntheticRaster(13, 9, 3, 8);
    const opts = options(FAST, { scale: 2.5 });
    expect(streamsRows(13, 9, 4, 2.5)).toBe(false);
    const whole = await upscaleRaster(input, fast, 4, sharpResampler, opts);
    const out = await streamed(input, fast, FAST, opts);
    expect(out.result.streamed).toBe(false);
    same(out.raster, whole.raster);
  });
});

describe('upscaleToPngFile', () => {
  let fast: InferenceRunner;
  beforeAll(async () => {
    fast = await runnerFor(FAST);
  });

  test.each([
    ['RGB 8-bit, 16x', () => syntheticRaster(9, 7, 3, 8), { scale: 16, tile: 8 }],
    ['RGBA 16-bit, 4x', () => syntheticRaster(15, 11, 4, 16), { tile: 8 }],
    ['grey 8-bit, 4x', () => syntheticRaster(13, 10, 1, 8), { tile: 8 }],
  ])('%s: decodes to the pixels writeImage writes; LR-PSNR as lrPsnr() gives it', async (_name, make, overrides) => {
    const input = make();
    const opts = options(FAST, overrides);
    const file = path.join(dir, `streamed-${input.channels}-${input.depth}.png`);
    const result = await upscaleToPngFile(file, input, fast, 4, opts);
    const whole = await upscaleRaster(input, fast, 4, sharpResampler, opts);
    const reference = path.join(dir, `whole-${input.channels}-${input.depth}.png`);
    await writeImage(reference, whole.raster);
    same((await decodeImage(await fs.readFile(file))).raster, (await decodeImage(await fs.readFile(reference))).raster);
    const colourSeen = input.channels === 4 ? fillTransparentColour(input) : input;
    expect(result.lrPsnr).toBe(Math.min(100, Number(lrPsnr(whole.raster, colourSeen).toFixed(2))));
  });

  test('a job cancelled midway leaves no file (and no temporary one)', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'cancel-'));
    const file = path.join(sub, 'out.png');
    const controller = new AbortController();
    const input = syntheticRaster(24, 24, 3, 8);
    let during: string[] = [];
    const opts = options(FAST, {
      tile: 8,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.done !== 5) return; // in the second tile row: the first row's pixels went out
        during = readdirSync(sub);
        controller.abort();
      },
    });
    await expect(upscaleToPngFile(file, input, fast, 4, opts)).rejects.toMatchObject({ code: 'UPB_CANCELLED' });
    expect(during).toEqual([expect.stringMatching(/^\.out\.png\..*\.tmp$/)]);
    expect(await fs.readdir(sub)).toEqual([]);
  });

  test('an inference failure midway leaves no file either', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'fail-'));
    let calls = 0;
    const flaky: InferenceRunner = {
      provider: 'cpu',
      run: async (t) => {
        if (++calls === 3) throw new Error('device lost');
        return fast.run(t);
      },
    };
    await expect(upscaleToPngFile(path.join(sub, 'out.png'), syntheticRaster(24, 24, 3, 8), flaky, 4, options(FAST, { tile: 8 }))).rejects.toMatchObject({ code: 'UPB_INFERENCE' });
    expect(await fs.readdir(sub)).toEqual([]);
  });
});

describe('upscale-file\'s streaming branch', () => {
  test('which requests stream', () => {
    const plain = planUpscale({ model: FAST, scale: 16 });
    expect(shouldStream(plain, 'png', { width: 8192, height: 8192 })).toBe(true);
    expect(shouldStream(plain, 'png', { width: 1024, height: 1024 })).toBe(false); // small: the usual path, its bytes unchanged
    expect(whyNotStreamed(plain, 'jpeg')).toMatch(/JPEG/);
    expect(whyNotStreamed(planUpscale({ mode: 'balanced' }), 'png')).toMatch(/mode/);
    expect(whyNotStreamed(planUpscale({ model: FAST, map: true }), 'png')).toMatch(/map/);
    expect(whyNotStreamed(planUpscale({ model: FAST, tta: 4 }), 'png')).toMatch(/TTA/);
  });

  test('the same report and pixels as upscaleFile, metadata kept', async () => {
    const input = path.join(dir, 'photo-in.png');
    // The real photo fixture, tagged with a P3 profile and 300 dpi so the metadata path is exercised.
    const photo = await readImage(fixture('photo-161x121.png'));
    await sharp(await fs.readFile(fixture('photo-161x121.png'))).extract({ left: 0, top: 0, width: 24, height: 20 }).withMetadata({ density: 300 }).withIccProfile('p3').png().toFile(input);
    expect(photo.raster.width).toBe(161);
    const request = { input, model: FAST, scale: 16, tile: 16 };
    const plan = planUpscale(request);
    const usual = await upscaleFile({ ...request, output: path.join(dir, 'usual.png') });
    const decoded = await readImage(input);
    const streamedReport = await upscaleFileStreaming({ ...request, output: path.join(dir, 'streamed.png') }, plan, decoded);
    const { seconds: _a, ...usualRest } = usual;
    const { seconds: _b, ...streamedRest } = streamedReport;
    expect(JSON.stringify(streamedRest)).toBe(JSON.stringify(usualRest));
    const a = await readImage(path.join(dir, 'usual.png'));
    const b = await readImage(path.join(dir, 'streamed.png'));
    same(b.raster, a.raster);
    expect(b.metadata.icc?.equals(decoded.metadata.icc!)).toBe(true);
    expect(b.metadata.density).toBe(300);
  });
});
