import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { catalogue, findModel } from '../core/catalogue';
import { ModelStore } from '../core/node/model-store';
import { openOrtSession, runTile } from '../core/node/ort-session';
import { detectProviders, gpuDeviceFiles, ortBinaryDir, probeProviders, ProbeResult, ProviderName, ProviderStatus, shortReason } from '../core/node/providers';
import { VERSION } from './routes/info';

/** A smoke run: the model on one provider, a small input, timed after one warm-up run. */
export interface SmokeRun {
  ok: boolean;
  input: string;
  output?: string;
  /** Best of the timed runs, session creation and the warm-up run excluded. */
  seconds?: number;
  outputMegapixelsPerSecond?: number;
  error?: string;
}

export interface DoctorProvider extends ProviderStatus {
  /** Installed, and a session on it opened and ran (the probe, in a child process). */
  available: boolean;
  /** The runtime's whole message when the probe failed. */
  detail?: string;
  smoke?: SmokeRun;
}

export interface DoctorReport {
  upbridge: string;
  platform: NodeJS.Platform;
  arch: string;
  cpus: number;
  node: string;
  onnxruntime: string;
  ortBinaries: string;
  /** Linux: GPU device files found (/dev/dri/renderD*, /dev/nvidia*, /dev/dxg); null elsewhere. */
  gpuDevices: string[] | null;
  model: string;
  providers: DoctorProvider[];
  /** What `--provider auto` uses here: the first available provider whose smoke run passed. */
  defaultProvider: ProviderName;
  gpuUsed: boolean;
  /** What to install for the GPU to be used, when it is not. */
  advice: string[];
}

export interface DoctorOptions {
  /** Input side in pixels for the smoke runs (default 64). */
  size?: number;
  /** Timed runs per provider (default 2; the best counts). */
  runs?: number;
  store?: ModelStore;
  /** Test seam: how providers are probed (default: a child process per `probeProviders`). */
  probe?: (names: readonly ProviderName[]) => Promise<Map<ProviderName, ProbeResult>>;
}

/** A smooth, deterministic CHW test card: the numbers are what counts, not the picture. */
function testCard(size: number): Float32Array {
  const data = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) data[(c * size + y) * size + x] = 0.1 + 0.8 * (((x + 2 * y + 17 * c) % size) / size);
  return data;
}

async function smokeRun(onnxPath: string, provider: ProviderName, scale: number, size: number, runs: number): Promise<SmokeRun> {
  const input = `${size}x${size}`;
  let session: ort.InferenceSession | undefined;
  try {
    session = await openOrtSession(onnxPath, provider);
    const tile = { data: testCard(size), channels: 3, height: size, width: size };
    await runTile(session, tile);
    let best = Infinity;
    let out = await runTile(session, tile);
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      out = await runTile(session, tile);
      best = Math.min(best, (performance.now() - started) / 1000);
    }
    if (out.width !== size * scale || out.height !== size * scale) throw new Error(`output is ${out.width}x${out.height}, expected ${size * scale}x${size * scale}`);
    if (!out.data.every(Number.isFinite)) throw new Error('output has NaN or infinite values');
    return {
      ok: true,
      input,
      output: `${out.width}x${out.height}`,
      seconds: Number(best.toFixed(4)),
      outputMegapixelsPerSecond: Number(((out.width * out.height) / 1e6 / best).toFixed(3)),
    };
  } catch (e) {
    return { ok: false, input, error: shortReason(e instanceof Error ? e.message : String(e)) };
  } finally {
    await session?.release().catch(() => undefined);
  }
}

/** What to install so that a GPU provider runs here; empty when one already does. */
export function installAdvice(providers: readonly DoctorProvider[], platform: NodeJS.Platform = process.platform, arch: string = process.arch): string[] {
  const byName = new Map(providers.map((p) => [p.name, p]));
  const failed = (name: ProviderName) => {
    const p = byName.get(name);
    return p?.installed && !(p.available && p.smoke?.ok) ? ` (here: ${p.smoke?.error ?? p.reason ?? 'failed'})` : '';
  };
  const advice: string[] = [];
  if (platform === 'linux' && arch === 'x64') {
    if (byName.get('cuda')?.installed) {
      advice.push(
        `NVIDIA: onnxruntime-node's CUDA files are installed but cuda did not run${failed('cuda')}: it needs the NVIDIA driver, CUDA 12 and cuDNN 9 libraries where the loader finds them (ldconfig or LD_LIBRARY_PATH); \`nvidia-smi\` must list the GPU.`,
      );
    } else {
      advice.push(
        "NVIDIA: install the NVIDIA driver, CUDA 12 and cuDNN 9, then onnxruntime-node's CUDA files (downloaded from NuGet, Microsoft.ML.OnnxRuntime.Gpu.Linux): `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` (this project's .npmrc sets onnxruntime-node-install=skip; the environment variable overrides it).",
      );
    }
    advice.push(
      `Any GPU (AMD, Intel, NVIDIA) through WebGPU${failed('webgpu')}: install the Vulkan loader (libvulkan1) and the GPU's Vulkan driver (Mesa's mesa-vulkan-drivers for AMD and Intel; NVIDIA's driver brings its own); \`vulkaninfo --summary\` must list the GPU. ONNX Runtime's WebGPU provider is experimental.`,
    );
  } else if (platform === 'linux') {
    advice.push(`onnxruntime-node's prebuilt binaries have no GPU provider for Linux ${arch}: a GPU needs onnxruntime built from source (onnxruntime.ai/docs/build/inferencing.html, the Node.js binding).`);
  } else if (platform === 'win32') {
    advice.push(`DirectML${failed('dml')}: needs a DirectX 12 GPU and a current graphics driver (Windows 10 1903 or newer); DirectML.dll comes with onnxruntime-node.`);
    advice.push(`WebGPU${failed('webgpu')}: runs on Direct3D 12; update the graphics driver.`);
  } else if (platform === 'darwin') {
    advice.push(`CoreML${failed('coreml')}: part of macOS; update macOS if it fails.`);
    advice.push(`WebGPU${failed('webgpu')}: runs on Metal; needs a Metal GPU (every Mac since 2012).`);
  } else {
    advice.push(`onnxruntime-node has no GPU provider for ${platform}-${arch}.`);
  }
  return advice;
}

