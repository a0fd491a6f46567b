import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ModelEntry } from '../catalogue';
import { measureModelOverlap } from '../exact-overlap';
import { graphCost } from '../graph-cost';
import { AutotuneRequest, InferenceRunner } from '../session';
import { CALIBRATION_VERSION, chooseTiling, evaluateTiling, TileCalibration, TilingChoice, TilingRequest } from '../tile-tuning';
import { BORDER_PAD_PX, passCount, windowConventions } from '../upscale';
import { sharpResampler } from './image-io';
import { runNodeScript } from './node-script';
import { integerInRange } from '../validate';
import { tempFileBeside } from './temp-files';

/**
 * Calibrations of a model on a provider, measured once and kept beside the models
 * (`<home>/calibration/<model>.<provider>.json`), so every later run on this machine tiles the
 * same way and pays nothing.
 *
 * Time and memory are measured in a child process: the process's peak RSS is then the session's
 * alone (in a long-running bridge it would be whatever the largest earlier job left), and the
 * timing does not compete with the caller's work.
 */

/** Window sides tried, smallest first; the first is a warm-up whose time is not kept. */
const CALIBRATION_SIDES = [32, 64, 96, 128, 192, 256, 384, 512];
/**
 * Larger windows are measured until one from CALIBRATION_MIN_SIDE up takes this long: past the
 * largest measured window the time per pixel is extrapolated (core/tile-tuning.ts), and on a CPU
 * it falls off once activations outgrow the caches, so the ladder has to reach the sizes tiles
 * are chosen from. realesr-general-x4v3 stops after 512² (~5 s in all on 2 cores), x4plus after
 * 256² (~20 s). A single window this slow stops it anyway.
 */
const CALIBRATION_STOP_SECONDS = 2;
const CALIBRATION_MIN_SIDE = 256;
const CALIBRATION_ABORT_SECONDS = 15;
const CALIBRATION_TIMEOUT_MS = 180_000;

/** A GPU's memory is not in the process's RSS: the graph's largest convolution, times this, stands in for it. */
const GRAPH_MEMORY_FACTOR = 4;

/**
 * What the tiling may hold at once (the largest window's inference and its float band of output
 * rows): $UPBRIDGE_TILE_MEMORY_MIB, else a third of the machine's memory, at most 8 GiB (the
 * bridge also holds its queue's images; other apps hold the rest).
 */
export function tileMemoryBudget(env: NodeJS.ProcessEnv = process.env): number {
  if (env.UPBRIDGE_TILE_MEMORY_MIB) return integerInRange('UPBRIDGE_TILE_MEMORY_MIB', env.UPBRIDGE_TILE_MEMORY_MIB, 64, 1 << 20) * 2 ** 20;
  return Math.min(os.totalmem() / 3, 8 * 2 ** 30);
}

/**
 * Peak RSS of a large window ÷ what the small calibration windows predict: ONNX Runtime's CPU
 * arena grows in powers of two. Measured 1.5× (x4v3, one 276² window: 180 MiB for 122 predicted)
 * and 1.55× (x4plus, one 532² window: 7.0 GiB for 4.5 predicted).
 */
const ARENA_GROWTH = 1.6;

export interface WindowMeasurement {
  timings: { side: number; seconds: number }[];
  /** Peak RSS after each timed window, minus the peak once the session was open (bytes). */
  peakGrowth: { side: number; bytes: number }[];
}

