import { runNodeScript } from './node-script';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { UpbridgeError } from '../errors';

/**
 * Which ONNX Runtime execution provider runs the models: the fastest one this machine can
 * actually use, tried in this order, with the CPU always last.
 *
 * - cuda: Linux x64 with NVIDIA, only once onnxruntime-node's CUDA files are installed (they
 *   are not in the npm package; this project's .npmrc skips their download);
 * - dml: DirectML, Windows (bundled);
 * - coreml: macOS (bundled);
 * - webgpu: bundled on Windows, macOS and Linux x64 (Vulkan on Linux);
 * - cpu.
 */
export const PROVIDER_ORDER = ['cuda', 'dml', 'coreml', 'webgpu', 'cpu'] as const;
export type ProviderName = (typeof PROVIDER_ORDER)[number];
/** What `--provider` takes: `auto` (the order above) or one name forced. */
export const PROVIDER_CHOICES = ['auto', ...PROVIDER_ORDER] as const;
export type ProviderChoice = (typeof PROVIDER_CHOICES)[number];

/**
 * `--provider`, the server's option, or else `$UPBRIDGE_PROVIDER` (so a machine known to have no
 * GPU can skip the probe for good: `UPBRIDGE_PROVIDER=cpu`), or else `auto`.
 */
export function parseProvider(value: string | undefined, env: NodeJS.ProcessEnv = process.env): ProviderChoice {
  const fromEnv = value === undefined || value === '';
  const given = fromEnv ? env.UPBRIDGE_PROVIDER : value;
  if (given === undefined || given === '') return 'auto';
  const name = given.trim().toLowerCase();
  if ((PROVIDER_CHOICES as readonly string[]).includes(name)) return name as ProviderChoice;
  throw new UpbridgeError('UPB_INVALID_OPTION', `${fromEnv ? 'UPBRIDGE_PROVIDER' : 'provider'} must be one of ${PROVIDER_CHOICES.join(', ')}, got "${given}"`);
}

/** What the installed onnxruntime-node offers for one provider here, before anything is run. */
export interface ProviderStatus {
  name: ProviderName;
  /** In the npm package for this platform (cuda never is: its files are a separate download). */
  bundled: boolean;
  /** Its files are present: a session can be tried. */
  installed: boolean;
  /** Why it cannot be tried, when it cannot (one clause, for the fallback line). */
  reason?: string;
  /** The longer story (which files are missing, where). */
  detail?: string;
}

/** Where onnxruntime-node keeps its native files for this platform. */
export function ortBinaryDir(): string {
  return path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
}

const CUDA_FILES = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];
const PLATFORM_OF: Partial<Record<ProviderName, NodeJS.Platform>> = { cuda: 'linux', dml: 'win32', coreml: 'darwin' };
const PLATFORM_NAMES: Partial<Record<NodeJS.Platform, string>> = { linux: 'Linux', win32: 'Windows', darwin: 'macOS' };

/** Static detection: which providers onnxruntime-node reports and whose files are on disk. Cheap (no session). */
export function detectProviders(): ProviderStatus[] {
  const backends = new Map(ort.listSupportedBackends().map((b) => [b.name, b.bundled]));
  return PROVIDER_ORDER.map((name): ProviderStatus => {
    if (name === 'cpu') return { name, bundled: true, installed: true };
    const platform = PLATFORM_OF[name];
    if (!backends.has(name)) {
      const reason = platform ? `${PLATFORM_NAMES[platform]} only` : `not in onnxruntime-node's build for ${process.platform}-${process.arch}`;
      return { name, bundled: false, installed: false, reason, detail: `onnxruntime-node ${ort.env.versions.node} has no ${name} provider for ${process.platform}-${process.arch}` };
    }
    if (name === 'cuda') {
      // listSupportedBackends() names cuda on Linux x64 whether or not its files were downloaded.
      const dir = ortBinaryDir();
      const missing = CUDA_FILES.filter((f) => !existsSync(path.join(dir, f)));
      if (missing.length > 0) {
        return { name, bundled: false, installed: false, reason: "onnxruntime-node's CUDA files are not installed", detail: `${missing.join(', ')} missing in ${dir}` };
      }
      return { name, bundled: false, installed: true };
    }
    return { name, bundled: backends.get(name) === true, installed: true };
  });
}

/**
 * The GPU device files a Linux GPU provider would open: a DRM render node (AMD, Intel, NVIDIA's
 * nvidia-drm), NVIDIA's own nodes, WSL2's /dev/dxg. None: no GPU is reachable (a VM, a container
 * without one passed through), so probing would only cost time. Elsewhere: not checked (null).
 */
