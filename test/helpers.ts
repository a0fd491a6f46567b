import { findModel } from '../core/catalogue';
import { UpbridgeError } from '../core/errors';
import { ModelStore } from '../core/node/model-store';
import { ortRunner } from '../core/node/ort-session';
import { Raster } from '../core/raster';
import { InferenceRunner } from '../core/session';

export async function runnerFor(modelId: string): Promise<InferenceRunner> {
  const installed = await new ModelStore().ensureOne(modelId);
  return ortRunner(installed.onnxPath);
}

export const modelScale = (id: string) => findModel(id).scale;

/** Deterministic photo-like test content: smooth gradients, edges and texture, no saturated values. */
export function syntheticRaster(width: number, height: number, channels: 1 | 2 | 3 | 4 = 3, depth: 8 | 16 = 8, seed = 1): Raster {
  const max = depth === 16 ? 65535 : 255;
  const data = depth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const edge = (x * 7 + y * 3) % 23 < 11 ? 0.25 : 0;
      const disk = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (Math.min(width, height) / 3) ** 2 ? 0.2 : 0;
      for (let c = 0; c < channels; c++) {
        const isAlpha = (channels === 2 || channels === 4) && c === channels - 1;
        const base = isAlpha ? (disk > 0 ? 1 : 0.3 + 0.4 * (x / Math.max(1, width - 1))) : 0.2 + 0.3 * (x / Math.max(1, width)) * (c + 1) / 3 + edge + disk + 0.08 * rand();
        data[(y * width + x) * channels + c] = Math.round(Math.min(0.92, Math.max(0.06, base)) * max);
      }
    }
  }
  return { width, height, channels, depth, data };
}

export function maxAbsDiff(a: Raster, b: Raster): number {
  expect(a.width).toBe(b.width);
  expect(a.height).toBe(b.height);
  expect(a.channels).toBe(b.channels);
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  return worst;
}

/** Runs `fn` and returns the UpbridgeError it throws (failing the test if it throws nothing else). */
export function thrown(fn: () => unknown): UpbridgeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UpbridgeError);
    return e as UpbridgeError;
  }
  throw new Error('expected an UpbridgeError, nothing was thrown');
}