/** Runs square windows of random pixels through the model on one provider, in a child process. */
export async function measureWindows(onnxPath: string, provider: string, maxSide: number, timeoutMs = CALIBRATION_TIMEOUT_MS): Promise<WindowMeasurement> {
  const script = `
const ort = require(process.argv[1]);
const fs = require('fs');
const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
(async () => {
  const [, onnxPath, provider, sidesJson, stopSeconds, threads, minSide, abortSeconds] = process.argv.slice(1);
  const session = await ort.InferenceSession.create(onnxPath, { executionProviders: [provider], graphOptimizationLevel: 'all', intraOpNumThreads: Number(threads) });
  const base = hwm();
  const timings = [];
  const peakGrowth = [];
  const sides = JSON.parse(sidesJson);
  for (const [i, side] of sides.entries()) {
    const data = new Float32Array(3 * side * side);
    for (let k = 0; k < data.length; k++) data[k] = Math.random();
    const t0 = performance.now();
    await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, side, side]) });
    const seconds = (performance.now() - t0) / 1000;
    if (i === 0) continue;
    timings.push({ side, seconds });
    peakGrowth.push({ side, bytes: Math.max(0, hwm() - base) });
    if ((seconds > Number(stopSeconds) && side >= Number(minSide)) || seconds > Number(abortSeconds)) break;
  }
  process.stdout.write('\\n' + JSON.stringify({ timings, peakGrowth }) + '\\n');
})().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
  const sides = CALIBRATION_SIDES.filter((s, i) => i === 0 || s <= maxSide);
  const args = [require.resolve('onnxruntime-node'), onnxPath, provider, JSON.stringify(sides), String(CALIBRATION_STOP_SECONDS), String(os.availableParallelism()), String(CALIBRATION_MIN_SIDE), String(CALIBRATION_ABORT_SECONDS)];
  const { stdout, stderr, code } = await runNodeScript(script, args, timeoutMs);
  try {
    const parsed = JSON.parse(stdout.trim().split('\n').pop() ?? '') as WindowMeasurement;
    if (parsed.timings.length > 0) return parsed;
  } catch {
    // reported below
  }
  throw new Error(`tile calibration of ${path.basename(onnxPath)} on ${provider} failed (exit ${code}): ${stderr.trim().split('\n')[0] || 'no output'}`);
}

/** Peak bytes per window pixel: measured (CPU), or the graph's estimate (a GPU's memory is not in RSS). */
function memoryPerPixel(measured: WindowMeasurement, provider: string, onnx: Uint8Array): { bytesPerPixel: number; memorySource: TileCalibration['memorySource'] } {
  const graph = graphCost(onnx).convBytesPerInputPixel * GRAPH_MEMORY_FACTOR;
  if (provider !== 'cpu' || !process.platform.startsWith('linux')) return { bytesPerPixel: graph, memorySource: 'graph' };
  const rss = ARENA_GROWTH * Math.max(...measured.peakGrowth.map((p) => p.bytes / (p.side * p.side)));
  // A window smaller than the arena's first block shows no growth at all: never below the graph's own two tensors.
  return { bytesPerPixel: Math.max(rss, graph / GRAPH_MEMORY_FACTOR), memorySource: 'rss' };
}

export function calibrationFile(home: string, model: string, provider: string): string {
  return path.join(home, 'calibration', `${model}.${provider}.json`);
}

async function readCalibration(file: string, onnxSha256: string): Promise<TileCalibration | undefined> {
  try {
    const c = JSON.parse(await fs.readFile(file, 'utf8')) as TileCalibration;
    return c.version === CALIBRATION_VERSION && c.onnxSha256 === onnxSha256 ? c : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes a calibration unless another process got there first (link fails if the file exists):
 * concurrent first runs then all use the first one written, so they tile the same way.
 * `replace` overwrites (a stale calibration, or one gaining its measured overlap).
 */
async function writeCalibration(file: string, calibration: TileCalibration, replace: boolean): Promise<TileCalibration> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const { temp, forget } = tempFileBeside(file);
  try {
    await fs.writeFile(temp, JSON.stringify(calibration, null, 2));
    if (replace) await fs.rename(temp, file);
    else {
      try {
        await fs.link(temp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        return (await readCalibration(file, calibration.onnxSha256)) ?? calibration;
      }
    }
    return calibration;
  } finally {
    await fs.rm(temp, { force: true });
    forget();
  }
}

export interface CalibrationTarget {
  entry: ModelEntry;
  /** The file the provider runs (the fp16 variant on a GPU) and its sha256. */
  onnxPath: string;
  onnxSha256: string;
  provider: string;
  /** Where calibrations are kept (the model store's home). */
  home: string;
}

const inProcess = new Map<string, Promise<TileCalibration>>();

/**
 * The model's calibration on the provider: from the cache file, else measured now (once per
 * process). `remeasure` measures again and replaces the file (`upbridge models calibrate`: a
 * calibration taken while the machine was busy makes every later tiling choice worse).
 */
export function tileCalibration(target: CalibrationTarget, options: { remeasure?: boolean } = {}): Promise<TileCalibration> {
  const file = calibrationFile(target.home, target.entry.id, target.provider);
  const key = `${file}|${target.onnxSha256}`;
  let pending = options.remeasure ? undefined : inProcess.get(key);
  if (!pending) {
    pending = (async () => {
      const cached = options.remeasure ? undefined : await readCalibration(file, target.onnxSha256);
      if (cached) return cached;
      // Replace only what was there before measuring (stale, or asked to measure again): a file
      // that appears while this process measures is another's first calibration, and it wins.
      const replace = options.remeasure === true || (await fs.stat(file).catch(() => undefined)) !== undefined;
      const onnx = await fs.readFile(target.onnxPath);
      const measured = await measureWindows(target.onnxPath, target.provider, CALIBRATION_SIDES[CALIBRATION_SIDES.length - 1]);
      const calibration: TileCalibration = {
        version: CALIBRATION_VERSION,
        model: target.entry.id,
        provider: target.provider,
        onnxSha256: target.onnxSha256,
        timings: measured.timings,
        ...memoryPerPixel(measured, target.provider, onnx),
        ...(target.entry.exactOverlap !== undefined ? { exactOverlap: target.entry.exactOverlap } : {}),
      };
      return writeCalibration(file, calibration, replace);
    })();
    inProcess.set(key, pending);
    pending.catch(() => inProcess.delete(key));
  }
  return pending;
}

/** Adds the measured exact overlap to a calibration that lacks it (once; kept in the file). */
export async function withExactOverlap(target: CalibrationTarget, calibration: TileCalibration, runner: InferenceRunner, signal?: AbortSignal): Promise<TileCalibration> {
  if (calibration.exactOverlap !== undefined) return calibration;
  const measured = await measureModelOverlap(runner, target.entry.scale, sharpResampler, windowConventions(target.entry), signal);
  const updated: TileCalibration = measured.overlap !== undefined
    ? { ...calibration, exactOverlap: measured.overlap }
    : { ...calibration, exactOverlap: target.entry.overlap, overlapInexact: true };
  const file = calibrationFile(target.home, target.entry.id, target.provider);
  await writeCalibration(file, updated, true);
  inProcess.set(`${file}|${target.onnxSha256}`, Promise.resolve(updated));
  return updated;
}

export interface Autotuned {
  tile: number;
  overlap: number;
  choice: TilingChoice;
  calibration: TileCalibration;
}

/**
 * Tile and overlap for one input: the tile with the least estimated time whose windows fit the
 * memory budget; the overlap is the exact one (tiled = whole within 1/255) whenever the image
 * needs more than one window, measured on first need for models the catalogue has no figure for.
 */
export async function autotune(target: CalibrationTarget, runner: InferenceRunner, request: AutotuneRequest, memoryBudget = Math.min(tileMemoryBudget(), request.memoryBudget ?? Infinity)): Promise<Autotuned> {
  let calibration = await tileCalibration(target);
  const conventions = windowConventions(target.entry);
  const base = {
    width: request.width,
    height: request.height,
    modelScale: target.entry.scale,
    passes: passCount(request.scale, target.entry.scale),
    borderPad: conventions.borderPad ?? BORDER_PAD_PX,
    minWindow: conventions.minWindow ?? 1,
    memoryBudget,
  };
  const pick = (overlap: number, c: TileCalibration) => {
    const r: TilingRequest = { ...base, overlap };
    return request.tile !== undefined ? evaluateTiling(r, c, request.tile) : chooseTiling(r, c);
  };
  const overlapNow = request.overlap ?? calibration.exactOverlap ?? target.entry.overlap;
  let choice = pick(overlapNow, calibration);
  // One window per pass has no seams: the overlap changes nothing, so none is measured for it.
  if (request.overlap !== undefined || choice.windows === base.passes) return { tile: choice.tile, overlap: overlapNow, choice, calibration };
  calibration = await withExactOverlap(target, calibration, runner, request.signal);
  const overlap = calibration.exactOverlap ?? target.entry.overlap;
  choice = pick(overlap, calibration);
  return { tile: choice.tile, overlap, choice, calibration };
}
