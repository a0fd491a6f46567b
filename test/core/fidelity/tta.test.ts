import { findModel } from '../../../core/catalogue';
import { applySymmetry, symmetries, ttaAverage, upscaleWithTta, validateTtaCount } from '../../../core/fidelity/tta';
import { sharpResampler } from '../../../core/node/image-io';
import { psnr } from '../../../core/metrics';
import { Raster } from '../../../core/raster';
import { thrown } from '../../helpers';
import { crop, FAST, fixture, random, rasterFrom, runner, upscale } from './kit';

/** An exactly equivariant "upscale": each pixel repeated 2×2. */
async function replicate2x(r: Raster): Promise<Raster> {
  return rasterFrom(r.width * 2, r.height * 2, r.channels as 3, (x, y, c) => r.data[(Math.floor(y / 2) * r.width + Math.floor(x / 2)) * r.channels + c]);
}

const key = (r: Raster) => `${r.width}x${r.height}:${Array.from(r.data).join(',')}`;

describe('the symmetries', () => {
  const next = random(9);
  const image = rasterFrom(5, 3, 3, () => Math.floor(next() * 256));

  test('8 distinct views of an asymmetric image, 4 of which keep the axes', () => {
    expect(new Set(symmetries(8).map((s) => key(applySymmetry(image, s)))).size).toBe(8);
    const four = symmetries(4);
    expect(four).toHaveLength(4);
    for (const s of four) expect(applySymmetry(image, s).width).toBe(5);
    expect(symmetries(8).filter((s) => applySymmetry(image, s).width === 3)).toHaveLength(4);
    expect(symmetries(8)[0]).toEqual({ flipX: false, flipY: false, transpose: false });
  });

  test('an exactly equivariant upscale gives back its own result with zero spread', async () => {
    const tta = await ttaAverage(image, replicate2x, 8);
    expect(tta.raster.data).toEqual((await replicate2x(image)).data);
    expect(Math.max(...tta.spread)).toBe(0);
    expect(tta.runs).toBe(8);
  });

  test('an upscale that is not equivariant shows where: the spread is zero only where all views agree', async () => {
    // Adds 40 levels to the top-left output pixel of whatever it is given: under the 8 views that
    // pixel lands on the four corners, so the corners disagree and everything else agrees.
    const marked = async (r: Raster) => {
      const out = await replicate2x(r);
      for (let c = 0; c < 3; c++) out.data[c] = Math.min(255, out.data[c] + 40);
      return out;
    };
    const flat = rasterFrom(4, 4, 3, () => 100);
    const tta = await ttaAverage(flat, marked, 8);
    const W = 8;
    const corners = [0, W - 1, W * (W - 1), W * W - 1];
    // Each corner is marked in 2 of 8 views: mean 100 + 10, std 40·√(2/8·6/8) ≈ 17.3 levels.
    for (const p of corners) {
      expect(tta.raster.data[p * 3]).toBe(110);
      expect(tta.spread[p] * 255).toBeCloseTo(40 * Math.sqrt((2 / 8) * (6 / 8)), 3);
    }
    for (let p = 0; p < W * W; p++) if (!corners.includes(p)) expect(tta.spread[p]).toBe(0);
  });

  test('the count is 4 or 8', () => {
    expect(validateTtaCount('8')).toBe(8);
    const error = thrown(() => validateTtaCount(6));
    expect(error.code).toBe('UPB_INVALID_OPTION');
    expect(error.message).toBe('tta must be one of 4, 8, got 6');
  });
});

describe('TTA through upscaleRaster with a real model', () => {
  test('realesr-general-x4v3 on a non-square crop: the mean stays close to one run, the spread is small and not zero, progress covers all 8 runs', async () => {
    // A calm crop (cliffs and sea): on noisy foliage the views disagree by ~15 levels, here by ~3.
    const input = crop(await fixture('ncnn-reference/input-c.png'), 8, 8, 24, 16);
    const entry = findModel(FAST);
    const seen: Array<{ done: number; total: number }> = [];
    const tta = await upscaleWithTta(input, await runner(FAST), entry.scale, sharpResampler, { scale: 4, tile: 16, overlap: entry.overlap, alpha: 'model', onProgress: (p) => seen.push(p) }, 8);
    const single = await upscale(input, FAST);
    expect([tta.raster.width, tta.raster.height]).toEqual([96, 64]);
    // Measured 33.6 dB between the mean of the views and one run: close, not equal.
    const db = psnr(tta.raster.data, single.data, 255).db;
    expect(db).toBeGreaterThan(28);
    expect(db).toBeLessThan(Infinity);
    const meanSpread = tta.spread.reduce((s, v) => s + v, 0) / tta.spread.length;
    expect(meanSpread).toBeGreaterThan(0);
    expect(meanSpread * 255).toBeLessThan(8);
    const total = seen[seen.length - 1].total;
    expect(total).toBe(8 * 2);
    expect(seen[seen.length - 1].done).toBe(total);
    expect(seen.every((p, i) => i === 0 || p.done >= seen[i - 1].done)).toBe(true);
    expect(tta.tiles).toBe(16);
  });

  test('a cancel stops it between runs', async () => {
    const controller = new AbortController();
    let runs = 0;
    const upscaleOnce = async (r: Raster) => {
      runs++;
      controller.abort();
      return replicate2x(r);
    };
    await expect(ttaAverage(rasterFrom(4, 4, 3, () => 1), upscaleOnce, 8, controller.signal)).rejects.toMatchObject({ code: 'UPB_CANCELLED' });
    expect(runs).toBe(1);
  });
});
