import { projectToInput } from '../../../core/fidelity/consistency';
import { DetailMap, inventedDetailMap, mapToRaster, summary, TAU_LEVELS } from '../../../core/fidelity/detail-map';
import { evaluateMap } from '../../../core/fidelity/evaluate';
import { Raster } from '../../../core/raster';
import { crop, FAST, fixture, rasterFrom, upscale } from './kit';

const inside = (x: number, y: number, box: { x0: number; y0: number; x1: number; y1: number }) => x >= box.x0 && x < box.x1 && y >= box.y0 && y < box.y1;

/** Mean of the map over a box, and over everything at least `margin` pixels away from it. */
function meanInOut(map: DetailMap, box: { x0: number; y0: number; x1: number; y1: number }, margin: number) {
  let sIn = 0;
  let nIn = 0;
  let sOut = 0;
  let nOut = 0;
  for (let y = 0; y < map.height; y++) {
    for (let x = 0; x < map.width; x++) {
      const v = map.data[y * map.width + x];
      if (inside(x, y, box)) (sIn += v), nIn++;
      else if (!inside(x, y, { x0: box.x0 - margin, y0: box.y0 - margin, x1: box.x1 + margin, y1: box.y1 + margin })) (sOut += v), nOut++;
    }
  }
  return { inside: sIn / nIn, outside: sOut / nOut };
}

describe('inventedDetailMap', () => {
  let input: Raster;
  let fidelity: Raster;
  const box = { x0: 96, y0: 48, x1: 160, y1: 112 };
  beforeAll(async () => {
    input = crop(await fixture('ncnn-reference/input-c.png'), 0, 0, 64, 48);
    fidelity = projectToInput(await upscale(input, FAST), input);
  });

  /** The fidelity result with `change(x, y)` levels added inside the box (clipped). */
  const edited = (change: (x: number, y: number) => number) =>
    rasterFrom(fidelity.width, fidelity.height, 3, (x, y, c) => {
      const v = fidelity.data[(y * fidelity.width + x) * 3 + c] + (inside(x, y, box) ? change(x, y) : 0);
      return Math.min(255, Math.max(0, v));
    });

  test('a result that invents nothing (the consistent fidelity result against itself) gets a dark map', () => {
    const map = inventedDetailMap({ input, creative: fidelity, fidelity });
    expect(Math.max(...map.data)).toBeLessThan(0.05);
    expect(summary(map).shareOver).toBe(0);
  });

  test('texture the input cannot see (a 1-pixel checkerboard: it averages away under D) lights up where it was drawn', () => {
    const creative = edited((x, y) => ((x + y) % 2 ? 24 : -24));
    const map = inventedDetailMap({ input, creative, fidelity });
    const m = meanInOut(map, box, 8);
    // 24 levels of disagreement: 1 − exp(−24/24) = 0.63 (a little less where the result clips).
    expect(m.inside).toBeGreaterThan(0.55);
    expect(m.outside).toBeLessThan(0.05);
    const largest = summary(map).regions[0];
    // The region's box is the drawn box, grown by at most the window (tent half-width 4 at 4x).
    expect(largest.x).toBeGreaterThanOrEqual(box.x0 - 4);
    expect(largest.x).toBeLessThanOrEqual(box.x0);
    expect(largest.x + largest.width).toBeGreaterThanOrEqual(box.x1);
    expect(largest.x + largest.width).toBeLessThanOrEqual(box.x1 + 4);
    expect(largest.y).toBeGreaterThanOrEqual(box.y0 - 4);
    expect(largest.y + largest.height).toBeLessThanOrEqual(box.y1 + 4);
  });

  test('without a fidelity result, a change the input contradicts is still found through LR-inconsistency', () => {
    const creative = edited(() => 30);
    const alone = inventedDetailMap({ input, creative });
    const m = meanInOut(alone, box, 8);
    // 30 levels brighter under D: 1 − exp(−30/24) = 0.71, less where the result clips at 255.
    expect(m.inside).toBeGreaterThan(0.55);
    expect(m.outside).toBeLessThan(0.05);
    // The checkerboard is invisible to this signal alone: that is what the other two are for.
    const hidden = inventedDetailMap({ input, creative: edited((x, y) => ((x + y) % 2 ? 24 : -24)) });
    expect(meanInOut(hidden, box, 8).inside).toBeLessThan(0.1);
  });

  test('the TTA spread counts on its own', () => {
    const spread = new Float32Array(fidelity.width * fidelity.height);
    for (let y = box.y0; y < box.y1; y++) for (let x = box.x0; x < box.x1; x++) spread[y * fidelity.width + x] = 10 / 255;
    const map = inventedDetailMap({ input, creative: fidelity, fidelity, spread });
    const m = { ...meanInOut(map, { x0: box.x0 + 8, y0: box.y0 + 8, x1: box.x1 - 8, y1: box.y1 - 8 }, 16), outside: meanInOut(map, box, 8).outside };
    // 10 levels of spread alone, counted twice: 1 − exp(−20/τ).
    expect(m.inside).toBeCloseTo(1 - Math.exp(-20 / TAU_LEVELS), 2);
    expect(m.outside).toBeLessThan(0.05);
  });

  test('the curve is absolute: A levels of disagreement read 1 − exp(−A/τ), whatever the rest of the image', () => {
    for (const amplitude of [6, 12, 18]) {
      const map = inventedDetailMap({ input, creative: edited((x, y) => ((x + y) % 2 ? amplitude : -amplitude)), fidelity });
      // The centre of the box, away from the window's ramp and from clipped samples' influence.
      const m = meanInOut(map, { x0: box.x0 + 8, y0: box.y0 + 8, x1: box.x1 - 8, y1: box.y1 - 8 }, 16);
      expect(m.inside).toBeCloseTo(1 - Math.exp(-amplitude / TAU_LEVELS), 1);
    }
  });
});

