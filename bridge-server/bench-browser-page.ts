/**
 * The browser half of `upbridge bench`'s browser section: core/web's engine on one image, timed
 * in the page. Bundled by scripts/build.mjs into dist/bench-web/bench.js; bench-browser.ts serves
 * it with the model and ORT's .wasm, both checked against their pinned hashes as in the products.
 */
import type { Raster } from '../core/raster';
import { loadWebModel, openWebRunner, OrtWasmFiles, upscaleInBrowser, WEB_DEFAULT_MODEL, WebProviderChoice } from '../core/web';

export interface BrowserBenchRequest {
  width: number;
  height: number;
  pixels: string;
  tile: number;
  overlap: number;
  provider: WebProviderChoice;
  modelUrl: string;
  files: OrtWasmFiles;
}

async function run(request: BrowserBenchRequest) {
  const t0 = performance.now();
  const model = await loadWebModel(WEB_DEFAULT_MODEL, { source: { kind: 'onnx-url', url: request.modelUrl } });
  const runner = await openWebRunner({ model, files: request.files, provider: request.provider });
  const setupSeconds = (performance.now() - t0) / 1000;
  const tiling = { tile: request.tile, overlap: request.overlap };
  const input: Raster = { width: request.width, height: request.height, channels: 3, depth: 8, data: Uint8Array.from(atob(request.pixels), (c) => c.charCodeAt(0)) };
  // The first run compiles kernels for each window shape; the second is the steady rate.
  const first = performance.now();
  await upscaleInBrowser(input, runner, model.entry, tiling);
  const firstSeconds = (performance.now() - first) / 1000;
  const start = performance.now();
  const result = await upscaleInBrowser(input, runner, model.entry, tiling);
  const seconds = (performance.now() - start) / 1000;
  await runner.release();
  let text = '';
  const bytes = result.raster.data as Uint8Array;
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return {
    provider: runner.provider,
    precision: runner.precision,
    threads: runner.threads,
    fallbackReason: runner.fallbackReason,
    crossOriginIsolated: self.crossOriginIsolated,
    setupSeconds,
    firstRunSeconds: firstSeconds,
    seconds,
    tiles: result.tiles,
    output: { width: result.raster.width, height: result.raster.height },
    pixels: btoa(text),
  };
}

export type BrowserBenchRun = Awaited<ReturnType<typeof run>>;

(window as unknown as { upbridgeBench: unknown }).upbridgeBench = { run };
