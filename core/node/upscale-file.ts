import { catalogue, findModel } from '../catalogue';
import { upscaleRaster, UpscaleOptions, validateUpscaleOptions } from '../upscale';
import { throwIfCancelled } from '../errors';
import { outputSize } from '../upscale';
import { checkFormatFits, checkWritable, formatFromPath, readImage, sharpResampler, writeImage } from './image-io';
import { InstallStep, ModelStore } from './model-store';
import { ortRunner } from './ort-session';

export interface UpscaleFileRequest {
  input: string;
  output: string;
  model?: string;
  scale?: unknown;
  tile?: unknown;
  overlap?: unknown;
  alpha?: unknown;
  signal?: AbortSignal;
  onProgress?: UpscaleOptions['onProgress'];
  onInstallStep?: (id: string, step: InstallStep) => void;
  store?: ModelStore;
}

export interface UpscaleFileReport {
  model: string;
  scale: number;
  input: { width: number; height: number };
  output: { width: number; height: number };
  tiles: number;
  passes: number;
  seconds: number;
  provider: string;
  exifKept: boolean;
}

/** File to file: validate everything first, so a bad request fails before any download or inference. */
export async function upscaleFile(request: UpscaleFileRequest): Promise<UpscaleFileReport> {
  const started = performance.now();
  const entry = findModel(request.model ?? catalogue.defaultModel);
  const options = validateUpscaleOptions(request, entry);
  const format = formatFromPath(request.output);
  await checkWritable(request.output);
  const decoded = await readImage(request.input);
  const size = outputSize(decoded.raster.width, decoded.raster.height, options.scale);
  checkFormatFits(format, size.width, size.height);
  const checkCancelled = () => throwIfCancelled(request.signal);

  const store = request.store ?? new ModelStore();
  const installed = await store.ensureOne(entry.id, request.onInstallStep);
  checkCancelled();
  const runner = await ortRunner(installed.onnxPath);
  const result = await upscaleRaster(decoded.raster, runner, entry.scale, sharpResampler, {
    ...options,
    signal: request.signal,
    onProgress: request.onProgress,
  });
  checkCancelled();
  const { exifKept } = await writeImage(request.output, result.raster, decoded.metadata, format);
  return {
    model: entry.id,
    scale: options.scale,
    input: { width: decoded.raster.width, height: decoded.raster.height },
    output: { width: result.raster.width, height: result.raster.height },
    tiles: result.tiles,
    passes: result.passes,
    seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
    provider: runner.provider,
    exifKept,
  };
}
