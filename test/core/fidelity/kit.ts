import * as path from 'node:path';
import { findModel } from '../../../core/catalogue';
import { readImage, sharpResampler } from '../../../core/node/image-io';
import { createRaster, Raster } from '../../../core/raster';
import { InferenceRunner } from '../../../core/session';
import { upscaleRaster } from '../../../core/upscale';
import { runnerFor } from '../../helpers';

/** The two models installed for every test run: the fast general one and the GAN. */
export const FAST = 'realesr-general-x4v3';
export const CREATIVE = 'realesrgan-x4plus';

export async function fixture(name: string): Promise<Raster> {
  return (await readImage(path.join(__dirname, '..', '..', 'fixtures', name))).raster;
}

export function crop(r: Raster, x0: number, y0: number, width: number, height: number): Raster {
  const out = createRaster(width, height, r.channels, r.depth);
  for (let y = 0; y < height; y++) {
    const from = ((y0 + y) * r.width + x0) * r.channels;
    out.data.set(r.data.subarray(from, from + width * r.channels), y * width * r.channels);
  }
  return out;
}

const runners = new Map<string, Promise<InferenceRunner>>();
export function runner(model: string): Promise<InferenceRunner> {
  if (!runners.has(model)) runners.set(model, runnerFor(model));
  return runners.get(model) as Promise<InferenceRunner>;
}

/** The real pipeline: one model, whole image in one tile, Lanczos for fractional scales. */
export async function upscale(input: Raster, model: string, scale = 4): Promise<Raster> {
  const entry = findModel(model);
  const result = await upscaleRaster(input, await runner(model), entry.scale, sharpResampler, { scale, tile: 4096, overlap: entry.overlap, alpha: 'model' });
  return result.raster;
}

/** Deterministic pseudo-random numbers in [0, 1). */
export function random(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
}

export function rasterFrom(width: number, height: number, channels: 1 | 3 | 4, value: (x: number, y: number, c: number) => number, depth: 8 | 16 = 8): Raster {
  const out = createRaster(width, height, channels, depth);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) out.data[(y * width + x) * channels + c] = value(x, y, c);
  return out;
}
