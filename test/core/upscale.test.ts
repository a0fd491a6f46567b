import * as path from 'node:path';
import { findModel } from '../../core/catalogue';
import { Raster } from '../../core/raster';
import { InferenceRunner, TileTensor } from '../../core/session';
import { passCount, upscaleRaster, UpscaleOptions, validateUpscaleOptions } from '../../core/upscale';
import { readImage, sharpResampler } from '../../core/node/image-io';
import { maxAbsDiff, runnerFor } from '../helpers';

const FAST = 'realesr-general-x4v3';
const PHOTO = path.join(__dirname, '..', 'fixtures', 'ncnn-reference', 'input-c.png');

function crop(r: Raster, x0: number, y0: number, width: number, height: number): Raster {
  const data = r.depth === 16 ? new Uint16Array(width * height * r.channels) : new Uint8Array(width * height * r.channels);
  for (let y = 0; y < height; y++) {
    const from = ((y0 + y) * r.width + x0) * r.channels;
    data.set(r.data.subarray(from, from + width * r.channels), y * width * r.channels);
  }
  return { ...r, width, height, data };
}

async function photo(width: number, height: number): Promise<Raster> {
  return crop((await readImage(PHOTO)).raster, 3, 2, width, height);
}

async function run(input: Raster, options: Partial<UpscaleOptions> & { runner?: InferenceRunner; model?: string } = {}) {
  const model = options.model ?? FAST;
  const entry = findModel(model);
  const runner = options.runner ?? (await runnerFor(model));
  return upscaleRaster(input, runner, entry.scale, sharpResampler, {
    scale: 4,
    tile: 4096,
    overlap: entry.exactOverlap ?? entry.overlap,
    alpha: 'model',
    ...options,
  });
}

describe('tiled output equals whole-image output within 1/255', () => {
  const overlap = findModel(FAST).exactOverlap;
  const fixture = (name: string) => readImage(path.join(__dirname, '..', 'fixtures', name)).then((d) => d.raster);

  test.each([
    ['odd sizes, a 4×3 grid', 161, 121, 41],
    ['a 1×N strip', 1, 121, 30],
    ['an N×1 strip', 161, 1, 30],
    ['an image smaller than a tile in one direction', 161, 11, 40],
    ['an image smaller than one tile', 9, 7, 16],
  ])('%s (realesr-general-x4v3)', async (_name, width, height, tile) => {
    const input = crop(await fixture('photo-161x121.png'), 0, 0, width, height);
    const whole = await run(input, { tile: 4096, overlap });
    const tiled = await run(input, { tile, overlap });
    expect(tiled.tiles).toBe(Math.ceil(width / tile) * Math.ceil(height / tile));
    expect(maxAbsDiff(tiled.raster, whole.raster)).toBeLessThanOrEqual(1);
  });

  test('with too little overlap the difference is visible, so the check above has teeth', async () => {
    const input = await fixture('photo-161x121.png');
    const whole = await run(input, { tile: 4096, overlap: 8 });
    const tiled = await run(input, { tile: 41, overlap: 8 });
    expect(maxAbsDiff(tiled.raster, whole.raster)).toBeGreaterThan(8);
  });

  test('realesrgan-x4plus: two tiles cut a 256×24 photo strip', async () => {
    const model = 'realesrgan-x4plus';
    const input = await fixture('photo-strip-256x24.png');
    const exact = findModel(model).exactOverlap;
    const whole = await run(input, { model, tile: 4096, overlap: exact });
    const tiled = await run(input, { model, tile: 128, overlap: exact });
    expect(tiled.tiles).toBe(2);
    expect(maxAbsDiff(tiled.raster, whole.raster)).toBeLessThanOrEqual(1);
  });
});

