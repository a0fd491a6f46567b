import { colourFixToInput, lowFrequency, waveletColourFix } from '../../../core/fidelity/colour-fix';
import { lrPsnr } from '../../../core/fidelity/degradation';
import { toFloat } from '../../../core/fidelity/image';
import { sharpResampler } from '../../../core/node/image-io';
import { Raster } from '../../../core/raster';
import { thrown } from '../../helpers';
import { crop, FAST, fixture, rasterFrom, upscale } from './kit';

function meanColour(r: Raster): number[] {
  const sums = [0, 0, 0];
  for (let i = 0; i < r.width * r.height; i++) for (let c = 0; c < 3; c++) sums[c] += r.data[i * r.channels + c];
  return sums.map((s) => s / (r.width * r.height));
}

/** The raster with each channel moved by `shift(x, y)[c]` levels (clipped). */
function tinted(r: Raster, shift: (x: number, y: number) => number[]): Raster {
  return rasterFrom(r.width, r.height, 3, (x, y, c) => Math.min(255, Math.max(0, r.data[(y * r.width + x) * r.channels + c] + shift(x, y)[c])));
}

const maxAbs = (a: Raster, b: Raster) => Array.from(a.data).reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i])), 0);

describe('wavelet colour fix on a real model output', () => {
  let input: Raster;
  let result: Raster;
  let reference: Raster;
  beforeAll(async () => {
    input = crop(await fixture('ncnn-reference/input-c.png'), 0, 0, 64, 48);
    // The model stretches this crop to 0..255; squeezed into 24..224 the tints below do not clip,
    // so a perfect fix is well defined. The detail is still the model's.
    const raw = await upscale(input, FAST);
    result = rasterFrom(raw.width, raw.height, 3, (x, y, c) => Math.round(24 + (raw.data[(y * raw.width + x) * 3 + c] * 200) / 255));
    reference = await sharpResampler.resize(input, result.width, result.height);
  });

  test('a uniform colour cast is removed completely: the fixed result equals the fix of the untinted one', () => {
    const cast = tinted(result, () => [18, -4, -15]);
    expect(maxAbs(waveletColourFix(cast, reference), waveletColourFix(result, reference))).toBeLessThanOrEqual(1);
  });

  test('a smooth colour drift (a gradient tint, as a model\'s tone shift) goes, the detail stays', () => {
    const drift = tinted(result, (x, y) => [Math.round((20 * x) / result.width), Math.round((-16 * y) / result.height), 8]);
    const fixed = waveletColourFix(drift, reference);
    const want = meanColour(reference);
    const before = meanColour(drift).map((m, c) => Math.abs(m - want[c]));
    const after = meanColour(fixed).map((m, c) => Math.abs(m - want[c]));
    expect(Math.max(...before)).toBeGreaterThan(5);
    expect(Math.max(...after)).toBeLessThan(0.75);
    // The high band (result − its own low band) is the drifted result's, almost sample for sample.
    const high = (r: Raster) => {
      const f = toFloat(r);
      return f.planes.map((p) => {
        const low = lowFrequency(p, r.width, r.height, 5);
        return p.map((v, i) => v - low[i]);
      });
    };
    const [a, b] = [high(drift), high(fixed)];
    let diff = 0;
    let energy = 0;
    a.forEach((p, c) => p.forEach((v, i) => ((diff += (v - b[c][i]) ** 2), (energy += v * v))));
    expect(diff / energy).toBeLessThan(0.01);
    // Under D the fix undoes what the drift cost (the rest is the model's own departure from the input).
    expect(lrPsnr(fixed, input, 4)).toBeGreaterThan(lrPsnr(drift, input, 4) + 1);
    expect(lrPsnr(fixed, input, 4)).toBeGreaterThan(lrPsnr(waveletColourFix(result, reference), input, 4) - 0.5);
  });

  test('colourFixToInput enlarges the input with the resampler and fixes against it', async () => {
    const cast = tinted(result, () => [-12, 10, 6]);
    expect(maxAbs(await colourFixToInput(cast, input, sharpResampler), waveletColourFix(cast, reference))).toBe(0);
  });
});

describe('the à-trous low band', () => {
  test('keeps a constant image constant (edge pixels repeated, weights summing to 1)', () => {
    const plane = new Float32Array(37 * 23).fill(0.42);
    for (const v of lowFrequency(plane, 37, 23, 5)) expect(v).toBeCloseTo(0.42, 6);
  });

  test('removes fine detail: a one-pixel checkerboard has no low band', () => {
    const plane = Float32Array.from({ length: 32 * 32 }, (_, i) => ((i % 32) + Math.floor(i / 32)) % 2);
    const low = lowFrequency(plane, 32, 32, 5);
    for (const v of low) expect(Math.abs(v - 0.5)).toBeLessThan(0.02);
  });
});

test('levels outside 1..8 are refused as UPB_INVALID_OPTION with the range', () => {
  const r = rasterFrom(4, 4, 3, () => 1);
  const error = thrown(() => waveletColourFix(r, r, 9));
  expect(error.code).toBe('UPB_INVALID_OPTION');
  expect(error.message).toBe('colourFixLevels must be an integer from 1 to 8, got 9');
});