describe('inventedDetailMap against ground truth', () => {
  test('it ranks invented texture above a strong edge the input supports, where the gradient baseline ranks them the other way', () => {
    // Truth: a sharp vertical edge (40 → 200) on an otherwise flat 64×64 image; the input is its 4× area average.
    const truth = rasterFrom(64, 64, 3, (x) => (x < 44 ? 40 : 200));
    const input = rasterFrom(16, 16, 3, (x, y, c) => {
      let s = 0;
      for (let j = 0; j < 4; j++) for (let i = 0; i < 4; i++) s += truth.data[((4 * y + j) * 64 + 4 * x + i) * 3 + c];
      return Math.round(s / 16);
    });
    // The result gets the edge right and invents a ±12 checkerboard on a flat 24×24 patch (9 of the 64 blocks).
    const inPatch = (x: number, y: number) => x >= 8 && x < 32 && y >= 16 && y < 40;
    const creative = rasterFrom(64, 64, 3, (x, y, c) => truth.data[(y * 64 + x) * 3 + c] + (inPatch(x, y) ? ((x + y) % 2 ? 12 : -12) : 0));
    const e = evaluateMap(inventedDetailMap({ input, creative, fidelity: truth }), creative, truth);
    expect(e.positives).toBe(9);
    expect(e.auroc).toBeGreaterThan(0.95);
    // The checkerboard has almost no Sobel gradient; the edge has the most: an edge detector gets it backwards.
    expect(e.baselineAuroc).toBeLessThan(e.auroc - 0.3);
  });
});

describe('summary', () => {
  const map = (width: number, height: number, on: Array<[number, number]>, value = 0.9): DetailMap => {
    const data = new Float32Array(width * height).fill(0.1);
    for (const [x, y] of on) data[y * width + x] = value;
    return { width, height, data };
  };

  test('mean, share over 0.5, and the largest regions first, 8-connected', () => {
    // A 3×2 block at (1, 1); a diagonal pair (6, 0)-(7, 1) that touches only at a corner; one pixel at (0, 5).
    const on: Array<[number, number]> = [[1, 1], [2, 1], [3, 1], [1, 2], [2, 2], [3, 2], [6, 0], [7, 1], [0, 5]];
    const s = summary(map(8, 6, on));
    expect(s.mean).toBeCloseTo((9 * 0.9 + 39 * 0.1) / 48, 6);
    expect(s.shareOver).toBeCloseTo(9 / 48, 12);
    expect(s.regions).toEqual([
      { x: 1, y: 1, width: 3, height: 2, pixels: 6 },
      { x: 6, y: 0, width: 2, height: 2, pixels: 2 },
      { x: 0, y: 5, width: 1, height: 1, pixels: 1 },
    ]);
    expect(summary(map(8, 6, on), 2).regions).toHaveLength(2);
  });

  test('exactly 0.5 is not over the threshold', () => {
    expect(summary(map(4, 4, [[1, 1]], 0.5)).shareOver).toBe(0);
  });

  test('a region the size of a whole large map does not overflow anything', () => {
    const big = map(2000, 1000, [], 0.9);
    big.data.fill(0.9);
    const s = summary(big);
    expect(s.regions).toEqual([{ x: 0, y: 0, width: 2000, height: 1000, pixels: 2_000_000 }]);
  });

  test('mapToRaster writes 0..1 as 0..255 grey', () => {
    const r = mapToRaster({ width: 3, height: 1, data: Float32Array.from([0, 0.5, 1]) });
    expect([r.channels, r.depth, Array.from(r.data)]).toEqual([1, 8, [0, 128, 255]]);
  });
});
