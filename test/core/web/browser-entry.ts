/**
 * The page the web-engine tests load: the real core/web, driven through one function on window.
 * Pixels cross playwright's JSON boundary as base64 (the test's channel only).
 */
import { UpbridgeError } from '../../../core/errors';
import type { Raster } from '../../../core/raster';
import { loadWebModel, openWebRunner, openWorkerRunner, OrtWasmFiles, upscaleInBrowser, WebProviderChoice } from '../../../core/web';

export interface BrowserUpscaleRequest {
  width: number;
  height: number;
  channels: Raster['channels'];
  pixels: string;
  tile?: number;
  overlap?: number;
  provider: WebProviderChoice;
  cdnBases: string[];
  files: OrtWasmFiles;
  /** Abort once this many tiles are done. */
  cancelAfter?: number;
  /** Open the session through openWorkerRunner with this worker script (as the Figma UI does). */
  workerSource?: string;
}

export type BrowserUpscaleResult =
  | { ok: true; provider: string; precision: string; threads: number; fallbackReason?: string; inWorker?: boolean; pixels: string; width: number; height: number; tiles: number; progress: string[]; modelOrigin: string; seconds: number; crossOriginIsolated: boolean }
  | { ok: false; code: string; message: string; progress: string[] };

const toBase64 = (bytes: Uint8Array) => {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};

async function upscale(request: BrowserUpscaleRequest): Promise<BrowserUpscaleResult> {
  const progress: string[] = [];
  const abort = new AbortController();
  try {
    const model = await loadWebModel('realesr-general-x4v3', { source: { kind: 'npm-cdn', bases: request.cdnBases } });
    const options = { model, files: request.files, provider: request.provider };
    const runner = request.workerSource === undefined ? await openWebRunner(options) : await openWorkerRunner(options, request.workerSource);
    const input: Raster = { width: request.width, height: request.height, channels: request.channels, depth: 8, data: Uint8Array.from(atob(request.pixels), (c) => c.charCodeAt(0)) };
    const started = performance.now();
    const result = await upscaleInBrowser(input, runner, model.entry, {
      tile: request.tile,
      overlap: request.overlap,
      signal: abort.signal,
      onProgress: (p) => {
        progress.push(`${p.done}/${p.total}`);
        if (request.cancelAfter !== undefined && p.done >= request.cancelAfter) abort.abort();
      },
    });
    const seconds = (performance.now() - started) / 1000;
    await runner.release();
    const { raster } = result;
    return {
      ok: true,
      provider: runner.provider,
      precision: runner.precision,
      threads: runner.threads,
      ...(runner.fallbackReason ? { fallbackReason: runner.fallbackReason } : {}),
      ...('inWorker' in runner ? { inWorker: runner.inWorker as boolean } : {}),
      pixels: toBase64(raster.data as Uint8Array),
      width: raster.width,
      height: raster.height,
      tiles: result.tiles,
      progress,
      modelOrigin: model.origin,
      seconds,
      crossOriginIsolated: self.crossOriginIsolated,
    };
  } catch (error) {
    return { ok: false, code: error instanceof UpbridgeError ? error.code : 'UNEXPECTED', message: error instanceof Error ? error.message : String(error), progress };
  }
}

(window as unknown as { upbridgeWeb: unknown }).upbridgeWeb = { upscale };
