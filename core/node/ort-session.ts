import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { UpbridgeError } from '../errors';
import { InferenceRunner, TileTensor } from '../session';

/**
 * Providers to try, in order. Only cpu today; the list is where webgpu/cuda/dml/coreml go once
 * they are measured (speed issue).
 */
export const DEFAULT_PROVIDERS = ['cpu'] as const;

class OrtRunner implements InferenceRunner {
  constructor(
    readonly session: ort.InferenceSession,
    readonly provider: string,
  ) {}

  async run(input: TileTensor): Promise<TileTensor> {
    const tensor = new ort.Tensor('float32', input.data, [1, input.channels, input.height, input.width]);
    const result = await this.session.run({ [this.session.inputNames[0]]: tensor });
    const output = result[this.session.outputNames[0]];
    const [, channels, height, width] = output.dims as number[];
    return { data: output.data as Float32Array, channels, height, width };
  }
}

const sessions = new Map<string, Promise<OrtRunner>>();

/** One session per model file and provider list, created on first use. */
export function ortRunner(onnxPath: string, providers: readonly string[] = DEFAULT_PROVIDERS): Promise<InferenceRunner> {
  const key = `${onnxPath}|${providers.join(',')}`;
  let pending = sessions.get(key);
  if (!pending) {
    pending = createRunner(onnxPath, providers);
    sessions.set(key, pending);
    pending.catch(() => sessions.delete(key));
  }
  return pending;
}

async function createRunner(onnxPath: string, providers: readonly string[]): Promise<OrtRunner> {
  const failures: string[] = [];
  for (const provider of providers) {
    try {
      const session = await ort.InferenceSession.create(onnxPath, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        // ORT's default counts physical cores and, on 2-vCPU machines, ran single-threaded:
        // x4plus on 128×128 took 4.6 s by default and 2.6 s with both threads (measured).
        intraOpNumThreads: os.availableParallelism(),
      });
      return new OrtRunner(session, provider);
    } catch (e) {
      failures.push(`${provider}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  throw new UpbridgeError('UPB_INFERENCE', `no execution provider could load ${onnxPath} (${failures.join('; ')})`);
}

/** Drops the cached sessions of a model file and frees their memory (arenas can reach GBs). */
export async function releaseOrtRunners(onnxPath: string): Promise<void> {
  for (const [key, pending] of [...sessions]) {
    if (!key.startsWith(`${onnxPath}|`)) continue;
    sessions.delete(key);
    await (await pending.catch(() => undefined))?.session.release();
  }
}