describe('scale', () => {
  test.each([
    [1, 1, 13, 9],
    [2, 1, 26, 18],
    [2.5, 1, 33, 23], // round(13 × 2.5) = 33 (32.5 rounds up), round(9 × 2.5) = 23
    [4, 1, 52, 36],
    [6, 2, 78, 54],
    [16, 2, 208, 144],
  ])('scale %s runs %s pass(es) and gives exactly %s×%s', async (scale, passes, width, height) => {
    const result = await run(await photo(13, 9), { scale, tile: 8, overlap: 8 });
    expect(result.passes).toBe(passes);
    expect([result.raster.width, result.raster.height]).toEqual([width, height]);
  });

  test('passCount covers the scale with the fewest model passes', () => {
    expect([1, 3.9, 4, 4.1, 16, 16.5].map((s) => passCount(s, 4))).toEqual([1, 1, 1, 2, 2, 3]);
  });

  test('options outside their range are refused with the parameter and range named', () => {
    const defaults = { tile: 256, overlap: 16 };
    expect(() => validateUpscaleOptions({ scale: 17 }, defaults)).toThrow('scale must be a number from 1 to 16, got 17');
    expect(() => validateUpscaleOptions({ scale: 'big' }, defaults)).toThrow('scale must be a number from 1 to 16, got "big"');
    expect(() => validateUpscaleOptions({ tile: 8 }, defaults)).toThrow('tile must be an integer from 16 to 4096, got 8');
    expect(() => validateUpscaleOptions({ overlap: 1.5 }, defaults)).toThrow('overlap must be an integer from 0 to 256');
    expect(() => validateUpscaleOptions({ alpha: 'x' }, defaults)).toThrow('alpha must be one of model, lanczos');
    expect(() => validateUpscaleOptions({ scale: 0 }, defaults)).toThrow(expect.objectContaining({ code: 'UPB_INVALID_OPTION', details: expect.objectContaining({ option: 'scale' }) }));
  });

  test('a model that does not enlarge runs once and Lanczos does the scaling', () => {
    expect(passCount(4, 1)).toBe(1);
  });
});

describe('progress, cancellation and out-of-memory', () => {
  test('progress counts every tile once, from 0 to total', async () => {
    const seen: number[] = [];
    let total = 0;
    await run(await photo(40, 20), { tile: 16, overlap: 4, onProgress: (p) => (seen.push(p.done), (total = p.total)) });
    expect(total).toBe(6);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  test('an abort stops the job within one tile', async () => {
    const real = await runnerFor(FAST);
    const controller = new AbortController();
    let calls = 0;
    const runner: InferenceRunner = {
      provider: real.provider,
      run: async (t: TileTensor) => {
        calls++;
        return real.run(t);
      },
    };
    let callsAtAbort = 0;
    const abortAfterTwo = (p: { done: number }) => {
      if (p.done !== 2) return;
      callsAtAbort = calls;
      controller.abort();
    };
    const job = run(await photo(48, 32), { runner, tile: 16, overlap: 4, signal: controller.signal, onProgress: abortAfterTwo });
    await expect(job).rejects.toMatchObject({ code: 'UPB_CANCELLED' });
    // Tiles are pipelined: the next window is already inferring when a tile is reported done. It
    // finishes (a session is never left running), and nothing starts after the abort.
    expect(callsAtAbort).toBe(3);
    expect(calls).toBe(callsAtAbort);
  });

  test('a tile that runs out of memory is split and retried, with the same result', async () => {
    const real = await runnerFor(FAST);
    const failed: number[] = [];
    const succeeded: number[] = [];
    const runner: InferenceRunner = {
      provider: real.provider,
      run: async (t: TileTensor) => {
        if (t.width > 70) {
          failed.push(t.width);
          throw new Error('Failed to allocate memory for requested buffer of size 123456');
        }
        succeeded.push(t.width);
        return real.run(t);
      },
    };
    const input = (await readImage(PHOTO)).raster; // 64×48: one 84×68 window (border padding 10)
    const overlap = findModel(FAST).exactOverlap;
    const reference = await run(input, { tile: 4096, overlap });
    const split = await run(input, { runner, tile: 4096, overlap });
    expect(failed[0]).toBe(84);
    expect(succeeded.length).toBeGreaterThan(1);
    expect(Math.max(...succeeded)).toBeLessThanOrEqual(70);
    expect(maxAbsDiff(split.raster, reference.raster)).toBeLessThanOrEqual(1);
  });

  test('when even the smallest tile runs out of memory the job fails with a typed error, not a black tile', async () => {
    const runner: InferenceRunner = { provider: 'cpu', run: async () => Promise.reject(new Error('CUDA out of memory')) };
    await expect(run(await photo(40, 30), { runner, tile: 32, overlap: 4 })).rejects.toMatchObject({ code: 'UPB_INFERENCE', message: expect.stringContaining('out of memory even on') });
  });
});

describe('channels and bit depth', () => {
  test('16-bit input stays 16-bit end to end', async () => {
    const eight = await photo(12, 10);
    const data = new Uint16Array(eight.data.length);
    for (let i = 0; i < data.length; i++) data[i] = eight.data[i] * 257 + (i % 97); // sub-8-bit detail
    const result = await run({ ...eight, depth: 16, data }, { tile: 4096 });
    expect(result.raster.depth).toBe(16);
    expect(result.raster.data).toBeInstanceOf(Uint16Array);
    const notFrom8Bit = Array.from(result.raster.data).filter((v) => v % 257 !== 0).length;
    expect(notFrom8Bit).toBeGreaterThan(0.9 * result.raster.data.length);
  });

  test('grey stays grey, grey+alpha keeps its alpha', async () => {
    const rgb = await photo(12, 10);
    const grey = new Uint8Array(12 * 10);
    const greyAlpha = new Uint8Array(12 * 10 * 2);
    for (let i = 0; i < 120; i++) {
      grey[i] = rgb.data[i * 3 + 1];
      greyAlpha[i * 2] = grey[i];
      greyAlpha[i * 2 + 1] = i < 60 ? 255 : 128;
    }
    const g = await run({ width: 12, height: 10, channels: 1, depth: 8, data: grey });
    expect(g.raster.channels).toBe(1);
    expect(g.raster.data.length).toBe(48 * 40);
    const ga = await run({ width: 12, height: 10, channels: 2, depth: 8, data: greyAlpha }, { alpha: 'lanczos' });
    expect(ga.raster.channels).toBe(2);
    expect(ga.raster.data[1]).toBe(255); // top-left: opaque
    expect(ga.raster.data[ga.raster.data.length - 1]).toBe(128); // bottom-right: half transparent
  });

  test.each(['model', 'lanczos'] as const)('alpha = %s: no dark fringe where an opaque shape meets transparent black', async (alpha) => {
    // A 200/120/60 orange disk on fully transparent *black* pixels.
    const size = 24;
    const data = new Uint8Array(size * size * 4);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inside = (x - 11.5) ** 2 + (y - 11.5) ** 2 < 8 ** 2;
        if (inside) data.set([200, 120, 60, 255], (y * size + x) * 4);
      }
    }
    const result = await run({ width: size, height: size, channels: 4, depth: 8, data }, { alpha });
    const out = result.raster.data;
    let visibleEdge = 0;
    let darkest = 255;
    for (let i = 0; i < out.length; i += 4) {
      if (out[i + 3] >= 32 && out[i + 3] <= 224) {
        visibleEdge++;
        darkest = Math.min(darkest, out[i]);
      }
    }
    expect(visibleEdge).toBeGreaterThan(50);
    // Without the colour fill the black background pulls edge reds far below 150.
    expect(darkest).toBeGreaterThan(150);
  });
});

