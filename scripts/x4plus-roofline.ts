/**
 * Why Real-ESRGAN x4plus reaches the fraction of the practical peak it does (issue 8), one run,
 * so every ratio below comes from the same machine state:
 *
 *   node scripts/run-ts.mjs scripts/x4plus-roofline.ts [--size 512] [--window 298] [--quick]   (from the checkout)
 *
 * A. ONNX Runtime alone on windows of several sides (the conv rate depends on the tile: cache,
 *    per-call overhead);
 * B. session options on one window side (threads, arena, graph optimisation, spinning);
 * C. the whole pipeline on a size×size input at 4x with the default tile (256) and with one
 *    window for the whole image, inference and the rest timed apart;
 * all against the practical peak (one 64→64 3×3 conv, as `upbridge bench` measures it).
 * Prints one JSON object. --quick shrinks everything for a smoke test.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { runPeakBenchmark, benchImage } from '../bridge-server/bench';
import { findModel } from '../core/catalogue';
import { graphCost } from '../core/graph-cost';
import { decodeImage, sharpResampler } from '../core/node/image-io';
import { ModelStore } from '../core/node/model-store';
import { InferenceRunner, TileTensor } from '../core/session';
import { upscaleRaster, windowConventions } from '../core/upscale';

const MODEL = 'realesrgan-x4plus';
const argv = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const quick = argv.includes('--quick');
const size = arg('size', quick ? 64 : 512);
const optionWindow = arg('window', quick ? 48 : 298);
const windowSides = quick ? [32, 48] : [148, 276, 298, 532];
const round = (v: number, d = 1) => Number(v.toFixed(d));

const BASE: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: os.availableParallelism() };

function tile(side: number): TileTensor {
  const data = new Float32Array(3 * side * side);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 997) / 997;
  return { data, channels: 3, height: side, width: side };
}

function runnerOf(session: ort.InferenceSession): InferenceRunner {
  return {
    provider: 'cpu',
    async run(input) {
      const tensor = new ort.Tensor('float32', input.data, [1, input.channels, input.height, input.width]);
      const result = await session.run({ [session.inputNames[0]]: tensor });
      const output = result[session.outputNames[0]];
      const [, channels, height, width] = output.dims as number[];
      return { data: output.data as Float32Array, channels, height, width };
    },
  };
}

/** Median seconds of `runs` runs of one window, after one warm-up run. */
async function timeWindow(session: ort.InferenceSession, side: number, runs: number): Promise<number> {
  const runner = runnerOf(session);
  const input = tile(side);
  await runner.run(input);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await runner.run(input);
    times.push((performance.now() - started) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)];
}

