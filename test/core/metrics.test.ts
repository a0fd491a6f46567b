import { lumaBt601, psnr, shave, ssim, Plane } from '../../core/metrics';

const plane = (width: number, height: number, f: (x: number, y: number) => number): Plane => {
  const data = new Float64Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = f(x, y);
  return { width, height, data };
};

describe('ssim', () => {
  test('is 1 for identical images and symmetric', () => {
    const a = plane(24, 20, (x, y) => (x * 7 + y * 13) % 255);
    const b = plane(24, 20, (x, y) => ((x * 7 + y * 13) % 255) * 0.9 + 10);
    expect(ssim(a, a)).toBeCloseTo(1, 12);
    expect(ssim(a, b)).toBeCloseTo(ssim(b, a), 12);
    expect(ssim(a, b)).toBeLessThan(1);
  });

  test('on flat images it is the luminance term alone, (2μaμb + C1) / (μa² + μb² + C1)', () => {
    const c1 = (0.01 * 255) ** 2;
    expect(ssim(plane(16, 16, () => 100), plane(16, 16, () => 110))).toBeCloseTo((2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1), 12);
  });

  test('falls as noise grows', () => {
    let s = 7;
    const noise = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5) * 2;
    const a = plane(32, 32, (x, y) => 128 + 60 * Math.sin(x / 3) * Math.cos(y / 4));
    const light = plane(32, 32, (x, y) => a.data[y * 32 + x] + 5 * noise());
    const heavy = plane(32, 32, (x, y) => a.data[y * 32 + x] + 40 * noise());
    expect(ssim(a, light)).toBeGreaterThan(ssim(a, heavy));
  });
});

test('luma follows MATLAB rgb2ycbcr (16 for black, 235 for white), shave trims the border', () => {
  const y = lumaBt601([0, 0, 0, 255, 255, 255], 2, 1, 3);
  expect(Array.from(y.data)).toEqual([16, expect.closeTo(235, 10)]);
  const p = plane(5, 4, (x, yy) => yy * 5 + x);
  expect(shave(p, 1)).toEqual({ width: 3, height: 2, data: Float64Array.from([6, 7, 8, 11, 12, 13]) });
  expect(psnr([1, 2], [1, 2], 255).db).toBe(Infinity);
});
