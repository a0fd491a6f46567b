/**
 * What the two quality benchmarks share (quality-table.ts: every model; quality-modes.ts: the
 * modes): reading ground truth as 8-bit RGB, sharp resizes on rasters, and the super-resolution
 * protocol's score (BT.601 luma, `scale` pixels shaved).
 */
import sharp from 'sharp';
import { lumaBt601, psnr, shave, ssim } from '../core/metrics';
import { Raster } from '../core/raster';

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

export const flag = (name: string) => process.argv.includes(`--${name}`);

export async function rgb(file: string): Promise<Raster> {
  const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: 3, depth: 8, data: new Uint8Array(data) };
}

export const toSharp = (r: Raster) => sharp(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength), { raw: { width: r.width, height: r.height, channels: r.channels } });

/** sharp's output as a raster; its channel count is what sharp says (it turns grey into sRGB). */
async function raster(pipeline: sharp.Sharp): Promise<Raster> {
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels as Raster['channels'], depth: 8, data: new Uint8Array(data) };
}

export async function resize(r: Raster, width: number, height: number, kernel: 'cubic' | 'lanczos3' | 'nearest'): Promise<Raster> {
  return raster(toSharp(r).resize(width, height, { kernel, fit: 'fill' }));
}

export async function crop(r: Raster, left: number, top: number, width: number, height: number): Promise<Raster> {
  return raster(toSharp(r).extract({ left, top, width, height }));
}

export function score(result: Raster, truth: Raster, scale: number): { psnr: number; ssim: number } {
  const a = shave(lumaBt601(result.data, result.width, result.height, 3), scale);
  const b = shave(lumaBt601(truth.data, truth.width, truth.height, 3), scale);
  return { psnr: psnr(a.data, b.data, 255).db, ssim: ssim(a, b) };
}

/** Ground truth cropped to a multiple of the scale, and its bicubic (Catmull-Rom) downscale. */
export async function groundTruthCase(hr: Raster, scale: number): Promise<{ truth: Raster; lr: Raster }> {
  const width = hr.width - (hr.width % scale);
  const height = hr.height - (hr.height % scale);
  const truth = await crop(hr, 0, 0, width, height);
  return { truth, lr: await resize(truth, width / scale, height / scale, 'cubic') };
}
