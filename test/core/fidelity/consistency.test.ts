import { projectFloat, projectToInput } from '../../../core/fidelity/consistency';
import { lrPsnr } from '../../../core/fidelity/degradation';
import { toFloat } from '../../../core/fidelity/image';
import { psnr } from '../../../core/metrics';
import { Raster } from '../../../core/raster';
import { thrown } from '../../helpers';
import { CREATIVE, crop, FAST, fixture, rasterFrom, upscale } from './kit';

/** PSNR over all samples of two same-sized rasters, 0..255. */
const samePsnr = (a: Raster, b: Raster) => psnr(a.data, b.data, 255).db;

/** Mean |second difference| along x, a measure of how much fine structure a raster has. */
function roughness(r: Raster): number {
  let s = 0;
  let n = 0;
  for (let y = 0; y < r.height; y++) {
    for (let x = 1; x + 1 < r.width; x++) {
      for (let c = 0; c < 3; c++) {
        const i = (y * r.width + x) * r.channels + c;
        s += Math.abs(r.data[i - r.channels] - 2 * r.data[i] + r.data[i + r.channels]);
        n++;
      }
    }
  }
  return s / n;
}

describe('projectToInput on real model outputs', () => {
  // The foliage crop is the hard case: noisy, with pure black and white next to each other, so the
  // models' detail clips and the settle has work to do.
  let foliage: Raster;
  beforeAll(async () => {
    foliage = await fixture('photo-161x121.png');
  });

  test.each([
    [FAST, 4, 161, 121],
    [CREATIVE, 4, 48, 40],
    [FAST, 2.5, 161, 121],
  ])('%s at %sx (%s×%s): LR-PSNR ≥ 45 dB after the projection, 8-bit, clipped and rounded', async (model, scale, width, height) => {
    const input = crop(foliage, 0, 0, width, height);
    const result = await upscale(input, model, scale);
    const before = lrPsnr(result, input, scale);
    const projected = projectToInput(result, input, scale);
    const after = lrPsnr(projected, input, scale);
    // Measured: general-x4v3 23.0 → 71.3 dB at 4x and 23.0 → 47.1 at 2.5x; x4plus about 24 → 71.
    expect(before).toBeLessThan(35);
    expect(after).toBeGreaterThanOrEqual(45);
    // The model's detail stays: the result changes far less than the correction to LR-PSNR
    // suggests, and keeps (at least 80 % of) its fine structure.
    expect(roughness(projected)).toBeGreaterThan(0.8 * roughness(result));
  });

  test('at integer scales the clipped pixels are settled exactly: every input pixel is met to within the rounding', async () => {
    const input = crop(foliage, 0, 0, 80, 60);
    const result = await upscale(input, FAST);
    const projection = projectFloat(toFloat(result), toFloat(input));
    // The smooth rounds alone leave clipped footprints far off; the settle brings every one in.
    expect(projection.smoothResidualLevels).toBeGreaterThan(1);
    expect(projection.residualLevels).toBeLessThanOrEqual(0.05);
    const values = projection.image.planes.flatMap((p) => [Math.min(...p), Math.max(...p)]);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThanOrEqual(1);
  });

  test('projecting twice changes nothing more than rounding', async () => {
    const input = crop(foliage, 20, 20, 40, 30);
    const once = projectToInput(await upscale(input, FAST), input);
    const twice = projectToInput(once, input);
    expect(samePsnr(once, twice)).toBeGreaterThan(50);
  });
});

describe('projectToInput on made-up cases', () => {
  test('a result that is already consistent comes back unchanged', () => {
    const input = rasterFrom(6, 5, 3, (x, y, c) => 40 + 20 * x + 10 * y + c);
    const replicated = rasterFrom(24, 20, 3, (x, y, c) => input.data[(Math.floor(y / 4) * 6 + Math.floor(x / 4)) * 3 + c]);
    expect(projectToInput(replicated, input, 4).data).toEqual(replicated.data);
  });

  test('the correction is smooth: a uniformly too-bright result is brought down evenly, without blocks', () => {
    const input = rasterFrom(8, 8, 3, (x, y) => 60 + 10 * ((x + y) % 3));
    const tooBright = rasterFrom(32, 32, 3, (x, y, c) => input.data[(Math.floor(y / 4) * 8 + Math.floor(x / 4)) * 3 + c] + 12);
    const projected = projectToInput(tooBright, input, 4);
    expect(lrPsnr(projected, input, 4)).toBeGreaterThan(60);
    // The offset is the same everywhere, so the correction must be a flat −12 everywhere too.
    for (let i = 0; i < projected.data.length; i++) expect(Math.abs(projected.data[i] - (tooBright.data[i] - 12))).toBeLessThanOrEqual(1);
  });

  test('alpha is kept and 16-bit results are projected at their own depth', () => {
    const input = rasterFrom(5, 4, 4, (x, y, c) => (c === 3 ? 1000 * (x + 1) : 20000 + 3000 * x + 500 * y * c), 16);
    const result = rasterFrom(20, 16, 4, (x, y, c) => (c === 3 ? 777 : 20000 + 750 * x + 125 * y * c + ((x * 7 + y * 3) % 5) * 900), 16);
    const projected = projectToInput(result, input, 4);
    expect(projected.depth).toBe(16);
    for (let i = 3; i < projected.data.length; i += 4) expect(projected.data[i]).toBe(777);
    expect(lrPsnr(result, input, 4)).toBeLessThan(45);
    expect(lrPsnr(projected, input, 4)).toBeGreaterThan(80);
  });

  test('a scale that does not match the sizes is refused', () => {
    const error = thrown(() => projectToInput(rasterFrom(8, 8, 3, () => 1), rasterFrom(2, 2, 3, () => 1), 3));
    expect(error.code).toBe('UPB_INVALID_OPTION');
  });
});
