import { realpathSync } from 'node:fs';
import * as path from 'node:path';
import { throwIfCancelled } from '../errors';
import { invalidOption } from '../validate';
import { checkModeLimits, ModeReport, modelsNeeded, planUpscale, resolveContent, runUpscalePlan, UpscaleRequestFields } from '../modes';
import { mapToRaster } from '../fidelity/detail-map';
import { InferenceRunner } from '../session';
import { outputSize, UpscaleOptions } from '../upscale';
import { checkFormatFits, checkWritable, formatFromPath, readImage, sharpResampler, writeImage } from './image-io';
import { InstallStep, ModelStore } from './model-store';
import { modelRunner } from './model-runner';
import { shouldStream, upscaleFileStreaming } from './upscale-stream';
import { parseProvider, processProviders } from './providers';

export interface UpscaleFileRequest extends UpscaleRequestFields {
  input: string;
  output: string;
  model?: string;
  /** Where the invented-detail map goes when `map` is on (default: beside the output, `<name>.map.png`). */
  mapOutput?: string;
  signal?: AbortSignal;
  onProgress?: UpscaleOptions['onProgress'];
  onInstallStep?: (id: string, step: InstallStep) => void;
  store?: ModelStore;
  /** Execution provider: `auto` (default, or $UPBRIDGE_PROVIDER), or one of PROVIDER_CHOICES forced. */
  provider?: string;
}

export interface UpscaleFileReport extends ModeReport {
  /** The model of the result (the creative end when a blend leans on it). */
  model: string;
  scale: number;
  input: { width: number; height: number };
  output: { width: number; height: number };
  seconds: number;
  provider: string;
  exifKept: boolean;
  /** Where the map was written, when asked for. */
  mapFile?: string;
}

/** `photo.png` → `photo.map.png`: the map beside its result. */
export function defaultMapPath(output: string): string {
  const ext = path.extname(output);
  return path.join(path.dirname(output), `${path.basename(output, ext)}.map.png`);
}

/** File to file: validate everything first, so a bad request fails before any download or inference. */
export async function upscaleFile(request: UpscaleFileRequest): Promise<UpscaleFileReport> {
  const started = performance.now();
  const plan = planUpscale(request);
  const providerChoice = parseProvider(request.provider);
  const format = formatFromPath(request.output);
  // Never over the original: the result replaces its output file whole.
  if (samePath(request.output, request.input)) throw invalidOption('output', 'a file other than the input', request.output);
  await checkWritable(request.output);
  const mapFile = plan.map ? request.mapOutput ?? defaultMapPath(request.output) : undefined;
  if (mapFile) {
    formatFromPath(mapFile);
    if (samePath(mapFile, request.output) || samePath(mapFile, request.input)) throw invalidOption('map', 'a file other than the output and the input', mapFile);
    await checkWritable(mapFile);
  }
  // Probe the GPU providers (a child process, once per process) while the image decodes.
  // (A failure here shows again, and is reported, when the runner asks.)
  processProviders.candidates(providerChoice).catch(() => undefined);
  const decoded = await readImage(request.input);
  const size = outputSize(decoded.raster.width, decoded.raster.height, plan.scale);
  checkFormatFits(format, size.width, size.height);
  checkModeLimits(plan, decoded.raster.width, decoded.raster.height);
  // Large PNG outputs of a single model are written row by row, never whole in memory (upscale-stream.ts).
  if (shouldStream(plan, format, size)) return upscaleFileStreaming(request, plan, decoded, started);
  const checkCancelled = () => throwIfCancelled(request.signal);

  const store = request.store ?? new ModelStore();
  const resolved = resolveContent(plan, decoded.raster);
  // Every model first: a missing download fails the run before an hour of inference, not after.
  for (const m of modelsNeeded(plan, resolved.content)) await store.ensureOne(m.id, request.onInstallStep);
  checkCancelled();
  const runners: InferenceRunner[] = [];
  const result = await runUpscalePlan(
    decoded.raster,
    plan,
    {
      runnerFor: async (m) => {
        const runner = await modelRunner(store, m.id, { provider: providerChoice, onInstallStep: request.onInstallStep });
        runners.push(runner);
        return runner;
      },
      resampler: sharpResampler,
      signal: request.signal,
      onProgress: request.onProgress,
    },
    undefined,
    resolved,
  );
  checkCancelled();
  // Read after the run: a runner that fell back on its first tile reports the provider it fell back to.
  const provider = [...new Set(runners.map((r) => r.provider))].join('+') || 'cpu';
  const { exifKept } = await writeImage(request.output, result.raster, decoded.metadata, format);
  if (mapFile && result.map) await writeImage(mapFile, mapToRaster(result.map), {}, formatFromPath(mapFile));
  const r = result.report;
  return {
    ...r,
    model: r.models.result ?? (r.creativity === 0 ? r.models.fidelity : r.models.creative) ?? '',
    scale: plan.scale,
    input: { width: decoded.raster.width, height: decoded.raster.height },
    output: { width: result.raster.width, height: result.raster.height },
    seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
    provider,
    exifKept,
    ...(mapFile ? { mapFile } : {}),
  };
}

/** Whether two paths name one file (links and `..` resolved where the file or its folder exists). */
function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    const absolute = path.resolve(p);
    try {
      return realpathSync(absolute);
    } catch {
      try {
        return path.join(realpathSync(path.dirname(absolute)), path.basename(absolute));
      } catch {
        return absolute;
      }
    }
  };
  return real(a) === real(b);
}
