/**
 * One upscale from the panel: plan → read pixels → bridge (one job per region) → write back in
 * one history state. The network part runs outside any modal scope, so Photoshop stays usable
 * while the bridge works, and a cancel never leaves the document half-changed: nothing is
 * written until every result is in.
 */
import { throwIfCancelled } from '../../../core/errors';
import { Raster } from '../../../core/raster';
import { BridgeClient } from '../../shared/bridge-client';
import { ProgressTracker, ProgressView } from '../../shared/progress';
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
  const results: Raster[] = [];
  for (let i = 0; i < reads.length; i++) {
    const label = plan.reads[i].label;
    hooks.onProgress?.({ ...tracker.update(0, 0), label });
    results.push(
      await client.upscaleRaster(reads[i].raster, { model: request.model, scale: request.scale }, { signal, onProgress: (p) => hooks.onProgress?.({ ...tracker.update(p.done, p.total, p.runMs), label }) }),
    );
    tracker.nextStep();
  }
  throwIfCancelled(signal);

  const scale = scaleLabel(request.scale);
  const historyName = `Upscale ${scale} (upbridge)`;
  if (request.destination === 'new-document') {
    const name = plan.reads[0].label;
    const documentId = await placeInNewDocument(source, results[0], { document: `${source.title} ${scale}`, layer: `${name} ${scale}` }, historyName);
    return { documentId, message: `${name} upscaled ${scale} into a new ${results[0].width}×${results[0].height} document` };
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
    return { documentId: source.id, message: `document upscaled ${scale} to ${size}: ${results.length} pixel layer(s) by the model${others}` };
  }
  return { documentId: source.id, message: `document resized to ${size}; the upscaled ${plan.reads[0].label.toLowerCase() === 'selection' ? 'selection' : `"${plan.reads[0].label}"`} is a new layer` };
}
