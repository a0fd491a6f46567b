import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { findModel } from '../core/catalogue';
import { OnnxGraphBuilder } from '../core/convert/onnx-builder';
import { graphCost } from '../core/graph-cost';
import { InferenceRunner, TileTensor } from '../core/session';
import { upscaleRaster, windowConventions } from '../core/upscale';
import { decodeImage, sharpResampler } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import type { BrowserBenchResult } from './bench-browser';
import type { BatchBenchReport } from './bench-batch';
import { modelRunner } from '../core/node/model-runner';
import type { runHugeBridgeBenchmark } from './bench-bridge-huge';

/**
 * Output megapixels per second for a size×size input at the model's native scale, whole pipeline
 * (tiling, blending, alpha fill) included, with the tile and overlap autotuning picks on this
 * machine (`tiling: 'catalogue'`: the catalogue's fixed defaults, for comparison), and where
 * the time went: inside the runner's `run` calls (ONNX Runtime, plus the tensor wrapping) and the
 * rest (reading windows, blending, rounding). A warm-up run first infers each distinct window
 * shape once, so session creation and first-run allocation are not counted.
 *
 * Achieved GFLOP/s counts the model's useful work, 2 × multiply-adds per output pixel (from the
 * graph, core/graph-cost.ts) × output pixels; inference GFLOP/s counts what ONNX Runtime actually
 * computed (every window, overlap and border padding included) over the time spent in it.
 */
export async function runBenchmark(modelId: string, size: number, imagePath: string, tiling: BenchTiling = 'auto') {
  const entry = findModel(modelId);
  const store = new ModelStore();
  const installed = await store.ensureOne(modelId);
  const runner = await modelRunner(store, modelId);
  const cost = graphCost(await fs.readFile(installed.onnxPath));
  const bytes = await sharp(imagePath).resize(size, size, { fit: 'cover' }).png().toBuffer();
  const { raster } = await decodeImage(bytes);
  // The calibration (first use on this machine: a few seconds in a child process) is not timed.
  const tuned = tiling === 'auto' && runner.autotune ? await runner.autotune({ width: size, height: size, scale: entry.scale }) : { tile: entry.tile, overlap: entry.overlap };
  const options = { scale: entry.scale, tile: tuned.tile, overlap: tuned.overlap, alpha: 'model' as const, ...windowConventions(entry) };

  // Warm-up: the whole pipeline, inferring each window shape once (ONNX Runtime plans memory per
  // input shape) and reusing that output for later windows of the same shape.
  const warmed = new Map<string, TileTensor>();
  const warmUp: InferenceRunner = {
    provider: runner.provider,
    async run(tile) {
      const key = `${tile.width}x${tile.height}`;
      const known = warmed.get(key) ?? (await runner.run(tile));
      warmed.set(key, known);
      return known;
    },
  };
  await upscaleRaster(raster, warmUp, entry.scale, sharpResampler, options);

  let inferenceMs = 0;
  let windowPixels = 0;
  const timed: InferenceRunner = {
    provider: runner.provider,
    async run(tile) {
      const started = performance.now();
      try {
        return await runner.run(tile);
      } finally {
        inferenceMs += performance.now() - started;
        windowPixels += tile.width * tile.height;
      }
    },
  };
  const started = performance.now();
  const result = await upscaleRaster(raster, timed, entry.scale, sharpResampler, options);
  const seconds = (performance.now() - started) / 1000;
  const inferenceSeconds = inferenceMs / 1000;
  const outputPixels = result.raster.width * result.raster.height;
  const inputPixels = raster.width * raster.height;
  return {
    model: modelId,
    provider: runner.provider,
    input: `${size}x${size}`,
    output: `${result.raster.width}x${result.raster.height}`,
    tiling,
    tile: options.tile,
    overlap: options.overlap,
    tiles: result.tiles,
    seconds: round(seconds, 3),
    outputMegapixelsPerSecond: round(outputPixels / 1e6 / seconds, 4),
    // maxRSS is in KiB on Linux and macOS.
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    macsPerInputPixel: cost.macsPerInputPixel,
    macsPerOutputPixel: round(cost.macsPerOutputPixel, 1),
    achievedGflops: round((2 * cost.macsPerOutputPixel * outputPixels) / seconds / 1e9, 1),
    /** Time inside runner.run (ONNX Runtime) and the rest of upscaleRaster. */
    inferenceSeconds: round(inferenceSeconds, 3),
    otherSeconds: round(seconds - inferenceSeconds, 3),
    /** Pixels inferred (windows: tiles, their overlap and the border padding) ÷ input pixels, per pass. */
    inferredPixelsRatio: round(windowPixels / (inputPixels * result.passes), 4),
    inferenceGflops: round((2 * cost.macsPerInputPixel * windowPixels) / inferenceSeconds / 1e9, 1),
  };
}

