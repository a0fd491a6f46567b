/**
 * What an upscale request means for a given document, decided before any pixel moves: which
 * pixels to read, where the results go, and every refusal (with what to do instead). Pure, so
 * each rule is tested without a host.
 */
import { UpbridgeError } from '../../../core/errors';
import { BitDepth } from '../../../core/raster';
import { fitsLimits, largestFittingScale, outputSize, SCALE_LIMITS } from '../../../core/scale';
import { invalidOption, numberInRange, oneOf } from '../../../core/validate';
import { BridgeLimitsInfo, Mode, MODES } from '../../shared/bridge-client';
import type { DocumentInfo, LayerInfo, PixelSource, Rect } from './document';

export const TARGETS = ['selection', 'layer', 'document'] as const;
export type Target = (typeof TARGETS)[number];

export const DESTINATIONS = ['new-document', 'new-layer', 'layers'] as const;
export type Destination = (typeof DESTINATIONS)[number];

/** "layers" (every pixel layer upscaled in place) only makes sense for the whole document. */
export const DESTINATIONS_FOR: Record<Target, readonly Destination[]> = {
  selection: ['new-document', 'new-layer'],
  layer: ['new-layer', 'new-document'],
  document: ['new-document', 'new-layer', 'layers'],
};

export const PRESET_SCALES = [2, 3, 4, 8, 16] as const;

export interface UpscaleRequest {
  target: Target;
  destination: Destination;
  scale: number;
  /** Without a mode: the model to run (absent: the bridge's default). */
  model?: string;
  /** With a mode the bridge picks the models; `model` is not sent. */
  mode?: Mode;
  /** Only with a mode, and only when the user set it: absent, the mode's own default applies. */
  creativity?: number;
}

export interface PlannedRead {
  source: PixelSource;
  /** Width × height that will be read (the bridge's limits apply to it). */
  width: number;
  height: number;
  /** Shown in progress ("Layer 2 of 5: Sky"). */
  label: string;
  /** For "layers": the layer whose pixels the result replaces. */
  replaceLayerId?: number;
}

export interface Plan {
  depth: BitDepth;
  reads: PlannedRead[];
  /** The resized document, for "new-layer" and "layers". */
  documentSize?: { width: number; height: number };
  /** Layers left to Photoshop's own resampling (text, shapes, smart objects, adjustments). */
  resampledByPhotoshop: number;
}

const MODE_HINT: Record<string, string> = {
  CMYKColorMode: 'CMYK',
  labColorMode: 'Lab',
  indexedColorMode: 'Indexed Color',
  bitmapMode: 'Bitmap',
  duotoneMode: 'Duotone',
  multichannelMode: 'Multichannel',
};

/** Pixel layers carry pixels of their own; text, shapes and smart objects render pixels too. */
const READABLE_KINDS = new Set(['pixel', 'smartObject', 'text']);

export function documentDepth(doc: DocumentInfo): BitDepth {
  if (doc.mode !== 'RGBColorMode' && doc.mode !== 'grayscaleMode') {
    const name = MODE_HINT[doc.mode] ?? doc.mode;
    throw new UpbridgeError('UPB_UNSUPPORTED_DOCUMENT', `${name} documents can't be upscaled: convert a copy with Image > Mode > RGB Color (or Grayscale) first`);
  }
  if (doc.bits === 'bitDepth8') return 8;
  if (doc.bits === 'bitDepth16') return 16;
  if (doc.bits === 'bitDepth32') {
    throw new UpbridgeError('UPB_UNSUPPORTED_DOCUMENT', '32-bit documents can\'t be upscaled: convert a copy with Image > Mode > 16 Bits/Channel first');
  }
  throw new UpbridgeError('UPB_UNSUPPORTED_DOCUMENT', `documents of ${doc.bits} can't be upscaled: use 8 or 16 bits per channel`);
}

function clip(r: Rect, doc: DocumentInfo): Rect {
  return { left: Math.max(0, r.left), top: Math.max(0, r.top), right: Math.min(doc.width, r.right), bottom: Math.min(doc.height, r.bottom) };
}

const sizeOf = (r: Rect) => ({ width: Math.max(0, r.right - r.left), height: Math.max(0, r.bottom - r.top) });

function checkFits(what: string, width: number, height: number, scale: number, limits: BridgeLimitsInfo, depth: BitDepth, channels: number): void {
  if (width * height > limits.maxInputPixels) {
    throw new UpbridgeError('UPB_TOO_LARGE', `${what} is ${width}×${height} px; the bridge takes at most ${limits.maxInputPixels} pixels at a time: select a smaller region`);
  }
  if (width * height * channels * (depth / 8) > limits.maxBodyBytes) {
    throw new UpbridgeError('UPB_TOO_LARGE', `${what} is ${width}×${height} px at ${depth} bits; over the bridge's upload limit of ${Math.floor(limits.maxBodyBytes / 2 ** 20)} MiB`);
  }
  if (!fitsLimits(width, height, scale, limits)) {
    const out = outputSize(width, height, scale);
    const best = largestFittingScale(width, height, limits);
    throw new UpbridgeError(
      'UPB_TOO_LARGE',
      `${what} at ${scale}x would be ${out.width}×${out.height} px, more than the bridge makes (${limits.maxOutputSide} px a side, ${Math.round(limits.maxOutputPixels / 1e6)} MP): ` +
        (best === undefined ? 'select a smaller region' : `the largest scale that fits is ${best}x`),
      best === undefined ? undefined : { largestScale: best },
    );
  }
}

