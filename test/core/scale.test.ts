import { fitsLimits, largestFittingScale, outputSize } from '../../core/scale';

describe('largestFittingScale', () => {
  const limits = { maxOutputSide: 1000, maxOutputPixels: 500_000 };

  test('is the largest tenth whose output fits both the side and the pixel limit', () => {
    // 100×50: the side allows 10x (1000×500 = 500k px, exactly the pixel limit).
    expect(largestFittingScale(100, 50, limits)).toBe(10);
    // 300×300: pixels allow sqrt(500000/90000) = 2.357 → 2.3; the side would allow 3.33.
    const best = largestFittingScale(300, 300, limits)!;
    expect(best).toBe(2.3);
    expect(fitsLimits(300, 300, best, limits)).toBe(true);
    expect(fitsLimits(300, 300, best + 0.1, limits)).toBe(false);
  });

  test('stops at 16 and is undefined when even 1x does not fit', () => {
    expect(largestFittingScale(10, 10, limits)).toBe(16);
    expect(largestFittingScale(2000, 10, limits)).toBeUndefined();
  });

  test('agrees with outputSize rounding', () => {
    expect(outputSize(3, 3, 1.5)).toEqual({ width: 5, height: 5 });
    expect(fitsLimits(667, 10, 1.5, limits)).toBe(false); // 1000.5 rounds to 1001
  });
});