export type BenchmarkResult = Awaited<ReturnType<typeof runBenchmark>>;

/** 'auto': the autotuned tile and overlap (what users get); 'catalogue': the catalogue's fixed defaults. */
export type BenchTiling = 'auto' | 'catalogue';

/** The session options the bench's peak uses: those of core/node/ort-session.ts's runner. */
function runnerSessionOptions(): ort.InferenceSession.SessionOptions {
  return { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: os.availableParallelism() };
}

/**
 * A graph of `layers` 3×3 convolutions, channels → channels with zero padding, each followed by
 * LeakyReLU except in a one-layer graph (the plain convolution), random weights.
 */
export function convGraph(channels: number, layers: number): Uint8Array {
  const g = new OnnxGraphBuilder();
  g.addInput('x', [1, channels, 'height', 'width']);
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5) * 0.05;
  let current = 'x';
  for (let i = 0; i < layers; i++) {
    const w = g.addFloatInitializer(`w${i}`, [channels, channels, 3, 3], Float32Array.from({ length: channels * channels * 9 }, random));
    const b = g.addFloatInitializer(`b${i}`, [channels], new Float32Array(channels));
    const conv = layers === 1 ? 'y' : g.uniqueName(`conv${i}`);
    g.addNode('Conv', [current, w, b], [conv], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    current = conv;
    if (layers > 1) {
      const act = i === layers - 1 ? 'y' : g.uniqueName(`act${i}`);
      g.addNode('LeakyRelu', [current], [act], { alpha: { float: 0.2 } });
      current = act;
    }
  }
  g.addOutput('y', [1, channels, 'height', 'width']);
  return g.encode('upbridge-bench-peak').bytes;
}

/**
 * Runs of a graph on a 1×channels×size×size input, after a warm-up batch, in `batches`
 * batches of at least `batchSeconds` each: runs per second of each batch (sorted), and the
 * fastest single run's seconds. A batch integrates the machine's noise over a stretch, as a
 * model's long run does; single 20 ms runs on a 2-vCPU machine shared with other work are
 * bimodal (a descheduled intra-op thread stalls the other one).
 *
 * The output goes into one preallocated tensor: on this project's KVM machine a fresh 16 MiB
 * output costs ~60 ms of page faults, which made the 256² conv read 50 instead of 250–320
 * GFLOP/s (measured); that is the allocator's cost, not the convolution's.
 */
async function timeGraph(bytes: Uint8Array, channels: number, size: number, batches: number, batchSeconds: number): Promise<{ runsPerSecond: number[]; fastestSeconds: number }> {
  const session = await ort.InferenceSession.create(bytes, runnerSessionOptions());
  try {
    const data = Float32Array.from({ length: channels * size * size }, (_, i) => ((i * 2654435761) % 1000) / 1000);
    const feeds = { x: new ort.Tensor('float32', data, [1, channels, size, size]) };
    const fetches = { y: new ort.Tensor('float32', new Float32Array(channels * size * size), [1, channels, size, size]) };
    const runsPerSecond: number[] = [];
    let fastestSeconds = Infinity;
    // Batch -1 is a warm-up: the first half second ran at a third of the rate in every try.
    for (let b = -1; b < batches; b++) {
      const started = performance.now();
      let runs = 0;
      let elapsed = 0;
      while (elapsed < batchSeconds * 1000) {
        const runStarted = performance.now();
        await session.run(feeds, fetches);
        fastestSeconds = Math.min(fastestSeconds, (performance.now() - runStarted) / 1000);
        runs++;
        elapsed = performance.now() - started;
      }
      if (b >= 0) runsPerSecond.push(runs / (elapsed / 1000));
    }
    return { runsPerSecond: runsPerSecond.sort((a, b) => a - b), fastestSeconds };
  } finally {
    await session.release();
  }
}

const median = (sorted: number[]) => sorted[Math.floor(sorted.length / 2)];

/**
 * The practical peak: GFLOP/s ONNX Runtime reaches on one large 3×3 convolution, 64 → 64
 * channels on 256×256 (4.8 GFLOP a run), with the runner's session options: its fastest run
 * among five half-second batches (each batch's rate is reported too).
 * Also a chain of five such convolutions with LeakyReLU between them, where ONNX Runtime keeps
 * its blocked layout from layer to layer (a model's body looks like this; a single conv pays the
 * layout conversion on its way in and out).
 */
