/**
 * Shared by the Photoshop plugin tests: a client that talks to a real bridge the way UXP does,
 * deterministic test pixels in Photoshop's value ranges, and the expected upscale computed
 * independently of the bridge (core's pipeline with its own ONNX Runtime session).
 */
import { findModel } from '../../../core/catalogue';
import { Raster, BitDepth, ChannelCount } from '../../../core/raster';
import { upscaleRaster, validateUpscaleOptions } from '../../../core/upscale';
import { sharpResampler } from '../../../core/node/image-io';
import { InferenceRunner } from '../../../core/session';
import { BridgeClient } from '../../../plugins/shared/bridge-client';
import { FAST_MODEL, TestBridge } from '../../bridge-server/bridge-harness';
import { runnerFor } from '../../helpers';
import { Pixels, Rect, sim } from './sim/photoshop';

/** The Origin UXP reportedly sends (RESEARCH.md §1.6); the bridge accepts `uxp://…`. */
export const UXP_ORIGIN = 'uxp://com.upbridge.photoshop';

/** Node's fetch with the header UXP adds, so the bridge's Origin check is part of every test. */
export function uxpFetch(origin = UXP_ORIGIN): typeof fetch {
  return (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('origin', origin);
    return fetch(input, { ...init, headers });
  };
}

export function clientFor(bridge: Pick<TestBridge, 'origin' | 'token'>, options: { token?: string | null; origin?: string } = {}): BridgeClient {
  return new BridgeClient({
    baseUrl: bridge.origin,
    token: options.token === null ? undefined : (options.token ?? bridge.token),
    fetch: uxpFetch(options.origin),
    pollMs: 25,
  });
}

/** Photoshop's top value for a depth: 16-bit runs 0..32768 (PSDOCS imaging.md). */
export const psMax = (depth: BitDepth) => (depth === 16 ? 32768 : 255);

/**
 * Photo-like pixels (gradients, hard diagonal edges, a disk, noise) in Photoshop's range, chunky.
 * With alpha, the alpha varies from 10% to 100% and is never 0 (so a layer's bounds are its rect).
 * 16-bit data includes the extremes 0 and 32768.
 */
export function psPixels(width: number, height: number, channels: number, depth: BitDepth, seed = 1): Pixels {
  const max = psMax(depth);
  const data = depth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const colour = channels === 2 || channels === 4 ? channels - 1 : channels;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const edge = (x * 5 + y * 3 + seed) % 19 < 9 ? 0.3 : 0;
      const disk = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (Math.min(width, height) / 3) ** 2 ? 0.25 : 0;
      const i = (y * width + x) * channels;
      for (let c = 0; c < colour; c++) {
        const v = 0.1 + (0.35 * x) / width + (0.1 * c) + edge + disk + 0.1 * rand() - (0.2 * y) / height;
        data[i + c] = Math.round(Math.min(1, Math.max(0, v)) * max);
      }
      if (colour < channels) {
        const alpha = 0.1 + (0.9 * (x + y * 0.5)) / (width + height * 0.5) + (disk ? 0.3 : 0);
        data[i + colour] = Math.min(max, Math.max(1, Math.round(alpha * max)));
      }
    }
  }
  if (depth === 16) {
    data[0] = 0;
    data[1] = max;
    data[data.length - 1] = max;
  }
  return data;
}

/** `rect` of a chunky buffer `width` pixels wide. */
export function crop(data: Pixels, width: number, channels: number, rect: Rect): Pixels {
  const w = rect.right - rect.left;
  const h = rect.bottom - rect.top;
  const out = data instanceof Uint16Array ? new Uint16Array(w * h * channels) : new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < channels; c++) out[(y * w + x) * channels + c] = data[((rect.top + y) * width + rect.left + x) * channels + c];
    }
  }
  return out;
}

export function raster(data: Pixels, width: number, height: number, channels: number, depth: BitDepth): Raster {
  expect(data.length).toBe(width * height * channels);
  return { width, height, channels: channels as ChannelCount, depth, data };
}

/** Photoshop 0..32768 → the bridge's 0..65535, written out here rather than imported from the plugin. */
export function toFullRange(data: Uint16Array): Uint16Array {
  return Uint16Array.from(data, (v) => Math.round((v * 65535) / 32768));
}

export function toPhotoshopRange(data: Uint16Array): Uint16Array {
  return Uint16Array.from(data, (v) => Math.round((v * 32768) / 65535));
}

/** A pixel layer stores alpha: opaque results (RGB, grey) gain an opaque alpha component. */
export function withOpaqueAlpha(data: Pixels, channels: number, depth: BitDepth): Pixels {
  const n = data.length / channels;
  const out = depth === 16 ? new Uint16Array(n * (channels + 1)) : new Uint8Array(n * (channels + 1));
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < channels; c++) out[i * (channels + 1) + c] = data[i * channels + c];
    out[i * (channels + 1) + channels] = psMax(depth);
  }
  return out;
}

const runners = new Map<string, Promise<InferenceRunner>>();

/**
 * What the bridge should make of `input`: core's pipeline with the model's defaults (the options
 * the bridge applies when a request names only the scale), run on a separate ORT session.
 */
export async function expectedUpscale(input: Raster, scale: number, model = FAST_MODEL): Promise<Raster> {
  if (!runners.has(model)) runners.set(model, runnerFor(model));
  const entry = findModel(model);
  const options = validateUpscaleOptions({ scale }, entry);
  return (await upscaleRaster(input, await runners.get(model)!, entry.scale, sharpResampler, options)).raster;
}

/** Calls that change a document: none may happen on a refusal. */
export const CHANGING_CALLS = ['imaging.putPixels', 'Document.resizeImage', 'app.createDocument', 'Document.createPixelLayer', 'Layer.name='];

export function changingCalls(): string[] {
  return sim.callNames().filter((n) => CHANGING_CALLS.includes(n));
}

/** A layer's pixels as the sim stores them, with where they sit. */
export function layerData(docId: number, name: string) {
  const layer = sim.layer(docId, name);
  return { ...sim.layerPixels(docId, layer.id), layer };
}

export function compareArrays(actual: ArrayLike<number>, expected: ArrayLike<number>): { length: [number, number]; firstDifference?: { index: number; actual: number; expected: number } } {
  const result: ReturnType<typeof compareArrays> = { length: [actual.length, expected.length] };
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
    if (actual[i] !== expected[i]) {
      result.firstDifference = { index: i, actual: actual[i], expected: expected[i] };
      break;
    }
  }
  return result;
}

/** Exact equality of pixel arrays, reported as the first difference rather than a megabyte diff. */
export function expectSamePixels(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(compareArrays(actual, expected)).toEqual({ length: [expected.length, expected.length] });
}
