import { mirrorIndex, planAxis, tileCount } from '../../core/tiler';

/** Reflect-101 by walking: bounce off each end without repeating the edge sample. */
function mirrorByWalking(i: number, length: number): number {
  if (length === 1) return 0;
  let m = i;
  while (m < 0 || m >= length) m = m < 0 ? -m : 2 * (length - 1) - m;
  return m;
}

describe('mirrorIndex (reflect-101)', () => {
  test('indices inside [0, length) map to themselves', () => {
    for (const n of [2, 3, 7]) for (let i = 0; i < n; i++) expect(mirrorIndex(i, n)).toBe(i);
  });

  test('mirrors without repeating the edge: −1 → 1, −2 → 2, n → n−2, n+1 → n−3', () => {
    expect(mirrorIndex(-1, 5)).toBe(1);
    expect(mirrorIndex(-2, 5)).toBe(2);
    expect(mirrorIndex(5, 5)).toBe(3);
    expect(mirrorIndex(6, 5)).toBe(2);
    expect(mirrorIndex(-1, 2)).toBe(1);
    expect(mirrorIndex(2, 2)).toBe(0);
  });

  test('is periodic with period 2·(length−1) for indices far outside the image', () => {
    for (const n of [2, 3, 4, 9]) {
      const period = 2 * (n - 1);
      for (let i = -3 * period; i < 3 * period; i++) {
        // `+ 0` folds -0 (what `%` gives for negative multiples of the period) into 0; as an index they are the same.
        expect(mirrorIndex(i, n) + 0).toBe(mirrorIndex(i + period, n) + 0);
        expect(mirrorIndex(i, n) + 0).toBe(mirrorByWalking(i, n));
      }
    }
    expect(mirrorIndex(-1000, 3) + 0).toBe(0);
    expect(mirrorIndex(-1001, 3)).toBe(1);
    expect(mirrorIndex(1001, 3)).toBe(1);
  });

  test('a length-1 axis maps every index to 0', () => {
    for (const i of [-100, -1, 0, 1, 2, 37]) expect(mirrorIndex(i, 1)).toBe(0);
  });

  test('always returns an index inside [0, length)', () => {
    for (let n = 1; n <= 6; n++) {
      for (let i = -40; i <= 40; i++) {
        const m = mirrorIndex(i, n);
        expect(Number.isInteger(m) && m >= 0 && m < n).toBe(true);
      }
    }
  });
});

const LENGTHS = [1, 2, 3, 5, 7, 16, 17, 31, 64, 100, 257, 1000];
const TILES = [1, 2, 3, 4, 7, 8, 16, 32, 64, 128, 512];
const OVERLAPS = [0, 1, 2, 3, 5, 8, 16, 32];
const SCALES = [1, 2, 3, 4];

describe('planAxis', () => {
  test('cores cover [0, length) exactly, are balanced (sizes differ by ≤ 1) and never exceed the tile', () => {
    const failures: string[] = [];
    for (const length of LENGTHS) {
      for (const tile of TILES) {
        const { boundaries } = planAxis(length, tile, 8, 4);
        const where = `length ${length} tile ${tile}: ${boundaries.join(',')}`;
        const sizes = boundaries.slice(1).map((b, i) => b - boundaries[i]);
        if (boundaries[0] !== 0 || boundaries[boundaries.length - 1] !== length) failures.push(`${where}: ends`);
        if (sizes.length !== Math.max(1, Math.ceil(length / tile))) failures.push(`${where}: ${sizes.length} cores`);
        if (sizes.some((s) => !Number.isInteger(s) || s <= 0)) failures.push(`${where}: empty or fractional core`);
        if (Math.max(...sizes) > tile) failures.push(`${where}: core over tile`);
        if (Math.max(...sizes) - Math.min(...sizes) > 1) failures.push(`${where}: unbalanced`);
      }
    }
    expect(failures).toEqual([]);
  });

  test('an axis shorter than the tile is one core with no ramp', () => {
    expect(planAxis(5, 64, 8, 4)).toEqual({ boundaries: [0, 5], rampOut: 0 });
    expect(planAxis(1, 1, 8, 2)).toEqual({ boundaries: [0, 1], rampOut: 0 });
    expect(planAxis(64, 64, 16, 4)).toEqual({ boundaries: [0, 64], rampOut: 0 });
  });

  test('splits without a sliver: 100 at tile 32 is four cores of 25', () => {
    expect(planAxis(100, 32, 10, 4)).toEqual({ boundaries: [0, 25, 50, 75, 100], rampOut: 20 });
    expect(planAxis(65, 64, 0, 1).boundaries).toEqual([0, 33, 65]);
  });

  test('the ramp is half the overlap in output pixels, capped at half the smallest core', () => {
    expect(planAxis(100, 32, 10, 4).rampOut).toBe(20); // floor(10·4 / 2)
    expect(planAxis(100, 32, 3, 1).rampOut).toBe(1); // floor(3 / 2)
    expect(planAxis(100, 32, 0, 4).rampOut).toBe(0);
    // 10 at tile 3: cores 3,2,3,2 → capped at floor(2·1 / 2) = 1 although the overlap allows 4.
    expect(planAxis(10, 3, 8, 1)).toEqual({ boundaries: [0, 3, 5, 8, 10], rampOut: 1 });
    // Tile 1: cores of one pixel, so at scale 3 the ramp is floor(3 / 2) = 1.
    expect(planAxis(4, 1, 32, 3).rampOut).toBe(1);
  });

  test('rampOut never exceeds half the overlap or half the smallest core, in output pixels', () => {
    for (const length of LENGTHS) {
      for (const tile of TILES) {
        for (const overlap of OVERLAPS) {
          for (const scale of SCALES) {
            const { boundaries, rampOut } = planAxis(length, tile, overlap, scale);
            const minCore = Math.min(...boundaries.slice(1).map((b, i) => b - boundaries[i]));
            const ok = Number.isInteger(rampOut) && rampOut >= 0 && 2 * rampOut <= overlap * scale && 2 * rampOut <= minCore * scale;
            if (!ok) throw new Error(`length ${length} tile ${tile} overlap ${overlap} scale ${scale}: rampOut ${rampOut}`);
          }
        }
      }
    }
  });
});

describe('tileCount', () => {
  test('agrees with the number of planned cores along each axis', () => {
    for (const w of [1, 7, 64, 100, 257]) {
      for (const h of [1, 3, 65, 128]) {
        for (const tile of [1, 3, 32, 64, 512]) {
          const cores = (length: number) => planAxis(length, tile, 8, 4).boundaries.length - 1;
          expect(tileCount(w, h, tile)).toBe(cores(w) * cores(h));
        }
      }
    }
    expect(tileCount(100, 50, 32)).toBe(4 * 2);
    expect(tileCount(5, 5, 512)).toBe(1);
  });
});
