import sharp from 'sharp';
import { findModel } from '../core/catalogue';
import { upscaleRaster, windowConventions } from '../core/upscale';
import { decodeImage, sharpResampler } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import { ortRunner } from '../core/node/ort-session';

/**
 * Output megapixels per second for a size×size input at the model's native scale, whole pipeline
 * (tiling, blending, alpha fill) included, with the model's default tile and overlap. One warm-up
 * run first, so session creation and first-run allocation are not counted.
 */
export async function runBenchmark(modelId: string, size: number, imagePath: string) {
  const entry = findModel(modelId);
  const installed = await new ModelStore().ensureOne(modelId);
  const runner = await ortRunner(installed.onnxPath);
  const bytes = await sharp(imagePath).resize(size, size, { fit: 'cover' }).png().toBuffer();
  const { raster } = await decodeImage(bytes);
  const options = { scale: entry.scale, tile: entry.tile, overlap: entry.overlap, alpha: 'model' as const, ...windowConventions(entry) };
  await upscaleRaster(raster, runner, entry.scale, sharpResampler, { ...options });
  const started = performance.now();
  const result = await upscaleRaster(raster, runner, entry.scale, sharpResampler, options);
  const seconds = (performance.now() - started) / 1000;
  const outputMegapixels = (result.raster.width * result.raster.height) / 1e6;
  return {
    model: modelId,
    provider: runner.provider,
    input: `${size}x${size}`,
    output: `${result.raster.width}x${result.raster.height}`,
    tile: entry.tile,
    overlap: entry.overlap,
    tiles: result.tiles,
    seconds: Number(seconds.toFixed(3)),
    outputMegapixelsPerSecond: Number((outputMegapixels / seconds).toFixed(4)),
    // maxRSS is in KiB on Linux and macOS.
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}