export async function runPeakBenchmark(options: { channels?: number; size?: number; batches?: number; batchSeconds?: number } = {}) {
  const channels = options.channels ?? 64;
  const size = options.size ?? 256;
  const batches = options.batches ?? 5;
  const batchSeconds = options.batchSeconds ?? 0.5;
  const flopPerLayer = 2 * channels * channels * 9 * size * size;
  const single = await timeGraph(convGraph(channels, 1), channels, size, batches, batchSeconds);
  const chainLayers = 5;
  const chain = await timeGraph(convGraph(channels, chainLayers), channels, size, batches, batchSeconds);
  return {
    conv: `${channels}→${channels} 3×3, 1×${channels}×${size}×${size}`,
    intraOpThreads: os.availableParallelism(),
    /**
     * The fastest run of the single conv: the denominator of every fractionOfPracticalPeak. Not
     * the median: on this shared 2-vCPU KVM machine whole half-second batches of the same conv
     * ranged from 55 to 236 GFLOP/s within one process, while the fastest run stayed at
     * 307–331 GFLOP/s across tries (measured); the fastest run is what ONNX Runtime reaches.
     */
    practicalPeakGflops: round(flopPerLayer / single.fastestSeconds / 1e9, 1),
    batchGflops: single.runsPerSecond.map((r) => round((flopPerLayer * r) / 1e9, 1)),
    batches: `${batches} × ≥ ${batchSeconds} s`,
    chainOfFive: {
      fastestRunGflops: round((chainLayers * flopPerLayer) / chain.fastestSeconds / 1e9, 1),
      medianBatchGflops: round((chainLayers * flopPerLayer * median(chain.runsPerSecond)) / 1e9, 1),
    },
  };
}

export type PeakResult = Awaited<ReturnType<typeof runPeakBenchmark>>;

/**
 * The machine's FP32 FMA peak from ../shared/perf/fma-peak.c (compiled with gcc as its README
 * says), or why it was not measured: no such file (a checkout without the shared folder), no
 * gcc, or a CPU without AVX-512 (the program then dies on an illegal instruction).
 */
export function measureFmaPeak(sharedDir: string): { gflops?: number; note?: string } {
  const source = path.join(sharedDir, 'perf', 'fma-peak.c');
  if (!existsSync(source)) return { note: `${source} not found: FMA peak not measured` };
  const binary = path.join(os.tmpdir(), `upbridge-fma-peak-${process.pid}`);
  try {
    const compiled = spawnSync('gcc', ['-O3', '-funroll-loops', '-mavx512f', '-mfma', '-o', binary, source, '-lpthread'], { encoding: 'utf8' });
    if (compiled.status !== 0) return { note: `gcc could not build fma-peak.c: ${compiled.error?.message ?? compiled.stderr.trim().split('\n')[0]}` };
    const ran = spawnSync(binary, [], { encoding: 'utf8', timeout: 180_000 });
    const gflops = Number(ran.stdout.trim());
    if (ran.status !== 0 || !Number.isFinite(gflops) || gflops <= 0) return { note: `fma-peak failed (${ran.signal ?? `exit ${ran.status}`}; AVX-512 missing?)` };
    return { gflops };
  } finally {
    spawnSync('rm', ['-f', binary]);
  }
}

/** Adds the fractions of the practical and FMA peaks to a model result. */
export function withPeakFractions<T extends { achievedGflops: number; inferenceGflops: number }>(result: T, peak?: PeakResult, fmaPeakGflops?: number) {
  return {
    ...result,
    ...(peak ? { fractionOfPracticalPeak: round(result.achievedGflops / peak.practicalPeakGflops, 3), inferenceFractionOfPracticalPeak: round(result.inferenceGflops / peak.practicalPeakGflops, 3) } : {}),
    ...(fmaPeakGflops ? { fractionOfFmaPeak: round(result.achievedGflops / fmaPeakGflops, 3) } : {}),
  };
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}

/** The figure of issue 8: Real-ESRGAN x4plus, 512×512 at 4x end to end, against the practical peak. */
export const TARGET = { model: 'realesrgan-x4plus', size: 512, fractionOfPracticalPeak: 0.7 } as const;

