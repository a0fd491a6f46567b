import { streamingTileBudget } from '../../core/node/upscale-stream';
import { chooseTiling, evaluateTiling, TilingRequest, windowSeconds } from '../../core/tile-tuning';

const request = (over: Partial<TilingRequest> = {}): TilingRequest => ({
  width: 1000,
  height: 700,
  modelScale: 4,
  passes: 1,
  overlap: 32,
  borderPad: 10,
  minWindow: 1,
  memoryBudget: 64 * 2 ** 30,
  ...over,
});

/** A provider with a fixed cost per run (0.05 s) and a flat rate (1 µs per pixel), measured up to 256². */
const steady = { timings: [64, 128, 256].map((side) => ({ side, seconds: 0.05 + side * side * 1e-6 })), bytesPerPixel: 1000 };
/** The same, measured up to 4096²: no extrapolation in the sizes these tests choose from. */
const steadyLarge = { ...steady, timings: [64, 128, 256, 512, 1024, 2048, 4096].map((side) => ({ side, seconds: 0.05 + side * side * 1e-6 })) };

describe('windowSeconds', () => {
  test('interpolates between measured windows and keeps the fixed cost toward zero', () => {
    expect(windowSeconds(steady, 128 * 128)).toBeCloseTo(0.05 + 128 * 128 * 1e-6, 9);
    expect(windowSeconds(steady, 100 * 100)).toBeCloseTo(0.05 + 100 * 100 * 1e-6, 9);
    // Below the smallest window: the line through the first two points, so a tiny window still pays the run's fixed cost.
    expect(windowSeconds(steady, 16 * 16)).toBeCloseTo(0.05 + 16 * 16 * 1e-6, 9);
    // Past the largest: slower per pixel, with the fourth root of the area (caches), so a window
    // 4× the largest measured one costs 4^1.25 × its time.
    const last = 0.05 + 256 * 256 * 1e-6;
    expect(windowSeconds(steady, 512 * 512)).toBeCloseTo(last * 4 ** 1.25, 9);
  });

  test('past the largest measured window, a steeper fall already measured is kept', () => {
    // Per-pixel time doubles from 128² to 256² (area ×4): exponent 0.5 > 0.25.
    const falling = { timings: [{ side: 128, seconds: 128 * 128 * 1e-6 }, { side: 256, seconds: 256 * 256 * 2e-6 }] };
    expect(windowSeconds(falling, 512 * 512)).toBeCloseTo(256 * 256 * 2e-6 * 4 ** 1.5, 9);
  });
});

describe('chooseTiling', () => {
  test('one window per pass when the memory allows it and its size was measured: no context is computed twice', () => {
    const choice = chooseTiling(request(), steadyLarge);
    expect(choice.windows).toBe(1);
    expect(choice.tile).toBeGreaterThanOrEqual(1000);
    expect(choice.inferredRatio).toBeCloseTo((1020 * 720) / (1000 * 700), 9);
  });

  test('the largest window stays within the memory budget, and a smaller budget means more, smaller windows', () => {
    const budgets = [2 ** 30, 256 * 2 ** 20, 64 * 2 ** 20];
    const choices = budgets.map((memoryBudget) => chooseTiling(request({ memoryBudget }), steadyLarge));
    choices.forEach((c, i) => {
      expect(c.fitsBudget).toBe(true);
      expect(c.windowBytes + c.bandBytes).toBeLessThanOrEqual(budgets[i]);
      expect(evaluateTiling(request({ memoryBudget: budgets[i] }), steadyLarge, c.tile)).toEqual(c);
    });
    expect(choices[1].windows).toBeGreaterThan(choices[0].windows);
    expect(choices[2].windows).toBeGreaterThan(choices[1].windows);
    expect(choices[2].tile).toBeLessThan(choices[1].tile);
  });

  test('a rate that drops for large windows (caches) makes mid-sized windows win, even with memory to spare', () => {
    // 1 µs per pixel up to 256², then each pixel past that costs 4 µs.
    const cacheBound = { timings: [{ side: 128, seconds: 128 * 128 * 1e-6 }, { side: 256, seconds: 256 * 256 * 1e-6 }, { side: 512, seconds: 256 * 256 * 1e-6 + (512 * 512 - 256 * 256) * 4e-6 }], bytesPerPixel: 1000 };
    const choice = chooseTiling(request({ overlap: 8 }), cacheBound);
    expect(choice.windows).toBeGreaterThan(1);
    const whole = evaluateTiling(request({ overlap: 8 }), cacheBound, 1000);
    expect(choice.seconds).toBeLessThan(whole.seconds);
  });

  test('every pass counts: a 16x job is tiled for its second, 16 times larger pass too', () => {
    const one = chooseTiling(request({ width: 256, height: 256, passes: 1, memoryBudget: 2 ** 30 }), steady);
    const two = chooseTiling(request({ width: 256, height: 256, passes: 2, memoryBudget: 2 ** 30 }), steady);
    expect(one.windows).toBe(1);
    expect(two.windows).toBeGreaterThan(2);
    expect(two.windowBytes + two.bandBytes).toBeLessThanOrEqual(2 ** 30);
  });

  test('a streamed 16x of 1024² keeps its windows and float band within half the output, as the streaming path asks', () => {
    const output = 16384 * 16384 * 3;
    const budget = streamingTileBudget(output);
    expect(budget).toBe(output / 2);
    // realesr-general-x4v3's calibration on this machine: ~1.7 KB per window pixel.
    const x4v3 = { ...steady, bytesPerPixel: 1689 };
    const choice = chooseTiling(request({ width: 1024, height: 1024, passes: 2, memoryBudget: budget }), x4v3);
    expect(choice.fitsBudget).toBe(true);
    expect(choice.windowBytes + choice.bandBytes).toBeLessThanOrEqual(output / 2);
    // The band is counted: one tile row of the 16384-wide output in float32 RGB.
    expect(choice.bandBytes).toBeGreaterThanOrEqual(12 * 16384 * choice.tile * 4);
    // The default budget would have let it take gigabytes.
    const roomy = chooseTiling(request({ width: 1024, height: 1024, passes: 2, memoryBudget: 6 * 2 ** 30 }), { ...steadyLarge, bytesPerPixel: 1689 });
    expect(roomy.windowBytes + roomy.bandBytes).toBeGreaterThan(2 ** 30);
  });

  test('with realesr-general-x4v3 as measured here, a 1024² input runs as 2×2 tiles, not one window (which measured slower)', () => {
    // Calibrated to 512² at 105 px/ms; measured beyond: 1044² at 70 px/ms (15.4 s), 554² windows at ~100.
    const x4v3 = { timings: [64, 128, 256, 384, 512].map((side) => ({ side, seconds: (side * side) / 105e3 })), bytesPerPixel: 1689 };
    const choice = chooseTiling(request({ width: 1024, height: 1024, memoryBudget: 6 * 2 ** 30 }), x4v3);
    expect(choice.windows).toBe(4);
    expect(choice.seconds).toBeLessThan(evaluateTiling(request({ width: 1024, height: 1024, memoryBudget: 6 * 2 ** 30 }), x4v3, 1024).seconds);
  });

  test('when nothing fits, the smallest windows are chosen and the choice says so', () => {
    const choice = chooseTiling(request({ memoryBudget: 1000 }), steady);
    expect(choice.fitsBudget).toBe(false);
    expect(choice.tile).toBe(16);
  });
});
