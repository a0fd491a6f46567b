import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { UpbridgeError } from '../errors';
import { InferenceRunner, isOutOfMemory, TileTensor } from '../session';
import { openWorkerSession } from './ort-worker-session';
import { parseProvider, processProviders, ProviderChoice, ProviderFailure, ProviderName, ProviderSelector, shortReason } from './providers';

/** What a runner needs from a session: onnxruntime-node's, or a test's stand-in. */
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>>;
  release(): Promise<void>;
}

/** One ORT session on exactly one provider (no fallback): what runners and `upbridge doctor` use. */
export async function openOrtSession(onnxPath: string, provider: ProviderName): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(onnxPath, {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    // ORT's default counts physical cores and, on 2-vCPU machines, ran single-threaded:
    // x4plus on 128×128 took 4.6 s by default and 2.6 s with both threads (measured).
    intraOpNumThreads: os.availableParallelism(),
  });
}

export async function runTile(session: OrtSessionLike, input: TileTensor): Promise<TileTensor> {
  const tensor = new ort.Tensor('float32', input.data, [1, input.channels, input.height, input.width]);
  const result = await session.run({ [session.inputNames[0]]: tensor });
  const output = result[session.outputNames[0]];
  const [, channels, height, width] = output.dims as number[];
  return { data: output.data as Float32Array, channels, height, width };
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export interface OrtRunnerOptions {
  /** `auto`: the fastest usable provider; a name: that one, else the CPU (default: `parseProvider(undefined)`, $UPBRIDGE_PROVIDER or auto). */
  provider?: ProviderChoice;
  /** Probes, failures and the fallback line (default: the process's, shared by every session). */
  selector?: ProviderSelector;
  /** How a session is opened on one provider (default: `openWorkerSession`, in a worker thread). A test seam. */
  openSession?: (onnxPath: string, provider: ProviderName) => Promise<OrtSessionLike>;
  /**
   * The model file GPU providers open instead (the fp16 variant), made only if a GPU provider is
   * tried; the CPU always opens `onnxPath` (its fp16 kernels cast back to fp32 anyway).
   */
  gpuModelPath?: () => Promise<string>;
}

/**
 * Runs tiles on the first provider that works, falling back down the list (to the CPU at the
 * end) when a session cannot be created, or when the first tile fails: a GPU provider can open a
 * session and still fail on its first run (an unsupported kernel, a lost device). After one
 * tile has succeeded, errors are the pipeline's to handle (an out-of-memory error makes it retry
 * with smaller tiles), and so is an out-of-memory error on the first tile.
 */
class FallbackRunner implements InferenceRunner {
  private proven = false;

  constructor(
    private session: OrtSessionLike,
    private current: ProviderName,
    private readonly rest: readonly ProviderName[],
    private readonly open: (provider: ProviderName) => Promise<OrtSessionLike>,
    private readonly selector: ProviderSelector,
  ) {}

  /** The provider that runs (after a fallback, the one fallen back to). */
  get provider(): string {
    return this.current;
  }

  get ortSession(): OrtSessionLike {
    return this.session;
  }

  async run(input: TileTensor): Promise<TileTensor> {
    if (this.proven || this.current === 'cpu') return runTile(this.session, input);
    try {
      const output = await runTile(this.session, input);
      this.proven = true;
      return output;
    } catch (e) {
      if (isOutOfMemory(e)) throw e;
      const failed: ProviderFailure & { when: string } = { name: this.current, reason: shortReason(messageOf(e)), when: 'failed on the first tile' };
      this.selector.markFailed(this.current, failed.reason);
      const previous = this.session;
      const next = await openFirst(this.rest, this.open, this.selector);
      this.session = next.session;
      this.current = next.provider;
      this.selector.reportFallback([failed, ...next.failures], next.provider);
      await previous.release().catch(() => undefined);
      return this.run(input);
    }
  }
}

async function openFirst(
  providers: readonly ProviderName[],
  open: (provider: ProviderName) => Promise<OrtSessionLike>,
  selector: ProviderSelector,
): Promise<{ session: OrtSessionLike; provider: ProviderName; rest: ProviderName[]; failures: ProviderFailure[] }> {
  const failures: ProviderFailure[] = [];
  for (let i = 0; i < providers.length; i++) {
    const provider = providers[i];
    try {
      return { session: await open(provider), provider, rest: providers.slice(i + 1), failures };
    } catch (e) {
      if (provider === 'cpu') throw new UpbridgeError('UPB_INFERENCE', `the cpu provider could not load the model (${messageOf(e)})`);
      failures.push({ name: provider, reason: shortReason(messageOf(e)) });
      selector.markFailed(provider, shortReason(messageOf(e)));
    }
  }
  throw new UpbridgeError('UPB_INFERENCE', `no execution provider could load the model (${failures.map((f) => `${f.name}: ${f.reason}`).join('; ')})`);
}

const sessions = new Map<string, Promise<FallbackRunner>>();

/**
 * One runner per model file and provider choice, created on first use. Its `provider` says what
 * actually runs; a provider that could not be used is named once, on one line (see
 * ProviderSelector), and the output is then the CPU's, byte for byte.
 */
export function ortRunner(onnxPath: string, options: OrtRunnerOptions = {}): Promise<InferenceRunner> {
  const choice = options.provider ?? parseProvider(undefined);
  // Seams make a private runner: a test's stand-in sessions never enter the process's cache.
  if (options.selector || options.openSession) return createRunner(onnxPath, choice, options.selector ?? processProviders, options.openSession ?? openWorkerSession, options.gpuModelPath);
  const key = `${onnxPath}|${choice}|${options.gpuModelPath ? 'gpu-variant' : 'same'}`;
  let pending = sessions.get(key);
  if (!pending) {
    pending = createRunner(onnxPath, choice, processProviders, openWorkerSession, options.gpuModelPath);
    sessions.set(key, pending);
    pending.catch(() => sessions.delete(key));
  }
  return pending;
}

async function createRunner(
  onnxPath: string,
  choice: ProviderChoice,
  selector: ProviderSelector,
  openSession: (onnxPath: string, provider: ProviderName) => Promise<OrtSessionLike>,
  gpuModelPath?: () => Promise<string>,
): Promise<FallbackRunner> {
  const { tries, unavailable } = await selector.candidates(choice);
  const open = async (provider: ProviderName) => openSession(provider !== 'cpu' && gpuModelPath ? await gpuModelPath() : onnxPath, provider);
  let first;
  try {
    first = await openFirst(tries, open, selector);
  } catch (e) {
    if (e instanceof UpbridgeError) throw new UpbridgeError(e.code, `${e.message.replace('the model', onnxPath)}`);
    throw e;
  }
  selector.reportFallback([...unavailable, ...first.failures], first.provider);
  return new FallbackRunner(first.session, first.provider, first.rest, open, selector);
}

/** Drops the cached sessions of a model file and frees their memory (arenas can reach GBs). */
export async function releaseOrtRunners(onnxPath: string): Promise<void> {
  for (const [key, pending] of [...sessions]) {
    if (!key.startsWith(`${onnxPath}|`)) continue;
    sessions.delete(key);
    await (await pending.catch(() => undefined))?.ortSession.release();
  }
}
