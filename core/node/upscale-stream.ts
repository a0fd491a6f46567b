import { fillTransparentColour } from '../alpha';
import { throwIfCancelled } from '../errors';
import { LrPsnrAccumulator } from '../fidelity/degradation';
import { LR_PSNR_CAP, modelsNeeded, needsFloatSteps, resultModel, tunedStageOptions, UpscalePlan, resolveContent } from '../modes';
import { hasAlpha, Raster } from '../raster';
import { InferenceRunner } from '../session';
import { outputSize, Resampler, RowSink, StreamedUpscaleResult, UpscaleOptions, upscaleRasterToSink } from '../upscale';
import { DecodedImage, ImageMetadata, OutputFormat, sharpResampler } from './image-io';
import { ModelStore } from './model-store';
import { modelRunner } from './model-runner';
import { parseProvider } from './providers';
import { PngRowWriter } from './png-stream';
import type { UpscaleFileReport, UpscaleFileRequest } from './upscale-file';

/**
 * Large outputs straight to disk: the model's last pass hands finished rows to a PNG encoder that
 * writes them as they come (png-stream.ts), so a 16x result is never whole in memory.
 *
 * What streams: a PNG output of a plan with no float steps (no mode, map or consistency: those work
 * on the whole result) and no TTA (it averages whole runs). Memory is bounded when the scale is a
 * whole power of the model's (4x, 16x with a 4x model); other scales end with a Lanczos resize of the
 * whole raster, which is then still encoded row by row (no sharp copy, no PNG held in memory).
 * JPEG, WebP and TIFF take the usual path (image-io.ts: sharp encodes the whole raster).
 *
 * Smaller outputs keep the usual path too, so the bytes they get do not change (the CLI and the
 * bridge answer byte-identical files for them); the pixels of both paths are identical.
 */

/**
 * What the tiling of a streamed output may hold at once: half the output's 8-bit size, at least
 * 256 MiB. Streaming exists to keep a huge job's memory near the output's own size; the default
 * budget (a quarter of the machine's memory) would let one 16x job's windows and float band take
 * gigabytes.
 */
export function streamingTileBudget(outputBytes8bit: number): number {
  return Math.max(256 * 2 ** 20, outputBytes8bit / 2);
}

/** Outputs from this many pixels on stream (8192² and up at the default). */
export const STREAM_MIN_OUTPUT_PIXELS = 64 * 1000 * 1000;

/** Why a request takes the usual path, or undefined when it can stream to a file. */
export function whyNotStreamed(plan: Pick<UpscalePlan, 'mode' | 'map' | 'consistent' | 'tta'>, format: OutputFormat): string | undefined {
  if (format !== 'png') return `${format.toUpperCase()} output is encoded by sharp from the whole raster`;
  if (needsFloatSteps(plan as UpscalePlan)) return 'a mode, map or consistency works on the whole result';
  if (plan.tta) return 'TTA averages whole runs';
  return undefined;
}

/** Whether upscale-file should take the streaming path for this request and output size. */
export function shouldStream(plan: Pick<UpscalePlan, 'mode' | 'map' | 'consistent' | 'tta'>, format: OutputFormat, output: { width: number; height: number }, minOutputPixels = STREAM_MIN_OUTPUT_PIXELS): boolean {
  return output.width * output.height >= minOutputPixels && whyNotStreamed(plan, format) === undefined;
}

export interface PngFileResult extends StreamedUpscaleResult {
  /** LR-PSNR against the colour the model saw, capped and rounded as reports give it. */
  lrPsnr: number;
}

/**
 * Upscales `input` into a PNG at `output`, row by row; the file appears (renamed into place) only
 * once complete, and a failure or cancellation leaves nothing behind.
 */
export async function upscaleToPngFile(
  output: string,
  input: Raster,
  runner: InferenceRunner,
  modelScale: number,
  options: UpscaleOptions,
  metadata: Partial<ImageMetadata> = {},
  resampler: Resampler = sharpResampler,
): Promise<PngFileResult> {
  const size = outputSize(input.width, input.height, options.scale);
  const shape = { width: size.width, height: size.height, channels: input.channels, depth: input.depth };
  // As runUpscalePlan: LR-PSNR compares against the colour the model saw (transparent pixels filled).
  const reference = hasAlpha(input.channels) ? fillTransparentColour(input) : input;
  const lr = new LrPsnrAccumulator(reference, shape);
  // Opened last: everything after it is inside the try that removes its temp file on failure.
  const writer = await PngRowWriter.open(output, shape, { metadata: { icc: metadata.icc, exif: metadata.exif, density: metadata.density, xmp: metadata.xmp } });
  const sink: RowSink = async (rows, y) => {
    lr.add(rows, y);
    await writer.write(rows);
  };
  try {
    const result = await upscaleRasterToSink(input, runner, modelScale, resampler, options, sink);
    throwIfCancelled(options.signal);
    await writer.finish();
    return { ...result, lrPsnr: Math.min(LR_PSNR_CAP, Number(lr.psnr().toFixed(2))) };
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

/**
 * upscale-file's streaming branch, for a request that shouldStream() accepts, once the input is
 * decoded and checked: same models, same report (LR-PSNR included), the PNG written as it is made.
 */
export async function upscaleFileStreaming(request: UpscaleFileRequest, plan: UpscalePlan, decoded: DecodedImage, started = performance.now()): Promise<UpscaleFileReport> {
  const store = request.store ?? new ModelStore();
  const resolved = resolveContent(plan, decoded.raster);
  for (const m of modelsNeeded(plan, resolved.content)) await store.ensureOne(m.id, request.onInstallStep);
  throwIfCancelled(request.signal);
  const model = resultModel(plan, resolved.content);
  const runner = await modelRunner(store, model.id, { provider: parseProvider(request.provider), onInstallStep: request.onInstallStep });
  throwIfCancelled(request.signal);
  const output = outputSize(decoded.raster.width, decoded.raster.height, plan.scale);
  const tiling = await tunedStageOptions(plan, model, runner, decoded.raster, request.signal, streamingTileBudget(output.width * output.height * decoded.raster.channels));
  const options: UpscaleOptions = { ...tiling, signal: request.signal, onProgress: request.onProgress };
  const result = await upscaleToPngFile(request.output, decoded.raster, runner, model.scale, options, decoded.metadata);
  return {
    content: resolved.content,
    contentDetected: resolved.detected,
    consistent: plan.consistent,
    models: { result: model.id },
    lrPsnr: result.lrPsnr,
    tiles: result.tiles,
    passes: result.passes,
    model: model.id,
    scale: plan.scale,
    input: { width: decoded.raster.width, height: decoded.raster.height },
    output: { width: result.width, height: result.height },
    seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
    // Read after the run: a runner that fell back on its first tile reports the provider it fell back to.
    provider: runner.provider,
    exifKept: decoded.metadata.exif !== undefined,
  };
}

