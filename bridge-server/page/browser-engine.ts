/**
 * The page's "in this browser" engine: core/web on onnxruntime-web, fed by the bridge itself (the
 * web model's converted graph and ORT's .wasm from /web/…, see bridge-server/routes/web-engine.ts),
 * each checked against a hash pinned in this bundle: the graph against the catalogue's onnxSha256,
 * the .wasm against the sha256 taken from node_modules when the page was built. One session for
 * the page's life, so a second run pays only for inference.
 */
import type { Raster } from '../../core/raster';
import { loadWebModel, openWorkerRunner, ORT_WASM_FILE, ORT_WASM_GLUE_FILE, ORT_WEBGPU_WASM_FILE, upscaleInBrowser, WEB_DEFAULT_MODEL, WebModel, WorkerWebRunner } from '../../core/web';

/** Put in by scripts/build.mjs: onnxruntime-web's version and the sha256 of its two .wasm builds. */
declare const UPBRIDGE_ORT_PINS: { version: string; wasm: string; webgpu: string; glue: string } | undefined;

/** Put in by scripts/build.mjs: core/web/ort-worker.ts bundled, so inference runs off the page's thread. */
declare const UPBRIDGE_ORT_WORKER_SOURCE: string | undefined;

let opened: Promise<{ model: WebModel; runner: WorkerWebRunner }> | undefined;

function open(onStep: (text: string) => void): Promise<{ model: WebModel; runner: WorkerWebRunner }> {
  opened ??= (async () => {
    if (typeof UPBRIDGE_ORT_PINS === 'undefined' || !UPBRIDGE_ORT_PINS) throw new Error('this page was built without the runtime pins; run npm run build');
    const pins = UPBRIDGE_ORT_PINS;
    onStep('Loading the model into this browser…');
    const model = await loadWebModel(WEB_DEFAULT_MODEL, { source: { kind: 'onnx-url', url: `/web/models/${WEB_DEFAULT_MODEL}.onnx` } });
    onStep('Starting onnxruntime-web…');
    // Absolute: a worker started from a blob URL resolves nothing relative to this page.
    const file = (name: string, sha256: string) => ({ name, sha256, urls: [new URL(`/web/ort/${name}`, location.href).href] });
    const runner = await openWorkerRunner({ model, files: { wasm: file(ORT_WASM_FILE, pins.wasm), webgpu: file(ORT_WEBGPU_WASM_FILE, pins.webgpu), wasmGlue: file(ORT_WASM_GLUE_FILE, pins.glue) } }, typeof UPBRIDGE_ORT_WORKER_SOURCE !== 'undefined' ? UPBRIDGE_ORT_WORKER_SOURCE : undefined);
    return { model, runner };
  })();
  opened.catch(() => (opened = undefined));
  return opened;
}

export interface BrowserRun {
  raster: Raster;
  model: string;
  /** "wasm, 1 thread" or "webgpu (fp16)". */
  engine: string;
  tiles: number;
}

export async function upscaleHere(input: Raster, options: { tile?: number; overlap?: number; signal: AbortSignal; onStep(text: string): void; onProgress(done: number, total: number): void }): Promise<BrowserRun> {
  const { model, runner } = await open(options.onStep);
  const result = await upscaleInBrowser(input, runner, model.entry, { tile: options.tile, overlap: options.overlap, signal: options.signal, onProgress: (p) => options.onProgress(p.done, p.total) });
  const engine = `${runner.provider === 'wasm' ? `wasm, ${runner.threads} thread${runner.threads === 1 ? '' : 's'}` : `webgpu (${runner.precision})`}${runner.inWorker ? '' : ', on the page thread'}`;
  return { raster: result.raster, model: model.entry.id, engine: runner.fallbackReason ? `${engine}; ${runner.fallbackReason}` : engine, tiles: result.tiles };
}
