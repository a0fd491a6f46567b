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

/** A single-channel image of floats, row-major. */
export interface Plane {
  width: number;
  height: number;
  data: Float64Array;
}

/**
 * Luma as the super-resolution literature measures it (MATLAB rgb2ycbcr, BT.601 studio range):
 * Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for 8-bit RGB, chunky.
 */
export function lumaBt601(rgb: ArrayLike<number>, width: number, height: number, channels: number): Plane {
  const data = new Float64Array(width * height);
  for (let p = 0; p < data.length; p++) {
    const i = p * channels;
    data[p] = 16 + (65.481 * rgb[i] + 128.553 * rgb[i + 1] + 24.966 * rgb[i + 2]) / 255;
  }
  return { width, height, data };
}

/** The plane without `border` pixels on every side (the usual `scale`-pixel shave). */
export function shave(plane: Plane, border: number): Plane {
  const width = plane.width - 2 * border;
  const height = plane.height - 2 * border;
  const data = new Float64Array(width * height);
  for (let y = 0; y < height; y++) data.set(plane.data.subarray((y + border) * plane.width + border, (y + border) * plane.width + border + width), y * width);
  return { width, height, data };
}

function gaussianKernel(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size);
  const half = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) sum += k[i] = Math.exp(-((i - half) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

/** Separable Gaussian filter, 'valid' region only (as Wang et al.'s reference ssim_index). */
function filterValid(plane: Plane, k: Float64Array): Plane {
  const n = k.length;
  const w = plane.width - n + 1;
  const h = plane.height - n + 1;
  const rows = new Float64Array(w * plane.height);
  for (let y = 0; y < plane.height; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i] * plane.data[y * plane.width + x + i];
      rows[y * w + x] = s;
    }
  }
  const data = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i] * rows[(y + i) * w + x];
      data[y * w + x] = s;
    }
  }
  return { width: w, height: h, data };
}

/**
 * Mean SSIM (Wang, Bovik, Sheikh, Simoncelli 2004) with their reference settings: an 11×11
 * Gaussian window with σ 1.5, K1 0.01, K2 0.03, on a 0..max scale, over the valid region.
 */
export function ssim(a: Plane, b: Plane, max = 255): number {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`ssim: ${a.width}×${a.height} vs ${b.width}×${b.height}`);
  if (a.width < 11 || a.height < 11) throw new Error('ssim: images must be at least 11×11');
  const k = gaussianKernel(11, 1.5);
  const c1 = (0.01 * max) ** 2;
  const c2 = (0.03 * max) ** 2;
  const product = (p: Plane, q: Plane): Plane => ({ width: p.width, height: p.height, data: p.data.map((v, i) => v * q.data[i]) });
  const muA = filterValid(a, k);
  const muB = filterValid(b, k);
  const aa = filterValid(product(a, a), k);
  const bb = filterValid(product(b, b), k);
  const ab = filterValid(product(a, b), k);
  let sum = 0;
  for (let i = 0; i < muA.data.length; i++) {
    const ma = muA.data[i];
    const mb = muB.data[i];
    const va = aa.data[i] - ma * ma;
    const vb = bb.data[i] - mb * mb;
    const cov = ab.data[i] - ma * mb;
    sum += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
  }
  return sum / muA.data.length;
}