export function gpuDeviceFiles(platform: NodeJS.Platform = process.platform): string[] | null {
  if (platform !== 'linux') return null;
  const list = (dir: string, pattern: RegExp) => {
    try {
      return readdirSync(dir).filter((f) => pattern.test(f)).map((f) => path.join(dir, f));
    } catch {
      return [];
    }
  };
  return [...list('/dev/dri', /^renderD\d+$/), ...list('/dev', /^(nvidia\d+|dxg)$/)];
}

export const NO_GPU_DEVICE = 'no GPU device: no /dev/dri/renderD*, /dev/nvidia* or /dev/dxg';

export interface ProbeResult {
  ok: boolean;
  /** The runtime's reason, shortened to its last clause ("No supported adapters"). */
  reason?: string;
  /** The runtime's whole message. */
  detail?: string;
}

/** "…webgpu_context.cc:136 … was false. Failed to get a WebGPU adapter: No supported adapters" → "No supported adapters". */
export function shortReason(message: string): string {
  const line = message.trim().split('\n').filter((l) => l.trim() !== '').pop() ?? message;
  const lastClause = line.slice(line.lastIndexOf(': ') + 2).trim();
  return line.includes(': ') && lastClause.length >= 8 ? lastClause : line.trim();
}

/** x + x on a 1×1×2×2 float tensor: the smallest graph that makes a provider start its device. */
export function probeModelBytes(): Uint8Array {
  const info = (name: string) => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [1, 1, 2, 2].map((d) => ({ dimValue: d })) } } },
  });
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'upbridge-probe',
    graph: { name: 'probe', node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'] }], input: [info('x')], output: [info('y')] },
  }).finish();
}

/**
 * Opens and runs the probe graph on each provider in a child process. A child, because a
 * provider that has no device writes its own native diagnostics straight to the process's stderr
 * (Dawn prints Vulkan warnings and "XDG_RUNTIME_DIR is invalid" on a machine without a GPU) and a
 * broken driver can crash the process: both stay in the child, and only the verdict comes back.
 * Costs about 0.6 s on a 2-CPU machine without a GPU (node start, ORT load, adapter request).
 */
export async function probeProviders(names: readonly ProviderName[], timeoutMs = 60_000): Promise<Map<ProviderName, ProbeResult>> {
  const results = new Map<ProviderName, ProbeResult>();
  if (names.length === 0) return results;
  const script = `
const ort = require(process.argv[1]);
(async () => {
  const model = Buffer.from(process.argv[2], 'base64');
  const out = {};
  for (const name of JSON.parse(process.argv[3])) {
    try {
      const session = await ort.InferenceSession.create(model, { executionProviders: [name] });
      const result = await session.run({ x: new ort.Tensor('float32', new Float32Array([0.5, 1, 1.5, 2]), [1, 1, 2, 2]) });
      const y = Array.from(result.y.data);
      out[name] = y.join() === '1,2,3,4' ? { ok: true } : { ok: false, error: 'wrong result ' + y.join() };
      await session.release();
    } catch (e) {
      out[name] = { ok: false, error: String(e && e.message ? e.message : e) };
    }
  }
  process.stdout.write('\\n' + JSON.stringify(out) + '\\n');
})();`;
  const args = [require.resolve('onnxruntime-node'), Buffer.from(probeModelBytes()).toString('base64'), JSON.stringify(names)];
  const { stdout, stderr, code, signal } = await runNodeScript(script, args, timeoutMs);
  let verdicts: Record<string, { ok: boolean; error?: string }> = {};
  try {
    verdicts = JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
  } catch {
    // the child died before answering: handled below, per provider
  }
  for (const name of names) {
    const v = verdicts[name];
    if (v?.ok) results.set(name, { ok: true });
    else if (v) results.set(name, { ok: false, reason: shortReason(v.error ?? 'failed'), detail: v.error });
    else {
      const how = signal === 'SIGKILL' ? `no answer within ${timeoutMs / 1000} s` : signal ? `the probe crashed (${signal})` : `the probe exited with code ${code}`;
      const lastLine = stderr.trim().split('\n').pop();
      results.set(name, { ok: false, reason: how, detail: lastLine ? `${how}: ${lastLine}` : how });
    }
  }
  return results;
}

/** A provider that cannot be used, and why (one clause). */
export interface ProviderFailure {
  name: ProviderName;
  reason: string;
}

export interface ProviderSelectorOptions {
  /** Where the fallback line goes (default: stderr). */
  log?: (line: string) => void;
  /** How providers are probed (default: `probeProviders`, in a child process). A test seam. */
  probe?: (names: readonly ProviderName[]) => Promise<Map<ProviderName, ProbeResult>>;
  /** Static detection (default: `detectProviders`). A test seam. */
  detect?: () => ProviderStatus[];
  /** GPU device files, null where not checked (default: `gpuDeviceFiles`). A test seam. */
  gpuDevices?: () => string[] | null;
}