export function validateRequest(raw: { target?: unknown; destination?: unknown; scale?: unknown; model?: unknown; mode?: unknown; creativity?: unknown }): UpscaleRequest {
  const target = TARGETS.find((t) => t === raw.target);
  if (!target) throw new UpbridgeError('UPB_INVALID_OPTION', `what to upscale must be one of ${TARGETS.join(', ')}`);
  const destination = DESTINATIONS.find((d) => d === raw.destination);
  if (!destination || !DESTINATIONS_FOR[target].includes(destination)) {
    throw new UpbridgeError('UPB_INVALID_OPTION', `for the ${target}, the result can go to: ${DESTINATIONS_FOR[target].join(', ')}`);
  }
  const scale = numberInRange('scale', raw.scale, SCALE_LIMITS.min, SCALE_LIMITS.max);
  const given = (v: unknown) => v !== undefined && v !== null && v !== '';
  // "model" in the Mode picker is no mode: the model picker decides.
  const mode = given(raw.mode) && raw.mode !== 'model' ? oneOf('mode', raw.mode, MODES) : undefined;
  if (!mode) {
    if (given(raw.creativity)) throw invalidOption('creativity', 'used with a mode (Fidelity, Balanced or Creative)', raw.creativity);
    return { target, destination, scale, ...(typeof raw.model === 'string' && raw.model ? { model: raw.model } : {}) };
  }
  return { target, destination, scale, mode, ...(given(raw.creativity) ? { creativity: numberInRange('creativity', raw.creativity, 0, 1) } : {}) };
}

/** Decides what to read and checks it against the bridge's limits; throws a refusal otherwise. */
export function planUpscale(doc: DocumentInfo | undefined, request: UpscaleRequest, limits: BridgeLimitsInfo): Plan {
  if (!doc) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', 'no document is open: open an image in Photoshop first');
  const depth = documentDepth(doc);
  const channels = doc.mode === 'grayscaleMode' ? 2 : 4;
  const reads: PlannedRead[] = [];
  let resampledByPhotoshop = 0;

  if (request.target === 'selection') {
    if (!doc.selection) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', 'nothing is selected: make a selection, or choose Active layer or Whole document');
    const bounds = clip(doc.selection, doc);
    const { width, height } = sizeOf(bounds);
    if (width === 0 || height === 0) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', 'the selection is empty or outside the canvas');
    reads.push({ source: { bounds }, width, height, label: 'Selection' });
  } else if (request.target === 'layer') {
    const layer = singleActiveLayer(doc);
    const { width, height } = sizeOf(layer.bounds);
    if (width === 0 || height === 0) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', `layer "${layer.name}" is empty`);
    reads.push({ source: { layerId: layer.id }, width, height, label: layer.name });
  } else if (request.destination === 'layers') {
    for (const layer of doc.layers) {
      const { width, height } = sizeOf(layer.bounds);
      if (layer.kind !== 'pixel') {
        if (layer.kind !== 'group') resampledByPhotoshop++;
        continue;
      }
      if (width === 0 || height === 0) continue;
      reads.push({ source: { layerId: layer.id }, width, height, label: layer.name, replaceLayerId: layer.id });
    }
    if (reads.length === 0) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', 'the document has no pixel layers with content');
    reads.forEach((r, i) => (r.label = `Layer ${i + 1} of ${reads.length}: ${r.label}`));
  } else {
    reads.push({ source: {}, width: doc.width, height: doc.height, label: doc.title });
  }

  for (const read of reads) checkFits(read.label, read.width, read.height, request.scale, limits, depth, channels);
  const inPlace = request.destination !== 'new-document';
  // The resized document must fit too: its layers come back at the scaled size.
  if (inPlace) checkFits(`the document (${doc.title})`, doc.width, doc.height, request.scale, { ...limits, maxInputPixels: Infinity, maxBodyBytes: Infinity }, depth, channels);
  return { depth, reads, resampledByPhotoshop, ...(inPlace ? { documentSize: outputSize(doc.width, doc.height, request.scale) } : {}) };
}

function singleActiveLayer(doc: DocumentInfo): LayerInfo {
  if (doc.activeLayers.length === 0) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', 'no layer is active: click a layer in the Layers panel');
  if (doc.activeLayers.length > 1) throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', `${doc.activeLayers.length} layers are active: select one layer, or choose Whole document`);
  const layer = doc.activeLayers[0];
  if (!READABLE_KINDS.has(layer.kind)) {
    const what = layer.kind === 'group' ? 'a group' : `a ${layer.kind} layer, which has no pixels of its own`;
    throw new UpbridgeError('UPB_NOTHING_TO_UPSCALE', `"${layer.name}" is ${what}: pick a pixel layer, or choose Whole document`);
  }
  return layer;
}

/** Where a region of the source lands once the document is scaled. */
export function scaledOrigin(bounds: Rect, scale: number): { left: number; top: number } {
  return { left: Math.round(bounds.left * scale), top: Math.round(bounds.top * scale) };
}

export function scaleLabel(scale: number): string {
  return `×${Number.isInteger(scale) ? scale : scale.toFixed(2).replace(/0+$/, '')}`;
}
