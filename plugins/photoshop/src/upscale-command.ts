/**
 * One upscale from the panel: plan → read pixels → bridge (one job per region) → write back in
 * one history state. The network part runs outside any modal scope, so Photoshop stays usable
 * while the bridge works, and a cancel never leaves the document half-changed: nothing is
 * written until every result is in.
 */
import { throwIfCancelled } from '../../../core/errors';
import { Raster } from '../../../core/raster';
import { BridgeClient, JobReport, JobSettings } from '../../shared/bridge-client';
import { ProgressTracker, ProgressView } from '../../shared/progress';
import { describeRun } from '../../shared/modes';
import { activeDocument, Placement, placeInNewDocument, readPixels, upscaleDocumentInPlace } from './document';
import { planUpscale, scaledOrigin, scaleLabel, UpscaleRequest } from './plan';

export interface CommandHooks {
  signal?: AbortSignal;
  onProgress?: (view: ProgressView & { label: string }) => void;
}

export interface CommandResult {
  /** The document that holds the result (a new one for "new-document"). */
  documentId: number;
  /** One line for the panel. */
  message: string;
  /** The bridge's report of each job, in order (what ran, LR-PSNR). */
  reports: JobReport[];
  /** One line on what ran and the LR-PSNR: "Creative (realesrgan-x4plus) · LR-PSNR 31.2 dB". */
  ran?: string;
}

/** What the bridge is asked to run: a mode (which picks the models), or a model. */
export function jobSettings(request: UpscaleRequest): JobSettings {
  if (request.mode) return { scale: request.scale, mode: request.mode, ...(request.creativity !== undefined ? { creativity: request.creativity } : {}) };
  return { scale: request.scale, ...(request.model ? { model: request.model } : {}) };
}

export async function runUpscale(client: BridgeClient, request: UpscaleRequest, hooks: CommandHooks = {}): Promise<CommandResult> {
  const { signal } = hooks;
  const health = await client.health(signal);
  const doc = await activeDocument();
  const plan = planUpscale(doc, request, health.limits);
  const source = doc!;
  const reads = await readPixels(source.id, plan.reads.map((r) => r.source), plan.depth);
  throwIfCancelled(signal);

  const tracker = new ProgressTracker(reads.length);
  const settings = jobSettings(request);
  const results: Raster[] = [];
  const reports: JobReport[] = [];
  for (let i = 0; i < reads.length; i++) {
    const label = plan.reads[i].label;
    hooks.onProgress?.({ ...tracker.update(0, 0), label });
    const { report, ...raster } = await client.upscaleRaster(reads[i].raster, settings, { signal, onProgress: (p) => hooks.onProgress?.({ ...tracker.update(p.done, p.total, p.runMs), label }) });
    results.push(raster);
    if (report) reports.push(report);
    tracker.nextStep();
  }
  throwIfCancelled(signal);
  const ran = describeRun(reports);
  const done = (documentId: number, message: string): CommandResult => ({ documentId, message, reports, ...(ran ? { ran } : {}) });

  const scale = scaleLabel(request.scale);
  const historyName = `Upscale ${scale} (upbridge)`;
  if (request.destination === 'new-document') {
    const name = plan.reads[0].label;
    const documentId = await placeInNewDocument(source, results[0], { document: `${source.title} ${scale}`, layer: `${name} ${scale}` }, historyName);
    return done(documentId, `${name} upscaled ${scale} into a new ${results[0].width}×${results[0].height} document`);
  }
  const placements: Placement[] = results.map((raster, i) => ({
    raster,
    at: scaledOrigin(reads[i].bounds, request.scale),
    ...(plan.reads[i].replaceLayerId !== undefined ? { layerId: plan.reads[i].replaceLayerId } : { name: `${plan.reads[i].label} ${scale}` }),
  }));
  await upscaleDocumentInPlace(source, plan.documentSize!, placements, historyName);
  const size = `${plan.documentSize!.width}×${plan.documentSize!.height}`;
  if (request.destination === 'layers') {
    const others = plan.resampledByPhotoshop > 0 ? `; ${plan.resampledByPhotoshop} other layer(s) (text, shapes, smart objects, adjustments) resized by Photoshop` : '';
    return done(source.id, `document upscaled ${scale} to ${size}: ${results.length} pixel layer(s) by the model${others}`);
  }
  return done(source.id, `document resized to ${size}; the upscaled ${plan.reads[0].label.toLowerCase() === 'selection' ? 'selection' : `"${plan.reads[0].label}"`} is a new layer`);
}
