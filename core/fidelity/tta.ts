/**
 * Test-time augmentation (realesrgan-ncnn-vulkan's `-x`): run the model on flipped and rotated
 * copies of the input, turn each result back, and average. Convolutional models are nearly but
 * not exactly equivariant to these; averaging cancels part of each run's arbitrary texture, and
 * the per-pixel spread across runs says where the model is unsure, which the invented-detail map
 * uses.
 *
 * The 8 transforms are the symmetries of the square (identity, 3 rotations, 4 reflections), as
 * ncnn's `-x` uses; 4 keeps those that do not swap the axes (identity, horizontal and vertical flip,
 * 180° rotation) for half the time. Each run goes through the whole pipeline (tiles, passes,
 * outscale), so a fractional scale resizes in the transformed frame; outputSize() rounds width and
 * height independently, so the swapped sizes match.
 */
import { throwIfCancelled } from '../errors';
import { colourChannels, createRaster, maxValue, Raster } from '../raster';
import { InferenceRunner } from '../session';
import { Resampler, upscaleRaster, UpscaleOptions } from '../upscale';
import { invalidOption } from '../validate';

export const TTA_TRANSFORM_COUNTS = [4, 8] as const;
export type TtaTransformCount = (typeof TTA_TRANSFORM_COUNTS)[number];

/** A symmetry of the square: flip x, then flip y, then swap the axes. */
export interface Symmetry {
  flipX: boolean;
  flipY: boolean;
  transpose: boolean;
}

export function symmetries(count: TtaTransformCount): Symmetry[] {
  const all: Symmetry[] = [];
  for (const transpose of count === 8 ? [false, true] : [false]) {
    for (const flipY of [false, true]) for (const flipX of [false, true]) all.push({ flipX, flipY, transpose });
  }
  return all;
}

export function validateTtaCount(value: unknown): TtaTransformCount {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (n === 4 || n === 8) return n;
  throw invalidOption('tta', 'one of 4, 8', value);
}

/** Where the sample at (x, y) of a width×height image lands under `s`, as an index of the result. */
function landing(s: Symmetry, x: number, y: number, width: number, height: number): number {
  const fx = s.flipX ? width - 1 - x : x;
  const fy = s.flipY ? height - 1 - y : y;
  return s.transpose ? fx * height + fy : fy * width + fx;
}

/** The raster seen through `s` (its width and height swap when s transposes). */
export function applySymmetry(raster: Raster, s: Symmetry): Raster {
  const { width, height, channels } = raster;
  const out = createRaster(s.transpose ? height : width, s.transpose ? width : height, channels, raster.depth);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * channels;
      const to = landing(s, x, y, width, height) * channels;
      for (let c = 0; c < channels; c++) out.data[to + c] = raster.data[from + c];
    }
  }
  return out;
}

export interface TtaResult {
  /** The mean of the runs, turned back, rounded to the runs' depth (alpha averaged too). */
  raster: Raster;
  /**
   * Per output pixel, the standard deviation across runs (population, over the colour channels
   * in RMS), on a 0..1 scale: 0 where every run agrees.
   */
  spread: Float32Array;
  runs: number;
}

/**
 * The TTA mean and spread of any upscale (`upscale` maps an input to its result; for a model,
 * upscaleWithTta below). `width`×`height` of the result is what `upscale(input)` returns.
 */
export async function ttaAverage(input: Raster, upscale: (transformed: Raster, run: number) => Promise<Raster>, count: TtaTransformCount = 8, signal?: AbortSignal): Promise<TtaResult> {
  const list = symmetries(validateTtaCount(count));
  let first: Raster | undefined;
  // Sums of differences from the first run, so the variance is not a small difference of large
  // sums (float32 holds the sums of a large output without doubling its memory).
  let sum = new Float32Array(0);
  let squares = new Float32Array(0);
  for (let k = 0; k < list.length; k++) {
    throwIfCancelled(signal);
    const s = list[k];
    const result = await upscale(applySymmetry(input, s), k);
    // Turning back: the result pixel at (x, y) of the untransformed frame is where s sends it.
    const width = s.transpose ? result.height : result.width;
    const height = s.transpose ? result.width : result.height;
    if (!first) {
      // symmetries() lists the identity first: the other runs are turned back onto this one.
      first = result;
      sum = new Float32Array(result.data.length);
      squares = new Float32Array(result.data.length);
      continue;
    }
    if (width !== first.width || height !== first.height || result.channels !== first.channels || result.depth !== first.depth) {
      throw invalidOption('tta', 'used with an upscale whose result turns back to the same size', `${result.width}×${result.height}`);
    }
    const channels = result.channels;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const own = (y * width + x) * channels;
        const from = landing(s, x, y, width, height) * channels;
        for (let c = 0; c < channels; c++) {
          const d = result.data[from + c] - first.data[own + c];
          sum[own + c] += d;
          squares[own + c] += d * d;
        }
      }
    }
  }
  const base = first as Raster;
  const n = list.length;
  const raster = createRaster(base.width, base.height, base.channels, base.depth);
  const max = maxValue(base.depth);
  const colours = colourChannels(base.channels);
  const spread = new Float32Array(base.width * base.height);
  for (let p = 0; p < spread.length; p++) {
    let variance = 0;
    for (let c = 0; c < base.channels; c++) {
      const i = p * base.channels + c;
      const meanDiff = sum[i] / n;
      const v = Math.round(base.data[i] + meanDiff);
      raster.data[i] = v < 0 ? 0 : v > max ? max : v;
      if (c < colours) variance += Math.max(0, squares[i] / n - meanDiff * meanDiff);
    }
    spread[p] = Math.sqrt(variance / colours) / max;
  }
  return { raster, spread, runs: n };
}

/** upscaleRaster under TTA: `count` full runs, progress reported over all of them. */
export async function upscaleWithTta(input: Raster, runner: InferenceRunner, modelScale: number, resampler: Resampler, options: UpscaleOptions, count: TtaTransformCount = 8): Promise<TtaResult & { tiles: number; passes: number }> {
  let tiles = 0;
  let passes = 0;
  const result = await ttaAverage(
    input,
    async (transformed, run) => {
      const onProgress = options.onProgress && ((p: { done: number; total: number }) => options.onProgress?.({ done: run * p.total + p.done, total: count * p.total }));
      const out = await upscaleRaster(transformed, runner, modelScale, resampler, { ...options, onProgress });
      tiles += out.tiles;
      passes = out.passes;
      return out.raster;
    },
    count,
    options.signal,
  );
  return { ...result, tiles, passes };
}