/** Platform, versions, providers bundled and available, a smoke run per available provider. */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const size = options.size ?? 64;
  const runs = options.runs ?? 2;
  const modelId = catalogue.defaultModel;
  const model = findModel(modelId);
  const statuses = detectProviders();
  const toProbe = statuses.filter((s) => s.installed && s.name !== 'cpu').map((s) => s.name);
  const verdicts = await (options.probe ?? probeProviders)(toProbe);
  const { onnxPath } = await (options.store ?? new ModelStore()).ensureOne(modelId);
  const providers: DoctorProvider[] = [];
  for (const s of statuses) {
    const verdict: ProbeResult | undefined = s.name === 'cpu' ? { ok: true } : verdicts.get(s.name);
    const available = s.installed && verdict?.ok === true;
    const entry: DoctorProvider = { ...s, available };
    if (s.installed && verdict && !verdict.ok) Object.assign(entry, { reason: verdict.reason, detail: verdict.detail });
    // Sequential on purpose: two providers timed at once would share the CPU and the numbers.
    if (available) entry.smoke = await smokeRun(onnxPath, s.name, model.scale, size, runs);
    providers.push(entry);
  }
  const defaultProvider = providers.find((p) => p.available && p.smoke?.ok)?.name ?? 'cpu';
  const gpuUsed = defaultProvider !== 'cpu';
  return {
    upbridge: VERSION,
    platform: process.platform,
    arch: process.arch,
    cpus: os.availableParallelism(),
    node: process.version,
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    ortBinaries: ortBinaryDir(),
    gpuDevices: gpuDeviceFiles(),
    model: modelId,
    providers,
    defaultProvider,
    gpuUsed,
    advice: gpuUsed ? [] : installAdvice(providers),
  };
}

/** The report for a person: one line per fact, one per provider. */
export function formatDoctor(r: DoctorReport): string {
  const lines = [
    `upbridge ${r.upbridge} on ${r.platform}-${r.arch}, ${r.cpus} CPUs`,
    `Node ${r.node}, onnxruntime-node ${r.onnxruntime} (${r.ortBinaries})`,
    '',
    `providers (smoke run: ${r.model}, ${r.providers.find((p) => p.smoke)?.smoke?.input ?? '?'} input):`,
  ];
  const width = Math.max(...r.providers.map((p) => p.name.length));
  for (const p of r.providers) {
    const origin = p.name === 'cpu' ? 'built in' : p.bundled ? 'bundled' : p.installed ? 'installed' : p.name === 'cuda' && r.platform === 'linux' ? 'not installed' : 'not here';
    let state: string;
    if (!p.installed) state = p.reason ?? 'not installed';
    else if (!p.available) state = `unavailable: ${p.reason ?? 'failed'}`;
    else if (p.smoke?.ok) state = `ok, ${p.smoke.outputMegapixelsPerSecond} MP/s output (${p.smoke.input} → ${p.smoke.output} in ${p.smoke.seconds} s)`;
    else state = `opens, but the smoke run failed: ${p.smoke?.error}`;
    lines.push(`  ${p.name.padEnd(width)}  ${origin.padEnd(13)}  ${state}`);
  }
  if (r.gpuDevices) lines.push('', `GPU device files: ${r.gpuDevices.length > 0 ? r.gpuDevices.join(', ') : 'none (no /dev/dri/renderD*, /dev/nvidia* or /dev/dxg): auto does not probe the GPU providers'}`);
  lines.push('', `upscaling runs on: ${r.defaultProvider}${r.gpuUsed ? ' (GPU)' : ' (no GPU provider works here)'}`);
  if (r.advice.length > 0) {
    lines.push('', 'to use a GPU:');
    for (const a of r.advice) lines.push(`  - ${a}`);
  }
  return lines.join('\n') + '\n';
}