/**
 * Decides which providers to try and remembers, for the life of the process, what failed: each
 * provider is probed at most once, a failure is logged once, and later sessions skip it silently.
 */
export class ProviderSelector {
  private readonly log: (line: string) => void;
  private readonly probe: NonNullable<ProviderSelectorOptions['probe']>;
  private readonly detect: NonNullable<ProviderSelectorOptions['detect']>;
  private readonly gpuDevices: NonNullable<ProviderSelectorOptions['gpuDevices']>;
  private statuses?: ProviderStatus[];
  private readonly probes = new Map<ProviderName, Promise<ProbeResult>>();
  /** Providers that failed, with the reason: probe, session creation or first tile. */
  private readonly failed = new Map<ProviderName, string>();
  private readonly logged = new Set<ProviderName>();

  constructor(options: ProviderSelectorOptions = {}) {
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.probe = options.probe ?? ((names) => probeProviders(names));
    this.detect = options.detect ?? detectProviders;
    this.gpuDevices = options.gpuDevices ?? (() => gpuDeviceFiles());
  }

  status(): ProviderStatus[] {
    return (this.statuses ??= this.detect());
  }

  private probeOnce(names: readonly ProviderName[]): Promise<ProbeResult[]> {
    const todo = names.filter((n) => !this.probes.has(n));
    if (todo.length > 0) {
      const batch = this.probe(todo).catch((e) => new Map(todo.map((n) => [n, { ok: false, reason: String(e instanceof Error ? e.message : e) }])));
      for (const n of todo) this.probes.set(n, batch.then((m) => m.get(n) ?? { ok: false, reason: 'not probed' }));
    }
    return Promise.all(names.map((n) => this.probes.get(n)!));
  }

  /**
   * The providers to try, in order, ending with cpu; and those skipped with a reason worth a
   * line. `auto` skips providers that are not installed without a word (the usual case); a forced
   * provider that is not installed is reported.
   */
  async candidates(choice: ProviderChoice): Promise<{ tries: ProviderName[]; unavailable: ProviderFailure[] }> {
    if (choice === 'cpu') return { tries: ['cpu'], unavailable: [] };
    const statuses = this.status();
    const unavailable: ProviderFailure[] = [];
    const wanted = statuses.filter((s) => s.name !== 'cpu' && (choice === 'auto' || s.name === choice));
    if (choice !== 'auto' && !wanted[0]?.installed) unavailable.push({ name: choice, reason: wanted[0]?.reason ?? 'not installed' });
    // Failed before (a probe, a session, a first tile): skipped, and reported unless it already was.
    for (const s of wanted) if (s.installed && this.failed.has(s.name)) unavailable.push({ name: s.name, reason: this.failed.get(s.name)! });
    let installed = wanted.filter((s) => s.installed && !this.failed.has(s.name)).map((s) => s.name);
    // auto on a Linux machine without a GPU device: nothing to probe (the probe costs ~0.6 s).
    // A provider named on purpose is still tried, and `upbridge doctor` probes everything.
    if (choice === 'auto' && installed.length > 0 && this.gpuDevices()?.length === 0) {
      unavailable.push(...installed.map((name) => ({ name, reason: NO_GPU_DEVICE })));
      installed = [];
    }
    const verdicts = await this.probeOnce(installed);
    const tries: ProviderName[] = [];
    installed.forEach((name, i) => {
      if (verdicts[i].ok) tries.push(name);
      else {
        this.failed.set(name, verdicts[i].reason ?? 'failed');
        unavailable.push({ name, reason: verdicts[i].reason ?? 'failed' });
      }
    });
    return { tries: [...tries, 'cpu'], unavailable };
  }

  /** A provider failed where it was used (session creation, first tile): later sessions skip it. */
  markFailed(name: ProviderName, reason: string): void {
    if (name !== 'cpu') this.failed.set(name, reason);
  }

  /** One line for the providers that could not be used, once per provider per process. */
  reportFallback(failures: readonly (ProviderFailure & { when?: string })[], using: ProviderName): void {
    const fresh = failures.filter((f) => f.name !== using && !this.logged.has(f.name));
    if (fresh.length === 0) return;
    for (const f of fresh) this.logged.add(f.name);
    this.log(`upbridge: ${fresh.map((f) => `${f.name} ${f.when ?? 'unavailable'} (${f.reason})`).join(', ')}; using ${using}`);
  }
}

/** The process's selector: every session of this process shares its probes and its failures. */
export const processProviders = new ProviderSelector();
