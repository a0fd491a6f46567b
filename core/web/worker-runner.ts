import { UpbridgeError, ErrorCode } from '../errors';
import type { TileTensor } from '../session';
import type { WorkerReply, WorkerRequest } from './ort-worker';
import { openWebRunner, OpenWebRunnerOptions, WebRunner } from './ort-web-runner';

/**
 * A WebRunner whose session lives in a dedicated Worker (core/web/ort-worker.ts), started from
 * the worker bundle's text as a blob URL. Tiles are copied in and their outputs transferred back.
 * Where a worker cannot be started (no Worker, a policy refusing blob: workers), the session runs
 * on this thread as before, yielding between tiles (web-upscale.ts), and `inWorker` says so.
 */
export interface WorkerWebRunner extends WebRunner {
  readonly inWorker: boolean;
}

export async function openWorkerRunner(options: Omit<OpenWebRunnerOptions, 'fetch'>, workerSource: string | undefined): Promise<WorkerWebRunner> {
  let worker: Worker | undefined;
  if (workerSource && typeof Worker !== 'undefined') {
    try {
      worker = new Worker(URL.createObjectURL(new Blob([workerSource], { type: 'text/javascript' })));
    } catch {
      worker = undefined;
    }
  }
  if (worker) {
    try {
      return await WorkerRunner.open(worker, options);
    } catch (e) {
      // A policy may refuse the blob: worker with an error event rather than an exception (the spec's way; Firefox, Safari).
      if (!(e instanceof WorkerStartError)) throw e;
    }
  }
  const runner = await openWebRunner(options);
  return Object.assign(runner, { inWorker: false });
}

/** The worker died before answering: it could not start, as opposed to an error it reported. */
class WorkerStartError extends Error {}

class WorkerRunner implements WorkerWebRunner {
  readonly inWorker = true;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(output: TileTensor): void; reject(error: Error): void }>();

  private constructor(
    private readonly worker: Worker,
    readonly provider: WebRunner['provider'],
    readonly precision: WebRunner['precision'],
    readonly threads: number,
    readonly fallbackReason: string | undefined,
  ) {
    worker.onmessage = (event: MessageEvent<WorkerReply>) => {
      const reply = event.data;
      if (reply.type === 'opened' || reply.id === undefined) return;
      const waiting = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (reply.type === 'result') waiting?.resolve(reply.output);
      else if (reply.type === 'error') waiting?.reject(new UpbridgeError(reply.code as ErrorCode, reply.message));
    };
    worker.onerror = (event) => this.failAll(new UpbridgeError('UPB_INFERENCE', `the inference worker failed: ${event.message || 'no reason given'}`));
  }

  static open(worker: Worker, options: Omit<OpenWebRunnerOptions, 'fetch'>): Promise<WorkerRunner> {
    const { signal, ...transferable } = options;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        worker.terminate();
        reject(new UpbridgeError('UPB_CANCELLED', 'upscale cancelled'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.onmessage = (event: MessageEvent<WorkerReply>) => {
        signal?.removeEventListener('abort', onAbort);
        const reply = event.data;
        if (reply.type === 'opened') resolve(new WorkerRunner(worker, reply.provider, reply.precision, reply.threads, reply.fallbackReason));
        else if (reply.type === 'error') {
          worker.terminate();
          reject(new UpbridgeError(reply.code as ErrorCode, reply.message));
        }
      };
      worker.onerror = (event) => {
        signal?.removeEventListener('abort', onAbort);
        worker.terminate();
        reject(new WorkerStartError(`the inference worker could not start: ${event.message || 'the page does not allow workers'}`));
      };
      worker.postMessage({ type: 'open', options: transferable } satisfies WorkerRequest);
    });
  }

  run(input: TileTensor): Promise<TileTensor> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'run', id, input } satisfies WorkerRequest);
    });
  }

  async release(): Promise<void> {
    this.worker.postMessage({ type: 'release' } satisfies WorkerRequest);
    this.failAll(new UpbridgeError('UPB_CANCELLED', 'the session was released'));
    this.worker.terminate();
  }

  private failAll(error: Error): void {
    for (const [, waiting] of this.waiting) waiting.reject(error);
    this.waiting.clear();
  }
}