/** The models each peer is compared on: those with a counterpart in the peer's own format. */
export const PEER_MODELS = {
  // sizeFactor: the fast model runs on twice the side, so that its run is long beside the ncnn
  // tool's startup (Vulkan, pipelines: several seconds on lavapipe), which is measured apart.
  ncnn: [
    { id: 'realesrgan-x4plus', sizeFactor: 1 },
    { id: 'realesr-general-x4v3', sizeFactor: 2 },
  ],
  upscalerjs: [
    { id: 'esrgan-slim-x4', sizeFactor: 1 },
    { id: 'esrgan-medium-x4', sizeFactor: 1 },
  ],
} as const;

/** ../shared next to the checkout (`root`: the checkout; dist/ and bridge-server/ are one level below it). */
export function sharedDir(root = path.resolve(__dirname, '..')): string {
  return path.resolve(root, '..', 'shared');
}

/** The bench's photo: a shared ADE20K frame where the checkout has one, else the bundled sample. */
export function benchImage(root = path.resolve(__dirname, '..')): string {
  const shared = path.join(sharedDir(root), 'images', 'lr', 'ADE_val_00000114.jpg');
  return existsSync(shared) ? shared : path.join(root, 'assets', 'sample.png');
}

export interface BenchSuiteOptions {
  size: number;
  models: string[];
  /** Input side of the x4plus target case; 0 skips it. */
  targetSize: number;
  bridgeSize: number;
  fmaPeak: boolean;
  peers: boolean;
  /** Input side for the ncnn peer and ours beside it (the fast model: twice that). */
  peerSize: number;
  /** Input side for UpscalerJS (pure-JS TF.js is slow) and ours beside it. */
  tfjsSize: number;
  /** Input side for the in-browser engine (wasm in headless Chromium) and onnxruntime-node beside it; 0 or absent skips it. */
  browserSize?: number;
  /** Input side of the huge-output case through a bridge server process (16x: 1024); 0 skips it. */
  hugeSize?: number;
  /** Images in the batch figures (one process, then one and two workers on a local redis-server); 0 or absent skips them. */
  batchImages?: number;
  /** Its scale (default 16). */
  hugeScale?: number;
}

/** Runs `upbridge <args>` in a child process and returns its last stdout line as JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RunChild = (args: string[]) => any;

/**
 * The whole `upbridge bench`: FMA peak (when ../shared/perf/fma-peak.c exists), the practical
 * peak, each model, the x4plus 512² target, the bridge overhead and, with --peers, the peers with
 * ours on the same input; every ratio from this one run.
 */
export async function runBenchSuite(options: BenchSuiteOptions, runChild: RunChild) {
  const loadBefore = os.loadavg().map((l) => round(l, 2));
  const fmaPeak = options.fmaPeak ? measureFmaPeak(sharedDir()) : { note: 'not measured (--no-fma-peak)' };
  const peak: PeakResult = runChild(['bench-peak']);
  const model = (id: string, size: number, tiling: BenchTiling = 'auto') => withPeakFractions(runChild(['bench-one', id, '--size', String(size), '--tiling', tiling]) as BenchmarkResult, peak, fmaPeak.gflops);
  const results = options.models.map((id) => model(id, options.size));
  const targetResult = options.targetSize > 0 ? model(TARGET.model, options.targetSize) : undefined;
  // The same case with the catalogue's fixed tiles: what autotuning gains, from this one run.
  const targetFixed = options.targetSize > 0 ? model(TARGET.model, options.targetSize, 'catalogue') : undefined;
  const target = targetResult && {
    ...targetResult,
    goalFractionOfPracticalPeak: TARGET.fractionOfPracticalPeak,
    meetsGoal: (targetResult.fractionOfPracticalPeak ?? 0) >= TARGET.fractionOfPracticalPeak,
    ...(targetFixed ? { catalogueTiles: targetFixed, autotuneSpeedup: round(targetResult.outputMegapixelsPerSecond / targetFixed.outputMegapixelsPerSecond, 3) } : {}),
  };
  const bridge = options.bridgeSize > 0 ? runChild(['bench-bridge', '--size', String(options.bridgeSize)]) : undefined;
  const peers = options.peers ? runPeers(options, runChild) : undefined;
  // The in-browser engine (issue 10): onnxruntime-web in headless Chromium beside onnxruntime-node, and the download sizes.
  const browser: BrowserBenchResult | undefined = options.browserSize ? runChild(['bench-browser', '--size', String(options.browserSize)]) : undefined;
  // Minutes of both CPUs (16x of 1024²: two 4x passes of the fast model), so only when asked for.
  const hugeBridge: HugeBridgeResult | undefined = options.hugeSize ? runChild(['bench-bridge-huge', '--size', String(options.hugeSize), '--scale', String(options.hugeScale ?? 16)]) : undefined;
  // Batch throughput (issue 11); it needs Debian's redis-server, and says so instead of failing the bench.
  let batch: BatchBenchReport | { skipped: string } | undefined;
  if (options.batchImages) {
    try {
      batch = runChild(['bench-batch', '--images', String(options.batchImages)]) as BatchBenchReport;
    } catch (e) {
      batch = { skipped: `${e instanceof Error ? e.message : String(e)} (is redis-server installed?)` };
    }
  }
  return {
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, loadAverage: { before: loadBefore, after: os.loadavg().map((l) => round(l, 2)) } },
    fmaPeak,
    peak,
    results,
    target,
    bridge,
    peers,
    browser,
    hugeBridge,
    batch,
  };
}

