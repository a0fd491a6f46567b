/**
 * The worker side of WorkerRunner (worker-runner.ts): onnxruntime-web in a dedicated Worker, so a
 * tile's inference never holds the window's thread (a Figma plugin window stays responsive and
 * Cancel is taken at once). Bundled on its own by the build scripts and carried into the page's
 * bundle as text (UPBRIDGE_ORT_WORKER_SOURCE), started from a blob URL: Figma's plugin UI is one
 * inlined HTML file with no URL to load a worker script from.
 */
import { isUpbridgeError } from '../errors';
import type { TileTensor } from '../session';
import { openWebRunner, OpenWebRunnerOptions, WebRunner } from './ort-web-runner';

export type WorkerRequest =
  | { type: 'open'; options: Omit<OpenWebRunnerOptions, 'fetch' | 'signal'> }
  | { type: 'run'; id: number; input: TileTensor }
  | { type: 'release' };

export type WorkerReply =
  | { type: 'opened'; provider: WebRunner['provider']; precision: WebRunner['precision']; threads: number; fallbackReason?: string }
  | { type: 'result'; id: number; output: TileTensor }
  | { type: 'error'; id?: number; code: string; message: string };

declare const self: { onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null; postMessage(message: WorkerReply, transfer?: Transferable[]): void };

let runner: WebRunner | undefined;

const failure = (error: unknown, id?: number): WorkerReply => ({
  type: 'error',
  ...(id !== undefined ? { id } : {}),
  code: isUpbridgeError(error) ? error.code : 'UPB_INFERENCE',
  message: error instanceof Error ? error.message : String(error),
});

self.onmessage = (event) => {
  const request = event.data;
  void (async () => {
    if (request.type === 'open') {
      try {
        runner = await openWebRunner(request.options);
        self.postMessage({ type: 'opened', provider: runner.provider, precision: runner.precision, threads: runner.threads, ...(runner.fallbackReason ? { fallbackReason: runner.fallbackReason } : {}) });
      } catch (error) {
        self.postMessage(failure(error));
      }
    } else if (request.type === 'run') {
      try {
        if (!runner) throw new Error('the worker has no session');
        const output = await runner.run(request.input);
        self.postMessage({ type: 'result', id: request.id, output }, [output.data.buffer as ArrayBuffer]);
      } catch (error) {
        self.postMessage(failure(error, request.id));
      }
    } else if (request.type === 'release') {
      await runner?.release().catch(() => {});
      runner = undefined;
    }
  })();
};