describe('alpha across passes and borders', () => {
  function rgba(width: number, height: number, alphaAt: (x: number, y: number) => number): Promise<Raster> {
    return photo(width, height).then((rgb) => {
      const data = new Uint8Array(width * height * 4);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const i = y * width + x;
          data.set([rgb.data[i * 3], rgb.data[i * 3 + 1], rgb.data[i * 3 + 2], alphaAt(x, y)], i * 4);
        }
      }
      return { width, height, channels: 4, depth: 8, data } as Raster;
    });
  }

  test.each([255, 128, 0])('a flat alpha of %s is kept exactly and costs no extra inference', async (level) => {
    const tiles: number[] = [];
    const result = await run(await rgba(12, 10, () => level), { onProgress: (p) => tiles.push(p.total) });
    expect(tiles[0]).toBe(1); // colour only: the alpha is not inferred
    const alpha = Array.from(result.raster.data.filter((_, i) => i % 4 === 3));
    expect(new Set(alpha)).toEqual(new Set([level]));
  });

  test.each(['model', 'lanczos'] as const)('16x with alpha = %s: two passes, exact size, alpha edges kept', async (alpha) => {
    const input = await rgba(6, 5, (x) => (x < 3 ? 255 : 0));
    const result = await run(input, { scale: 16, alpha, tile: 64 });
    expect(result.passes).toBe(2);
    expect([result.raster.width, result.raster.height, result.raster.channels]).toEqual([96, 80, 4]);
    const a = (x: number, y: number) => result.raster.data[(y * 96 + x) * 4 + 3];
    expect(a(5, 40)).toBeGreaterThan(240); // well inside the opaque half
    expect(a(90, 40)).toBeLessThan(15); // well inside the transparent half
  });

  test('16-bit input through two passes and a Lanczos resize stays 16-bit', async () => {
    const eight = await photo(6, 5);
    const data = Uint16Array.from(eight.data, (v, i) => v * 257 + (i % 31));
    const result = await run({ ...eight, depth: 16, data }, { scale: 10, tile: 64 });
    expect([result.raster.width, result.raster.height, result.raster.depth]).toEqual([60, 50, 16]);
    expect(Array.from(result.raster.data).filter((v) => v % 257 !== 0).length).toBeGreaterThan(0.9 * result.raster.data.length);
  });

  test('the image border always gets the same mirrored padding, whatever the overlap', async () => {
    const input = await photo(24, 20);
    const a = await run(input, { overlap: 0 });
    const b = await run(input, { overlap: 40 });
    expect(maxAbsDiff(a.raster, b.raster)).toBe(0);
  });
});