export type BenchReport = Awaited<ReturnType<typeof runBenchSuite>>;
type HugeBridgeResult = Awaited<ReturnType<typeof runHugeBridgeBenchmark>>;

function runPeers(options: BenchSuiteOptions, runChild: RunChild) {
  const compare = (peer: 'ncnn' | 'upscalerjs', id: string, size: number) => {
    const ours = runChild(['bench-one', id, '--size', String(size)]) as BenchmarkResult;
    const theirs = runChild(['bench-peer', peer, id, '--size', String(size)]) as import('./bench-peers').PeerResult;
    return {
      model: id,
      input: `${size}x${size}`,
      ours: { seconds: ours.seconds, outputMegapixelsPerSecond: ours.outputMegapixelsPerSecond, peakRssMiB: ours.peakRssMiB },
      peer: theirs,
      oursOverPeer: theirs.outputMegapixelsPerSecond ? round(ours.outputMegapixelsPerSecond / theirs.outputMegapixelsPerSecond, 2) : undefined,
      /** The same with the peer's whole wall time (startup included), as a user would see it. */
      oursOverPeerWall: theirs.seconds ? round(theirs.seconds / ours.seconds, 2) : undefined,
    };
  };
  return [
    ...PEER_MODELS.ncnn.map((m) => compare('ncnn', m.id, options.peerSize * m.sizeFactor)),
    ...PEER_MODELS.upscalerjs.map((m) => compare('upscalerjs', m.id, options.tfjsSize * m.sizeFactor)),
  ];
}

const percent = (fraction: number | undefined) => (fraction === undefined ? '–' : `${(fraction * 100).toFixed(1)}%`);

