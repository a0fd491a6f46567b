import { projectToInput } from '../../../core/fidelity/consistency';
import { blendCreativity, DEFAULT_CREATIVITY, validateCreativity } from '../../../core/fidelity/creativity';
import { lrPsnr } from '../../../core/fidelity/degradation';
import { Raster } from '../../../core/raster';
import { thrown } from '../../helpers';
import { CREATIVE, crop, FAST, fixture, rasterFrom, upscale } from './kit';

const l1 = (a: Raster, b: Raster) => Array.from(a.data).reduce((s, v, i) => s + Math.abs(v - b.data[i]), 0);
const l2 = (a: Raster, b: Raster) => Array.from(a.data).reduce((s, v, i) => s + (v - b.data[i]) ** 2, 0);

describe('creativity between two real results', () => {
  let input: Raster;
  let fidelity: Raster;
  let creative: Raster;
  beforeAll(async () => {
    input = crop(await fixture('ncnn-reference/input-c.png'), 8, 8, 40, 32);
    fidelity = projectToInput(await upscale(input, FAST), input);
    creative = await upscale(input, CREATIVE);
  });

  const steps = Array.from({ length: 11 }, (_, k) => k / 10);

  test('c = 0 and c = 1 give the two ends exactly', () => {
    expect(blendCreativity(fidelity, creative, 0).data).toEqual(fidelity.data);
    expect(blendCreativity(fidelity, creative, 1).data).toEqual(creative.data);
  });

  test('as c goes 0 → 1 the distance to the fidelity end grows and to the creative end shrinks, in L1 and L2, strictly', () => {
    const blends = steps.map((c) => blendCreativity(fidelity, creative, c));
    for (const distance of [l1, l2]) {
      const toFidelity = blends.map((b) => distance(b, fidelity));
      const toCreative = blends.map((b) => distance(b, creative));
      for (let k = 1; k < steps.length; k++) {
        expect(toFidelity[k]).toBeGreaterThan(toFidelity[k - 1]);
        expect(toCreative[k]).toBeLessThan(toCreative[k - 1]);
      }
    }
  });

  test('each sample moves monotonically (rounding included), not just the totals', () => {
    const blends = steps.map((c) => blendCreativity(fidelity, creative, c));
    let backwards = 0;
    let moves = 0;
    for (let i = 0; i < fidelity.data.length; i++) {
      const direction = Math.sign(creative.data[i] - fidelity.data[i]);
      for (let k = 1; k < steps.length; k++) {
        const step = direction * (blends[k].data[i] - blends[k - 1].data[i]);
        if (step < 0) backwards++;
        if (step > 0) moves++;
      }
    }
    expect(moves).toBeGreaterThan(fidelity.data.length);
    expect(backwards).toBe(0);
  });

  test('blends of two consistent ends stay consistent (D is linear): LR-PSNR ≥ 45 dB all along', () => {
    const creativeProjected = projectToInput(creative, input);
    expect(lrPsnr(creative, input, 4)).toBeLessThan(40);
    for (const c of [0, 0.3, 0.7, 1]) expect(lrPsnr(blendCreativity(fidelity, creativeProjected, c), input, 4)).toBeGreaterThanOrEqual(45);
  });
});

describe('the dial itself', () => {
  test('values outside 0..1 and non-numbers are refused with the allowed range', () => {
    const r = rasterFrom(2, 2, 3, () => 0);
    for (const bad of [-0.1, 1.5, 'lots', NaN]) {
      const error = thrown(() => blendCreativity(r, r, bad));
      expect(error.code).toBe('UPB_INVALID_OPTION');
      expect(error.details).toMatchObject({ option: 'creativity', allowed: 'a number from 0 to 1' });
    }
    expect(validateCreativity('0.25')).toBe(0.25);
  });

  test('each mode has its default: fidelity 0, balanced in between, creative 1', () => {
    expect(DEFAULT_CREATIVITY.fidelity).toBe(0);
    expect(DEFAULT_CREATIVITY.creative).toBe(1);
    expect(DEFAULT_CREATIVITY.balanced).toBeGreaterThan(0);
    expect(DEFAULT_CREATIVITY.balanced).toBeLessThan(1);
  });

  test('alpha, depth and size are the fidelity result\'s', () => {
    const a = rasterFrom(3, 2, 4, (x, y, c) => (c === 3 ? 200 : 10 * x), 8);
    const b = rasterFrom(3, 2, 4, (x, y, c) => (c === 3 ? 50 : 100 + y), 8);
    const blend = blendCreativity(a, b, 0.5);
    for (let i = 3; i < blend.data.length; i += 4) expect(blend.data[i]).toBe(200);
    expect(blend.data[0]).toBe(50);
  });
});
