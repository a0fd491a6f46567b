import * as ortWasm from 'onnxruntime-web/wasm';
import * as ortGpu from 'onnxruntime-web/webgpu';
import { UpbridgeError } from '../errors';
import { InferenceRunner, TileTensor } from '../session';
import { fetchVerified, PinnedFile } from './fetch-verified';
import { fp16Variant, WebModel } from './web-model';

/**
 * onnxruntime-web behind the pipeline's InferenceRunner. Two of its builds: the WebGPU one when
 * the browser hands out an adapter, else the WebAssembly one (SIMD, always; threads only on a
 * cross-origin isolated page, the only place browsers allow SharedArrayBuffer: Figma's plugin
 * iframe is not, so there it is one thread). Each build's .wasm is pinned by sha256 and fetched
 * and checked here, then handed to ORT as bytes, so ORT itself never fetches anything.
 */
export type WebProvider = 'webgpu' | 'wasm';
export type WebProviderChoice = 'auto' | WebProvider;

/** The pinned runtime files: ort-wasm-simd-threaded.wasm, .asyncify.wasm for the WebGPU build, and the glue for threads. */
export interface OrtWasmFiles {
  wasm: PinnedFile;
  webgpu: PinnedFile;
  /** ort-wasm-simd-threaded.mjs: without it, wasm runs on one thread even where threads are allowed. */
  wasmGlue?: PinnedFile;
}

export { ORT_WASM_FILE, ORT_WASM_GLUE_FILE, ORT_WEB_VERSION, ORT_WEBGPU_WASM_FILE } from './ort-files';

export interface OpenWebRunnerOptions {
  model: WebModel;
  files: OrtWasmFiles;
  provider?: WebProviderChoice;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Threads for wasm when the page is cross-origin isolated (default: the cores, at most 4). */
  maxThreads?: number;
}

export interface WebRunner extends InferenceRunner {
  readonly provider: WebProvider;
  readonly precision: 'fp32' | 'fp16';
  readonly threads: number;
  /** Why WebGPU did not run, when it was wanted (no adapter, or its session failed). */
  readonly fallbackReason?: string;
  release(): Promise<void>;
}

type OrtModule = typeof ortWasm;
type Session = Awaited<ReturnType<OrtModule['InferenceSession']['create']>>;

class OrtWebRunner implements WebRunner {
  constructor(
    private readonly ort: OrtModule,
    private readonly session: Session,
    readonly provider: WebProvider,
    readonly precision: 'fp32' | 'fp16',
    readonly threads: number,
    readonly fallbackReason?: string,
  ) {}

  async run(input: TileTensor): Promise<TileTensor> {
    const tensor = new this.ort.Tensor('float32', input.data, [1, input.channels, input.height, input.width]);
    const result = await this.session.run({ [this.session.inputNames[0]]: tensor });
    const output = result[this.session.outputNames[0]];
    const [, channels, height, width] = output.dims as number[];
    // Copied out: ORT may reuse the output's memory on the next run.
    const data = new Float32Array(output.data as Float32Array);
    output.dispose();
    return { data, channels, height, width };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** The WebGPU adapter, or why there is none. */
async function webGpuAdapter(): Promise<{ adapter?: { features: { has(name: string): boolean } }; reason?: string }> {
  const gpu = (globalThis.navigator as { gpu?: { requestAdapter(): Promise<{ features: { has(name: string): boolean } } | null> } } | undefined)?.gpu;
  if (!gpu) return { reason: 'this browser has no WebGPU (navigator.gpu is missing)' };
  try {
    const adapter = await gpu.requestAdapter();
    return adapter ? { adapter } : { reason: 'no WebGPU adapter' };
  } catch (e) {
    return { reason: `WebGPU adapter request failed: ${messageOf(e)}` };
  }
}

function wasmThreads(maxThreads = 4): number {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const cores = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency ?? 1;
  return isolated ? Math.max(1, Math.min(cores, maxThreads)) : 1;
}

/** A tile the size of the model's smallest useful window: proves the session runs before real work. */
async function proveRunner(runner: OrtWebRunner): Promise<void> {
  const side = 16;
  await runner.run({ data: new Float32Array(3 * side * side).fill(0.5), channels: 3, height: side, width: side });
}

/**
 * Opens a session on WebGPU when chosen (auto: when an adapter exists), with the fp16 graph if the
 * adapter has shader-f16; if WebGPU cannot open the model or fails on a first small tile, the
 * wasm build runs instead and `fallbackReason` says why.
 */
export async function openWebRunner(options: OpenWebRunnerOptions): Promise<WebRunner> {
  const choice = options.provider ?? 'auto';
  let fallbackReason: string | undefined;
  if (choice !== 'wasm') {
    const { adapter, reason } = await webGpuAdapter();
    if (adapter) {
      try {
        const binary = await fetchVerified(options.files.webgpu, options);
        const fp16 = adapter.features.has('shader-f16');
        ortGpu.env.wasm.wasmBinary = binary;
        ortGpu.env.wasm.numThreads = 1;
        ortGpu.env.logLevel = 'error';
        const session = await ortGpu.InferenceSession.create(fp16 ? fp16Variant(options.model) : options.model.onnx, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' });
        const runner = new OrtWebRunner(ortGpu as unknown as OrtModule, session as Session, 'webgpu', fp16 ? 'fp16' : 'fp32', 1);
        await proveRunner(runner);
        return runner;
      } catch (e) {
        if (e instanceof UpbridgeError) throw e;
        fallbackReason = `WebGPU could not run the model: ${messageOf(e)}`;
      }
    } else fallbackReason = reason;
    if (choice === 'webgpu') fallbackReason = `${fallbackReason}; using wasm`;
  }
  const glue = options.files.wasmGlue;
  const threads = glue ? wasmThreads(options.maxThreads) : 1;
  const binary = await fetchVerified(options.files.wasm, options);
  ortWasm.env.wasm.wasmBinary = binary;
  if (threads > 1 && glue) {
    // ORT starts its thread workers from the glue's URL; a blob URL of the verified bytes serves.
    const source = await fetchVerified(glue, options);
    ortWasm.env.wasm.wasmPaths = { mjs: URL.createObjectURL(new Blob([source as Uint8Array<ArrayBuffer>], { type: 'text/javascript' })) };
  }
  ortWasm.env.wasm.numThreads = threads;
  ortWasm.env.wasm.simd = true;
  ortWasm.env.logLevel = 'error';
  try {
    const session = await ortWasm.InferenceSession.create(options.model.onnx, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    return new OrtWebRunner(ortWasm, session, 'wasm', 'fp32', threads, fallbackReason);
  } catch (e) {
    throw new UpbridgeError('UPB_INFERENCE', `onnxruntime-web could not open ${options.model.entry.id} on wasm: ${messageOf(e)}`);
  }
}
