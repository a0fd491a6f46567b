import { Worker } from 'node:worker_threads';
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import type { OrtSessionLike } from './ort-session';
import type { ProviderName } from './providers';

/**
 * An ONNX Runtime session in a worker thread. onnxruntime-node's `run` computes on the calling
 * thread (its promise settles only after the whole inference, with the event loop blocked): in
 * the main thread, nothing else moves while a tile infers, neither the pipeline's reading and
 * blending of other tiles nor the bridge's HTTP answers. In a worker, the main thread reads the
 * next window and blends the last one while the current one infers (core/upscale.ts pipelines
 * its tiles for this), and the bridge answers health checks and cancels mid-tile.
 *
 * Inputs are copied to the worker (the caller may run the same tile again, after a provider
 * fallback); outputs are transferred back without a copy.
 */

// Plain JavaScript evaluated in the worker: nothing to bundle or resolve but onnxruntime-node itself.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ort);
let session;
const fail = (id, e) => parentPort.postMessage({ id, error: String(e && e.message ? e.message : e) });
parentPort.on('message', async (m) => {
  try {
    if (m.type === 'open') {
      session = await ort.InferenceSession.create(m.path, m.options);
      parentPort.postMessage({ id: m.id, inputNames: session.inputNames, outputNames: session.outputNames });
    } else if (m.type === 'run') {
      const feeds = {};
      for (const [name, t] of Object.entries(m.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      const result = await session.run(feeds);
      const out = {};
      const transfer = [];
      for (const [name, t] of Object.entries(result)) {
        out[name] = { type: t.type, data: t.data, dims: t.dims };
        transfer.push(t.data.buffer);
      }
      parentPort.postMessage({ id: m.id, result: out }, transfer);
    } else if (m.type === 'release') {
      if (session) await session.release();
      session = undefined;
      parentPort.postMessage({ id: m.id });
    }
  } catch (e) {
    fail(m.id, e);
  }
});`;

interface Pending {
  resolve(value: WorkerReply): void;
  reject(error: Error): void;
}

interface WorkerReply {
  id: number;
  error?: string;
  inputNames?: string[];
  outputNames?: string[];
  result?: Record<string, { type: ort.Tensor.Type; data: ort.Tensor.DataType; dims: number[] }>;
}

class WorkerSession implements OrtSessionLike {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private dead?: Error;
  inputNames: readonly string[] = [];
  outputNames: readonly string[] = [];

  constructor(private readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      this.idleIfDone();
      if (reply.error !== undefined) p.reject(new Error(reply.error));
      else p.resolve(reply);
    });
    const die = (error: Error) => {
      this.dead = error;
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    };
    worker.on('error', (e) => die(e instanceof Error ? e : new Error(String(e))));
    worker.on('exit', (code) => die(new Error(`the inference worker exited (code ${code})`)));
    // An idle worker must not keep a finished CLI process alive.
    worker.unref();
  }

  private idleIfDone(): void {
    if (this.pending.size === 0) this.worker.unref();
  }

  request(message: Record<string, unknown>): Promise<WorkerReply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    this.worker.ref();
    return new Promise<WorkerReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    const plain: Record<string, { type: ort.Tensor.Type; data: ort.Tensor.DataType; dims: readonly number[] }> = {};
    for (const [name, t] of Object.entries(feeds)) plain[name] = { type: t.type, data: t.data, dims: t.dims };
    const reply = await this.request({ type: 'run', feeds: plain });
    const out: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(reply.result ?? {})) out[name] = new ort.Tensor(t.type, t.data as Float32Array, t.dims);
    return out;
  }

  async release(): Promise<void> {
    try {
      if (!this.dead) await this.request({ type: 'release' });
    } finally {
      await this.worker.terminate();
    }
  }
}

/** Opens a session on one provider in a worker thread of its own (options as openOrtSession's). */
export async function openWorkerSession(onnxPath: string, provider: ProviderName): Promise<OrtSessionLike> {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ort: require.resolve('onnxruntime-node') } });
  const session = new WorkerSession(worker);
  try {
    const opened = await session.request({
      type: 'open',
      path: onnxPath,
      // As openOrtSession: ORT's default thread count ran single-threaded on 2-vCPU machines.
      options: { executionProviders: [provider], graphOptimizationLevel: 'all', intraOpNumThreads: os.availableParallelism() },
    });
    session.inputNames = opened.inputNames ?? [];
    session.outputNames = opened.outputNames ?? [];
    return session;
  } catch (e) {
    await worker.terminate();
    throw e;
  }
}