/** The report as text, one line per figure. */
export function formatBenchReport(report: BenchReport): string {
  const lines: string[] = [];
  const { fmaPeak, peak } = report;
  lines.push(`machine: ${report.machine.cpus} × ${report.machine.cpu}, load average ${report.machine.loadAverage.before.join(' ')} before, ${report.machine.loadAverage.after.join(' ')} after`);
  lines.push(`FMA peak: ${fmaPeak.gflops !== undefined ? `${fmaPeak.gflops} GFLOP/s` : fmaPeak.note}`);
  lines.push(`practical peak (ONNX Runtime, one ${peak.conv} conv, ${peak.intraOpThreads} threads, fastest run): ${peak.practicalPeakGflops} GFLOP/s (half-second batches: ${peak.batchGflops.join(', ')}); a chain of five: ${peak.chainOfFive.fastestRunGflops} fastest, ${peak.chainOfFive.medianBatchGflops} median batch`);
  const modelLine = (r: BenchReport['results'][number]) =>
    `${r.model}: ${r.outputMegapixelsPerSecond} MP/s output, ${r.seconds} s for ${r.input}→${r.output} (tile ${r.tile}, overlap ${r.overlap}, ${r.tiles} tiles), peak RSS ${r.peakRssMiB} MiB\n` +
    `  ${(r.macsPerOutputPixel / 1e3).toFixed(1)} k multiply-adds per output pixel: ${r.achievedGflops} GFLOP/s = ${percent(r.fractionOfPracticalPeak)} of practical peak, ${percent(r.fractionOfFmaPeak)} of FMA peak\n` +
    `  inference ${r.inferenceSeconds} s (${r.inferenceGflops} GFLOP/s on ${r.inferredPixelsRatio}× the input's pixels: ${percent(r.inferenceFractionOfPracticalPeak)} of practical peak), rest of the pipeline ${r.otherSeconds} s`;
  for (const r of report.results) lines.push(modelLine(r));
  if (report.target) {
    lines.push(`target (x4plus ${report.target.input} at 4x, ≥ ${percent(report.target.goalFractionOfPracticalPeak)} of practical peak: ${report.target.meetsGoal ? 'met' : 'not met'}):\n  ${modelLine(report.target)}`);
    if (report.target.catalogueTiles) lines.push(`  with the catalogue's fixed tiles instead:\n  ${modelLine(report.target.catalogueTiles)}\n  autotuning: ${report.target.autotuneSpeedup}× as fast`);
  }
  if (report.bridge) lines.push(`bridge: ${report.bridge.input} at 4x, ${report.bridge.clientSeconds} s at the client, ${report.bridge.jobRunSeconds} s in the pipeline: overhead ${(report.bridge.bridgeOverheadFraction * 100).toFixed(2)}%`);
  const huge = report.hugeBridge;
  if (huge) {
    const r = huge.serverRss;
    lines.push(
      `huge output through the bridge: ${huge.input.width}² at ${huge.output.width / huge.input.width}x → ${huge.output.width}×${huge.output.height} (${huge.output.MiB} MiB at 8 bits), ${huge.model}, ${huge.seconds} s; ` +
        `server peak RSS ${r.peakMiB} MiB = ${r.peakOverOutput}× the output (constant ${r.constantMiB} MiB; limit 1.5× + constant = ${r.limitMiB} MiB: ${r.withinLimit ? 'within' : 'over'})`,
    );
  }
  const web = report.browser;
  if (web) {
    const mb = (n?: number) => (n === undefined ? '–' : `${(n / 1e6).toFixed(2)} MB`);
    const engine = (r: { outputMegapixelsPerSecond: number; seconds: number; threads: number; firstRunSeconds: number; psnrAgainstNodeDb: number }, name: string) =>
      `${name} ${r.outputMegapixelsPerSecond} MP/s (${r.seconds} s; first run ${r.firstRunSeconds} s; ${r.threads} thread${r.threads === 1 ? '' : 's'}; ${r.psnrAgainstNodeDb} dB against Node)`;
    const runs = 'skipped' in web ? `skipped (${web.skipped})` : [web.wasm ? engine(web.wasm, 'wasm') : undefined, 'ran' in web.webgpu ? `webgpu not run (${web.webgpu.reason})` : engine(web.webgpu, 'webgpu')].filter(Boolean).join('; ');
    lines.push(`in the browser (${web.model} ${web.input} at 4x, tile ${web.tile}): onnxruntime-node ${web.node.provider} ${web.node.outputMegapixelsPerSecond} MP/s (${web.node.seconds} s); ${runs}`);
    const s = web.sizes;
    lines.push(`  downloads: Figma plugin ${mb(s.figmaPluginBytes)} (ui.html ${mb(s.figmaUiHtmlBytes)}), ORT wasm ${mb(s.ortWasmBytes)} (WebGPU build ${mb(s.ortWebGpuWasmBytes)}), model ${mb(s.modelFp32OnnxBytes)} fp32 / ${mb(s.modelFp16OnnxBytes)} fp16`);
  }
  for (const p of report.peers ?? []) {
    lines.push(
      p.peer.skipped
        ? `peer ${p.peer.peer}, ${p.model}: skipped (${p.peer.skipped})`
        : `peer ${p.peer.peer}, ${p.model} ${p.input}: ${p.peer.outputMegapixelsPerSecond} MP/s (${p.peer.seconds} s${p.peer.startupSeconds !== undefined ? `, less ${p.peer.startupSeconds} s startup` : ''}); ours ${p.ours.outputMegapixelsPerSecond} MP/s (${p.ours.seconds} s): ${p.oursOverPeer}× theirs`,
    );
  }
  const batch = report.batch;
  if (batch && 'skipped' in batch) lines.push(`batch: skipped: ${batch.skipped}`);
  else if (batch) {
    lines.push(
      `batch (${batch.images} images ${batch.size}² at ${batch.scale}x, ${batch.model}, ${batch.cpus} CPUs): ${batch.local.imagesPerMinute} images/min in one process, ` +
        `${batch.queue1.imagesPerMinute} with one worker, ${batch.queue2.imagesPerMinute} with two (×${batch.speedup2}; both workers share these CPUs); queue overhead ${batch.queueOverheadMsPerJob} ms per job`,
    );
  }
  return lines.join('\n') + '\n';
}
