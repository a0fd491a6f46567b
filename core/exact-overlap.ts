/**
 * Measures a model's exact overlap: the smallest context between tiles at which the tiled output
 * equals the whole-image output within 1/255. A convolution stack's receptive field is far wider
 * than the context that matters numerically, so this is measured, not derived: a probe strip is
 * upscaled whole and in two tiles at each candidate overlap, and the cut is compared.
 *
 * Two probes, and the larger overlap of the two counts: a real photo strip (overlap-probe-photo.ts;
 * a GAN's far-reaching context shows on photo content: x4plus needs 64 there, 40 on the synthetic
 * one) and a synthetic one (1/f value noise with hard edges: detail at every scale, which a
 * PSNR model's context depends on). The tests check the result on another photo.
 */
import { PHOTO_STRIP, PHOTO_STRIP_RGB_BASE64 } from './overlap-probe-photo';
import { createRaster, Raster } from './raster';
import { InferenceRunner } from './session';
import { Resampler, upscaleRaster, UpscaleOptions } from './upscale';

/** Overlaps tried, ascending (input px). */
export const OVERLAP_CANDIDATES = [0, 4, 8, 12, 16, 24, 32, 40, 48, 64, 80, 96, 128] as const;

/** Core width of each of the probe's two tiles: wider than any candidate, so context never covers the other tile whole. */
const PROBE_CORE = 136;
const PROBE_HEIGHT = 24;

function hash(x: number, y: number, seed: number): number {
  let h = Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ Math.imul(seed, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

function valueNoise(x: number, y: number, period: number, seed: number): number {
  const gx = Math.floor(x / period);
  const gy = Math.floor(y / period);
  const fx = x / period - gx;
  const fy = y / period - gy;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const top = hash(gx, gy, seed) * (1 - sx) + hash(gx + 1, gy, seed) * sx;
  const bottom = hash(gx, gy + 1, seed) * (1 - sx) + hash(gx + 1, gy + 1, seed) * sx;
  return top * (1 - sy) + bottom * sy;
}

/** The probe image: deterministic, 8-bit RGB. */
export function probeImage(width = 2 * PROBE_CORE, height = PROBE_HEIGHT): Raster {
  const raster = createRaster(width, height, 3, 8);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let v = 0;
        let weight = 0;
        for (const period of [1, 2, 4, 8, 16, 32]) {
          v += valueNoise(x, y, period, c * 31 + period) * period;
          weight += period;
        }
        // Hard edges: a diagonal stripe pattern that flips brightness every 11 pixels.
        const edge = Math.floor((x + 2 * y) / 11) % 2 === 0 ? 0.15 : -0.15;
        raster.data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round((v / weight + edge) * 255)));
      }
    }
  }
  return raster;
}

/** The photo probe as a raster. */
export function photoProbe(): Raster {
  const raster = createRaster(PHOTO_STRIP.width, PHOTO_STRIP.height, 3, 8);
  const bytes = atob(PHOTO_STRIP_RGB_BASE64);
  for (let i = 0; i < raster.data.length; i++) raster.data[i] = bytes.charCodeAt(i);
  return raster;
}

function maxAbsDiff(a: Raster, b: Raster): number {
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i] - b.data[i]));
  return max;
}

export interface ExactOverlap {
  /** The smallest candidate that met 1/255, or undefined when none did (a global-pooling model). */
  overlap?: number;
  /** Largest difference (8-bit levels) per candidate tried. */
  tried: { overlap: number; maxDiff: number }[];
}

/**
 * The exact overlap for a model: the larger of the two probes' smallest passing candidates, then
 * one candidate more. The margin is for what two 1-D strips do not show (a grid's corners, where
 * two cuts meet; content harsher than the probes). It reproduces the figures measured on photos
 * for the catalogue's two Real-ESRGAN models (strip minimum 24 → 32 for x4v3, 64 → 80 for x4plus),
 * and a third photo needed it (realesr-animevideov3-x2: strips 12, the 161×121 photo's 2×2 grid 16).
 * Undefined when either probe has none.
 */
export async function measureModelOverlap(
  runner: InferenceRunner,
  modelScale: number,
  resampler: Resampler,
  conventions: Pick<UpscaleOptions, 'borderPad' | 'minWindow'> = {},
  signal?: AbortSignal,
): Promise<{ overlap?: number; minimum?: number; photo: ExactOverlap; synthetic: ExactOverlap }> {
  const photo = await measureExactOverlap(runner, modelScale, resampler, conventions, signal, photoProbe());
  const synthetic = photo.overlap === undefined ? { tried: [] } : await measureExactOverlap(runner, modelScale, resampler, conventions, signal, probeImage());
  if (photo.overlap === undefined || synthetic.overlap === undefined) return { photo, synthetic };
  const minimum = Math.max(photo.overlap, synthetic.overlap);
  const next = OVERLAP_CANDIDATES.find((o) => o > minimum) ?? minimum;
  return { overlap: next, minimum, photo, synthetic };
}

/**
 * Binary search over the candidates, assuming more context never hurts. About log2(13) ≈ 4
 * two-tile runs plus one whole run of a 272×24 strip.
 */
export async function measureExactOverlap(
  runner: InferenceRunner,
  modelScale: number,
  resampler: Resampler,
  conventions: Pick<UpscaleOptions, 'borderPad' | 'minWindow'> = {},
  signal?: AbortSignal,
  probe: Raster = probeImage(),
): Promise<ExactOverlap> {
  const core = Math.ceil(probe.width / 2);
  const options = (tile: number, overlap: number): UpscaleOptions => ({ scale: modelScale, tile, overlap, alpha: 'model', signal, ...conventions });
  const whole = (await upscaleRaster(probe, runner, modelScale, resampler, options(4096, 0))).raster;
  const tried: ExactOverlap['tried'] = [];
  const passes = async (overlap: number) => {
    const tiled = (await upscaleRaster(probe, runner, modelScale, resampler, options(core, overlap))).raster;
    const maxDiff = maxAbsDiff(tiled, whole);
    tried.push({ overlap, maxDiff });
    return maxDiff <= 1;
  };
  // Context as wide as the other tile makes any cut exact: those candidates prove nothing.
  const candidates = OVERLAP_CANDIDATES.filter((o) => o < probe.width - core);
  let hi = candidates.length - 1;
  if (!(await passes(candidates[hi]))) return { tried };
  let lo = -1; // index known to fail (or none)
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (await passes(candidates[mid])) hi = mid;
    else lo = mid;
  }
  return { overlap: candidates[hi], tried };
}
