import type { ModelEntry } from '../catalogue';
import { throwIfCancelled, UpbridgeError } from '../errors';
import { Raster } from '../raster';
import { InferenceRunner, TileTensor } from '../session';
import { Resampler, upscaleRaster, UpscaleResult, windowConventions } from '../upscale';

/**
 * The in-browser upscale: the shared pipeline (core/upscale.ts) on an onnxruntime-web runner,
 * bounded so a laptop stays responsive. One model pass at the model's own scale: a 1024 px side
 * becomes 4096 px, Figma's largest image, and single-threaded wasm takes minutes at that size
 * already (see README, "Upscale without the bridge"). Larger or other scales are the bridge's job.
 */
export const WEB_LIMITS = { maxInputSide: 1024 } as const;

/**
 * Tile core for the browser, smaller than the bridge's 256: a tile is what Cancel waits for (the
 * one in flight finishes), the step progress moves by, and, where no worker could start
 * (worker-runner.ts), how long the window cannot repaint. Measured on this project's busy 2-vCPU
 * VM, one wasm thread, a 384² input: 4.5 s a tile at 128 (9 tiles, 40 s) against 7.9 s a tile at
 * 256 (which the tiler makes 4 tiles of 192; 32 s): shorter steps for 1.27× the total time.
 */
export const WEB_TILE = 128;

export interface WebUpscaleOptions {
  /** Tile core in input pixels (default: WEB_TILE, or the model's own when smaller). */
  tile?: number;
  overlap?: number;
  signal?: AbortSignal;
  onProgress?: (progress: { done: number; total: number }) => void;
}

/** Refuses, naming the limit, before anything is fetched or run. */
export function checkWebInput(width: number, height: number): void {
  const limit = WEB_LIMITS.maxInputSide;
  if (width > limit || height > limit) {
    throw new UpbridgeError(
      'UPB_TOO_LARGE',
      `upscaling in this browser takes images up to ${limit}×${limit} px (this one is ${width}×${height}); use the bridge (npm start) for larger images`,
      { limit, width, height },
    );
  }
}

/**
 * Hands the event loop a turn: a MessageChannel message, not setTimeout, which browsers clamp to
 * a second or more in hidden frames (a plugin window behind the canvas).
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** Between tiles: the UI repaints and handles a click on Cancel before the next tile starts. */
function yieldingRunner(runner: InferenceRunner, signal: AbortSignal | undefined): InferenceRunner {
  return {
    provider: runner.provider,
    async run(input: TileTensor) {
      await yieldToEventLoop();
      throwIfCancelled(signal);
      return runner.run(input);
    },
  };
}

/** One pass at the model's scale never resizes; this is here to make that a loud bug if it changes. */
const NO_RESAMPLER: Resampler = {
  resize() {
    throw new UpbridgeError('UPB_INTERNAL', 'the in-browser engine runs the model scale only and has no Lanczos resampler');
  },
};

export async function upscaleInBrowser(input: Raster, runner: InferenceRunner, entry: ModelEntry, options: WebUpscaleOptions = {}): Promise<UpscaleResult> {
  checkWebInput(input.width, input.height);
  return upscaleRaster(input, yieldingRunner(runner, options.signal), entry.scale, NO_RESAMPLER, {
    ...windowConventions(entry),
    scale: entry.scale,
    tile: options.tile ?? Math.min(entry.tile, WEB_TILE),
    overlap: options.overlap ?? entry.overlap,
    // A varying alpha goes through the model as grey, as in Node; a flat one is copied.
    alpha: 'model',
    signal: options.signal,
    onProgress: options.onProgress,
  });
}