async function main() {
  const entry = findModel(MODEL);
  const { onnxPath } = await new ModelStore().ensureOne(MODEL);
  const cost = graphCost(await fs.readFile(onnxPath));
  const flopPerPixel = 2 * cost.macsPerInputPixel;
  const report: Record<string, unknown> = { model: MODEL, flopPerInputPixel: flopPerPixel, load: { before: os.loadavg().map((l) => round(l, 2)) } };
  const peak = await runPeakBenchmark(quick ? { batches: 1, batchSeconds: 0.1 } : {});
  report.peak = peak;
  process.stderr.write(`peak: ${JSON.stringify(peak)}\n`);
  const fraction = (gflops: number) => round(gflops / peak.practicalPeakGflops, 3);

  // A. Window side.
  const session = await ort.InferenceSession.create(onnxPath, BASE);
  const windows = [];
  for (const side of windowSides) {
    const seconds = await timeWindow(session, side, quick ? 1 : side > 400 ? 1 : 3);
    const gflops = (flopPerPixel * side * side) / seconds / 1e9;
    windows.push({ side, seconds: round(seconds, 3), gflops: round(gflops), fractionOfPracticalPeak: fraction(gflops) });
  }
  report.windows = windows;
  process.stderr.write(`windows: ${JSON.stringify(windows)}\n`);

  // B. Session options on one window side; each its own session, the baseline first and last
  // (drift check on a noisy machine).
  const variants: [string, ort.InferenceSession.SessionOptions][] = [
    ['baseline (the runner: all, 2 threads, arena on)', BASE],
    ['intraOpNumThreads 1', { ...BASE, intraOpNumThreads: 1 }],
    ['enableCpuMemArena false', { ...BASE, enableCpuMemArena: false }],
    ['enableMemPattern false', { ...BASE, enableMemPattern: false }],
    ['graphOptimizationLevel extended', { ...BASE, graphOptimizationLevel: 'extended' }],
    ['graphOptimizationLevel basic', { ...BASE, graphOptimizationLevel: 'basic' }],
    ['intra-op spinning off', { ...BASE, extra: { session: { intra_op: { allow_spinning: '0' } } } }],
    ['baseline again', BASE],
  ];
  const options = [];
  for (const [name, sessionOptions] of variants) {
    const s = await ort.InferenceSession.create(onnxPath, sessionOptions);
    const seconds = await timeWindow(s, optionWindow, quick ? 1 : 3);
    await s.release();
    const gflops = (flopPerPixel * optionWindow * optionWindow) / seconds / 1e9;
    options.push({ name, window: optionWindow, seconds: round(seconds, 3), gflops: round(gflops), fractionOfPracticalPeak: fraction(gflops) });
  }
  report.sessionOptions = options;
  process.stderr.write(`session options: ${JSON.stringify(options)}\n`);

  // C. End to end, default tile vs one window for the whole image.
  const bytes = await sharp(benchImage(process.cwd())).resize(size, size, { fit: 'cover' }).png().toBuffer();
  const { raster } = await decodeImage(bytes);
  const runner = runnerOf(session);
  const pipelines = [];
  for (const tileSide of quick ? [32, size] : [entry.tile, size]) {
    const options = { scale: 4, tile: tileSide, overlap: entry.overlap, alpha: 'model' as const, ...windowConventions(entry) };
    const warmed = new Set<string>();
    const warm: InferenceRunner = {
      provider: 'cpu',
      async run(t) {
        const key = `${t.width}x${t.height}`;
        if (!warmed.has(key)) {
          warmed.add(key);
          return runner.run(t);
        }
        return { data: new Float32Array(3 * 16 * t.width * t.height), channels: 3, width: 4 * t.width, height: 4 * t.height };
      },
    };
    await upscaleRaster(raster, warm, 4, sharpResampler, options);
    let inferenceMs = 0;
    let windowPixels = 0;
    const timed: InferenceRunner = {
      provider: 'cpu',
      async run(t) {
        const started = performance.now();
        const out = await runner.run(t);
        inferenceMs += performance.now() - started;
        windowPixels += t.width * t.height;
        return out;
      },
    };
    const started = performance.now();
    const result = await upscaleRaster(raster, timed, 4, sharpResampler, options);
    const seconds = (performance.now() - started) / 1000;
    const achieved = (flopPerPixel * size * size) / seconds / 1e9;
    const inference = (flopPerPixel * windowPixels) / (inferenceMs / 1000) / 1e9;
    pipelines.push({
      input: `${size}x${size}`,
      tile: tileSide,
      overlap: entry.overlap,
      tiles: result.tiles,
      seconds: round(seconds, 3),
      inferenceSeconds: round(inferenceMs / 1000, 3),
      otherSeconds: round(seconds - inferenceMs / 1000, 3),
      inferredPixelsRatio: round(windowPixels / (size * size), 4),
      achievedGflops: round(achieved),
      fractionOfPracticalPeak: fraction(achieved),
      inferenceGflops: round(inference),
      inferenceFractionOfPracticalPeak: fraction(inference),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    });
    process.stderr.write(`pipeline: ${JSON.stringify(pipelines[pipelines.length - 1])}\n`);
  }
  report.pipeline = pipelines;
  report.load = { ...(report.load as object), after: os.loadavg().map((l) => round(l, 2)) };
  process.stdout.write(JSON.stringify(report, null, 1) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
