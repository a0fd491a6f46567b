import { sharpResampler } from '../../../core/node/image-io';
import { areaAxis } from '../../../core/fidelity/axis';
import { degrade, lift, lrPsnr } from '../../../core/fidelity/degradation';
import { createFloatImage, FloatImage, toFloat } from '../../../core/fidelity/image';
import { outputSize } from '../../../core/scale';
import { thrown } from '../../helpers';
import { crop, fixture, random, rasterFrom } from './kit';

function randomImage(width: number, height: number, seed: number): FloatImage {
  const next = random(seed);
  const image = createFloatImage(width, height, 3);
  for (const plane of image.planes) for (let i = 0; i < plane.length; i++) plane[i] = next();
  return image;
}

const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('D, area averaging', () => {
  test('at an integer scale it is the plain r×r box mean (a real photo, computed here by hand)', async () => {
    const photo = toFloat(crop(await fixture('photo-161x121.png'), 0, 0, 160, 120));
    const down = degrade(photo, 40, 30);
    photo.planes.forEach((plane, c) => {
      const expected = new Float32Array(40 * 30);
      for (let y = 0; y < 30; y++) {
        for (let x = 0; x < 40; x++) {
          let s = 0;
          for (let dy = 0; dy < 4; dy++) for (let dx = 0; dx < 4; dx++) s += plane[(4 * y + dy) * 160 + 4 * x + dx];
          expected[y * 40 + x] = s / 16;
        }
      }
      expect(maxAbs(down.planes[c], expected)).toBeLessThan(1e-6);
    });
  });

  test('at a fractional scale it counts a straddling pixel by the fraction inside the footprint (2.5x, by hand)', () => {
    // 25 → 10: footprint i is [2.5i, 2.5i + 2.5). HR pixels 3.. are 1: footprint 1 = [2.5, 5) holds
    // half of pixel 2 (0) and pixels 3, 4 (1): (0.5·0 + 1 + 1) / 2.5 = 0.8.
    const step = createFloatImage(25, 1, 1);
    for (let x = 3; x < 25; x++) step.planes[0][x] = 1;
    expect(Array.from(degrade(step, 10, 1).planes[0])).toEqual([0, expect.closeTo(0.8, 6), 1, 1, 1, 1, 1, 1, 1, 1]);
  });

  test.each([
    [10, 25],
    [13, 43],
    [161, 403], // 2.5x as outputSize rounds it (402.5 → 403)
    [7, 8],
  ])('at a fractional scale (%s ← %s) it keeps the mean of any image (every output pixel is counted once in all)', (lr, hr) => {
    const image = randomImage(hr, 5, lr);
    const down = degrade(image, lr, 2);
    const mean = (p: Float32Array) => p.reduce((s, v) => s + v, 0) / p.length;
    image.planes.forEach((p, c) => expect(mean(down.planes[c])).toBeCloseTo(mean(p), 5));
  });

  test('weights of every footprint sum to 1, and footprints share only their edge pixels', () => {
    for (const [hr, lr] of [[25, 10], [403, 161], [16, 4], [8, 7]]) {
      const op = areaAxis(hr, lr);
      for (let i = 0; i < lr; i++) {
        let s = 0;
        for (let k = op.start[i]; k < op.start[i + 1]; k++) s += op.weight[k];
        expect(s).toBeCloseTo(1, 12);
        if (i > 0) expect(op.index[op.start[i]]).toBeGreaterThanOrEqual(op.index[op.start[i] - 1]);
      }
    }
  });
});

describe('U, the smooth right inverse', () => {
  test.each([
    [10, 7, 40, 28],
    [10, 7, 25, 18],
    [13, 9, 43, 30],
    [1, 9, 4, 36],
    [5, 5, 5, 5],
  ])('D(U(y)) = y for %s×%s → %s×%s', (w, h, W, H) => {
    const y = randomImage(w, h, w * 31 + W);
    const back = degrade(lift(y, W, H), w, h);
    y.planes.forEach((p, c) => expect(maxAbs(back.planes[c], p)).toBeLessThan(1e-5));
  });

  test('is continuous: steps across LR pixel edges are no larger than inside (replicating each LR pixel would put them all on the edges)', () => {
    const y = randomImage(20, 1, 5);
    const up = lift(y, 80, 1).planes[0];
    let edge = 0;
    let inside = 0;
    for (let x = 0; x + 1 < 80; x++) {
      const step = Math.abs(up[x + 1] - up[x]);
      if ((x + 1) % 4 === 0) edge = Math.max(edge, step);
      else inside = Math.max(inside, step);
    }
    expect(inside).toBeGreaterThan(0);
    expect(edge).toBeLessThanOrEqual(inside * 1.5);
  });
});

describe('lrPsnr', () => {
  test('is the PSNR of D(result) against the input: a hand-computed case', () => {
    const input = rasterFrom(1, 1, 3, () => 100);
    // D gives 101 in every channel: error 1 level, PSNR 10·log10(255²) = 48.13 dB.
    const result = rasterFrom(2, 2, 3, (x, y) => (x === 1 && y === 1 ? 104 : 100));
    expect(lrPsnr(result, input, 2)).toBeCloseTo(10 * Math.log10(255 * 255), 10);
  });

  test('is infinite for each input pixel repeated over its footprint, and finite for Lanczos', async () => {
    const input = crop(await fixture('photo-161x121.png'), 10, 10, 40, 30);
    const replicated = rasterFrom(160, 120, 3, (x, y, c) => input.data[(Math.floor(y / 4) * 40 + Math.floor(x / 4)) * 3 + c]);
    expect(lrPsnr(replicated, input, 4)).toBe(Infinity);
    const lanczos = await sharpResampler.resize(input, 160, 120);
    const db = lrPsnr(lanczos, input, 4);
    expect(db).toBeGreaterThan(15);
    expect(db).toBeLessThan(40);
  });

  test('takes fractional scales with the sizes outputSize gives', async () => {
    const input = crop(await fixture('photo-161x121.png'), 0, 0, 41, 33);
    const size = outputSize(41, 33, 2.5);
    const lanczos = await sharpResampler.resize(input, size.width, size.height);
    expect(Number.isFinite(lrPsnr(lanczos, input, 2.5))).toBe(true);
  });

  test('a scale that does not match the sizes is refused as UPB_INVALID_OPTION', () => {
    const input = rasterFrom(4, 4, 3, () => 9);
    const result = rasterFrom(16, 16, 3, () => 9);
    const error = thrown(() => lrPsnr(result, input, 3));
    expect(error.code).toBe('UPB_INVALID_OPTION');
    expect(error.details).toMatchObject({ option: 'scale' });
  });
});
