import { axisWeights } from '../../core/blend';
import { AxisPlan, planAxis } from '../../core/tiler';

const LENGTHS = [1, 2, 3, 5, 7, 16, 17, 31, 64, 100, 257];
const TILES = [1, 2, 3, 4, 7, 8, 16, 32, 64, 512];
const OVERLAPS = [0, 1, 2, 3, 5, 8, 16, 32];
const SCALES = [1, 2, 3, 4];

const EPS = 1e-12;

interface Combo {
  length: number;
  tile: number;
  overlap: number;
  scale: number;
}

const COMBOS: Combo[] = LENGTHS.flatMap((length) =>
  TILES.flatMap((tile) => OVERLAPS.flatMap((overlap) => SCALES.map((scale) => ({ length, tile, overlap, scale })))),
);

/**
 * Checks one axis plan; returns problems as text (collected rather than asserted one by one, so
 * the thousands of combinations run fast and a failure names every broken case).
 */
function problems({ length, tile, overlap, scale }: Combo): string[] {
  const plan = planAxis(length, tile, overlap, scale);
  const { boundaries, rampOut } = plan;
  const lengthOut = length * scale;
  const where = `length ${length} tile ${tile} overlap ${overlap} scale ${scale} (boundaries ${boundaries.join(',')}, ramp ${rampOut})`;
  const out: string[] = [];
  const sum = new Float64Array(lengthOut);
  const tiles = boundaries.length - 1;
  for (let i = 0; i < tiles; i++) {
    const { start, weights } = axisWeights(plan, i, scale);
    const end = start + weights.length;
    const x0 = boundaries[i];
    const x1 = boundaries[i + 1];
    // The window the tile is inferred over (core plus context), in output pixels, clipped to the image.
    const windowStart = Math.max(0, (x0 - overlap) * scale);
    const windowEnd = Math.min(lengthOut, (x1 + overlap) * scale);
    if (!Number.isInteger(start) || start < windowStart || end > windowEnd) {
      out.push(`${where}: tile ${i} weights [${start}, ${end}) leave its window [${windowStart}, ${windowEnd})`);
      continue;
    }
    for (let k = 0; k < weights.length; k++) {
      const w = weights[k];
      if (!(w >= 0 && w <= 1)) out.push(`${where}: tile ${i} weight ${w} at ${start + k}`);
      sum[start + k] += w;
    }
    // Away from the ramps (which sit only on inner boundaries), the core has weight exactly 1.
    const flatStart = i === 0 ? 0 : x0 * scale + rampOut;
    const flatEnd = i === tiles - 1 ? lengthOut : x1 * scale - rampOut;
    for (let x = flatStart; x < flatEnd; x++) {
      if (weights[x - start] !== 1) out.push(`${where}: tile ${i} weight ${weights[x - start]} at ${x}, inside its core away from ramps`);
    }
  }
  for (let x = 0; x < lengthOut; x++) {
    if (Math.abs(sum[x] - 1) > EPS) out.push(`${where}: weights sum to ${sum[x]} at ${x}`);
  }
  return out.slice(0, 5);
}

describe('axisWeights', () => {
  test(`over ${COMBOS.length} (length, tile, overlap, scale) combinations: weights in [0, 1], inside each tile's window, summing to 1 everywhere, 1 inside cores`, () => {
    const failures = COMBOS.flatMap(problems);
    expect(failures).toEqual([]);
  });

  test('the combinations include the edge cases: length 1, length < tile, odd lengths, tile 1, overlap > core', () => {
    expect(COMBOS.some((c) => c.length === 1)).toBe(true);
    expect(COMBOS.some((c) => c.length < c.tile && c.length > 1)).toBe(true);
    expect(COMBOS.some((c) => c.length % 2 === 1 && c.length > c.tile)).toBe(true);
    expect(COMBOS.some((c) => c.tile === 1 && c.length > 1 && c.overlap > 0)).toBe(true);
    expect(COMBOS.some((c) => c.overlap > c.tile && c.length > c.tile)).toBe(true);
  });

  test('a single tile has weight 1 over the whole output axis', () => {
    const plan = planAxis(7, 64, 8, 4);
    const { start, weights } = axisWeights(plan, 0, 4);
    expect(start).toBe(0);
    expect(weights).toHaveLength(28);
    expect(Array.from(weights).every((w) => w === 1)).toBe(true);
  });

  test('with no overlap, tiles meet edge to edge with hard 0/1 weights', () => {
    const plan = planAxis(10, 4, 0, 2);
    expect(plan.rampOut).toBe(0);
    const spans = [0, 1, 2].map((i) => axisWeights(plan, i, 2));
    expect(spans.map((s) => [s.start, s.start + s.weights.length])).toEqual([[0, 6], [6, 14], [14, 20]]);
    for (const s of spans) expect(Array.from(s.weights).every((w) => w === 1)).toBe(true);
  });

  test('across an inner edge the left tile falls and the right tile rises as exact complements (half-sine ramp)', () => {
    const plan: AxisPlan = { boundaries: [0, 8, 16], rampOut: 4 };
    const left = axisWeights(plan, 0, 1);
    const right = axisWeights(plan, 1, 1);
    expect([left.start, left.weights.length]).toEqual([0, 12]);
    expect([right.start, right.weights.length]).toEqual([4, 12]);
    const rise = Array.from(right.weights.subarray(0, 8));
    for (let k = 0; k < 8; k++) {
      expect(rise[k]).toBeCloseTo(Math.sin((Math.PI * (k + 0.5)) / 16) ** 2, 12);
      expect(left.weights[4 + k] + rise[k]).toBeCloseTo(1, 12);
      if (k > 0) expect(rise[k]).toBeGreaterThan(rise[k - 1]);
    }
    // Symmetric about the edge: the two pixels straddling it share the weight equally in sum.
    expect(rise[3] + rise[4]).toBeCloseTo(1, 12);
    expect(rise[0]).toBeGreaterThan(0);
    expect(rise[7]).toBeLessThan(1);
  });

  test('2-D products of the axis weights sum to 1 at every output pixel of a tiled image', () => {
    for (const [w, h, tile, overlap, scale] of [
      [37, 23, 8, 4, 2],
      [5, 64, 3, 16, 4],
      [100, 1, 32, 10, 3],
      [17, 17, 1, 2, 1],
    ]) {
      const xPlan = planAxis(w, tile, overlap, scale);
      const yPlan = planAxis(h, tile, overlap, scale);
      const W = w * scale;
      const sum = new Float64Array(W * h * scale);
      const cells = (plan: AxisPlan) => plan.boundaries.length - 1;
      for (let row = 0; row < cells(yPlan); row++) for (let col = 0; col < cells(xPlan); col++) {
        const ax = axisWeights(xPlan, col, scale);
        const ay = axisWeights(yPlan, row, scale);
        for (let j = 0; j < ay.weights.length; j++) {
          for (let i = 0; i < ax.weights.length; i++) sum[(ay.start + j) * W + ax.start + i] += ay.weights[j] * ax.weights[i];
        }
      }
      const worst = sum.reduce((m, v) => Math.max(m, Math.abs(v - 1)), 0);
      expect(worst).toBeLessThanOrEqual(EPS);
    }
  });
});
