/**
 * PSNR in dB between two equally sized sample arrays on a 0..max scale, over the samples where
 * `include(i)` holds (all by default). Infinity when identical.
 */
export function psnr(a: ArrayLike<number>, b: ArrayLike<number>, max: number, include: (i: number) => boolean = () => true): { db: number; samples: number } {
  if (a.length !== b.length) throw new Error(`psnr: ${a.length} samples vs ${b.length}`);
  let sum = 0;
  let samples = 0;
  for (let i = 0; i < a.length; i++) {
    if (!include(i)) continue;
    const d = a[i] - b[i];
    sum += d * d;
    samples++;
  }
  if (samples === 0) return { db: NaN, samples };
  const mse = sum / samples;
  return { db: mse === 0 ? Infinity : 10 * Math.log10((max * max) / mse), samples };
}
