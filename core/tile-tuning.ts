/**
 * Tile autotuning: the tile size that upscales an image fastest within a memory budget, from a
 * short calibration of the model on its provider (how a window's time and memory grow with its
 * area). Pure: the Node side measures and caches calibrations (core/node/tile-calibration.ts).
 *
 * Why it matters: every tile is inferred with `overlap` pixels of context on each inner side, and
 * that context is computed twice. x4plus on a 512² photo with 256-pixel tiles infers 1.36× the
 * image; one 532² window (the image and its mirrored border) infers 1.08×. Small windows also
 * pay a fixed cost per run, which on a GPU dominates. So: the fewest, largest windows the memory
 * allows, unless the measured rate says mid-sized windows run faster per pixel.
 */
import { LIMITS } from './upscale';
import { planAxis } from './tiler';

export const CALIBRATION_VERSION = 3;

/** One measured window: a square of `side` input pixels took `seconds` (after a warm-up run). */
export interface WindowTiming {
  side: number;
  seconds: number;
}

export interface TileCalibration {
  version: number;
  model: string;
  provider: string;
  /** sha256 of the .onnx that was measured: a new model file invalidates the calibration. */
  onnxSha256: string;
  /** Ascending by side. */
  timings: WindowTiming[];
  /**
   * Peak memory per window input pixel, in bytes: the process's peak growth over the session's
   * own, divided by the window's area, the largest over the measured windows (conservative: small
   * windows carry fixed costs too).
   */
  bytesPerPixel: number;
  /** How the memory figure was obtained: process peak RSS (CPU) or estimated from the graph (GPU memory is not visible). */
  memorySource: 'rss' | 'graph';
  /**
   * Smallest overlap (input px) that keeps tiled = whole within 1/255, where known: from the
   * catalogue's measurement, or measured on first need (core/exact-overlap.ts).
   */
  exactOverlap?: number;
  /** When the overlap was measured and no candidate met 1/255 (global pooling): the overlap used instead. */
  overlapInexact?: boolean;
}

/** Seconds for one window of `area` input pixels, interpolated between the measured windows. */
export function windowSeconds(calibration: Pick<TileCalibration, 'timings'>, area: number): number {
  return secondsModel(calibration)(area);
}

function secondsModel(calibration: Pick<TileCalibration, 'timings'>): (area: number) => number {
  const points = calibration.timings.map((t) => ({ area: t.side * t.side, seconds: t.seconds }));
  return (area) => interpolate(points, area);
}

function interpolate(points: { area: number; seconds: number }[], area: number): number {
  if (points.length === 0) return area;
  if (area <= points[0].area) {
    // Toward zero along the first two points' line: its intercept is the fixed cost of a run.
    const a = points[0];
    const b = points[1];
    const intercept = b ? Math.min(a.seconds, Math.max(0, a.seconds - ((b.seconds - a.seconds) * a.area) / (b.area - a.area))) : 0;
    return intercept + ((a.seconds - intercept) * area) / a.area;
  }
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    if (area <= b.area) return a.seconds + ((b.seconds - a.seconds) * (area - a.area)) / (b.area - a.area);
  }
  // Past the largest window: slower per pixel the larger it gets. Convolutions on windows whose
  // activations outgrow the CPU's caches run at a lower rate: realesr-general-x4v3 ran 105 px/ms
  // at 256–512² and 70 at 1044²; x4plus 6.0 px/ms at 276² and 3.7 at 532² (this machine). A rate
  // falling with the fourth root of the area fits both; a steeper fall already measured between
  // the last two windows is kept instead.
  const last = points[points.length - 1];
  const prev = points.length > 1 ? points[points.length - 2] : undefined;
  const measuredFall = prev ? Math.log((last.seconds / last.area) / (prev.seconds / prev.area)) / Math.log(last.area / prev.area) : 0;
  const fall = Math.max(RATE_FALL_PAST_MEASURED, measuredFall);
  return last.seconds * (area / last.area) ** (1 + fall);
}

/** How the per-pixel time grows past the largest calibrated window: ∝ area^0.25 (see interpolate). */
const RATE_FALL_PAST_MEASURED = 0.25;

export interface TilingRequest {
  /** Input size of the first pass. */
  width: number;
  height: number;
  /** The model's scale and the number of passes the requested scale needs. */
  modelScale: number;
  passes: number;
  /** Context between tiles (input px). */
  overlap: number;
  /** Mirrored border the pipeline adds (0 for graphs that pad themselves) and the model's smallest window side. */
  borderPad: number;
  minWindow: number;
  /** Bytes the tiling may use at once: the largest window's inference and the float band of output rows it blends into. */
  memoryBudget: number;
}

export interface TilingChoice {
  tile: number;
  /** Windows inferred over all passes. */
  windows: number;
  /** Estimated inference seconds, all passes. */
  seconds: number;
  /** Estimated peak bytes of the largest window. */
  windowBytes: number;
  /** Bytes of the largest float band (one tile row's output rows, 3 float32 planes: see runPass). */
  bandBytes: number;
  /** Input pixels inferred ÷ image pixels (1 = no recomputed context or border). */
  inferredRatio: number;
  /** False when even the smallest tile's window exceeds the budget (the pipeline's out-of-memory split then takes over). */
  fitsBudget: boolean;
}

/** The windows runPass infers along one axis for a tile size (same rule: context inside the image, `pad` at its border). */
function windowSides(length: number, tile: number, overlap: number, pad: number, minWindow: number): number[] {
  const { boundaries } = planAxis(length, tile, overlap, 1);
  const sides: number[] = [];
  for (let i = 0; i + 1 < boundaries.length; i++) {
    const x0 = boundaries[i];
    const x1 = boundaries[i + 1];
    let lo = x0 === 0 ? -pad : Math.max(x0 - overlap, -pad);
    const hi = x1 === length ? length + pad : Math.min(x1 + overlap, length + pad);
    lo = Math.max(-pad, Math.min(lo, hi - minWindow));
    sides.push(Math.max(hi, lo + minWindow) - lo);
  }
  return sides;
}

/** The estimate for one tile size. */
export function evaluateTiling(request: TilingRequest, calibration: Pick<TileCalibration, 'timings' | 'bytesPerPixel'>, tile: number): TilingChoice {
  return evaluate(request, calibration, secondsModel(calibration), tile);
}

function evaluate(request: TilingRequest, calibration: Pick<TileCalibration, 'bytesPerPixel'>, seconds1: (area: number) => number, tile: number): TilingChoice {
  let seconds = 0;
  let windows = 0;
  let maxArea = 0;
  let inferred = 0;
  let pixels = 0;
  let bandBytes = 0;
  for (let k = 0; k < request.passes; k++) {
    const f = request.modelScale ** k;
    const w = request.width * f;
    const h = request.height * f;
    const xs = windowSides(w, tile, request.overlap, request.borderPad, request.minWindow);
    const ys = windowSides(h, tile, request.overlap, request.borderPad, request.minWindow);
    // A band spans a tile row's core plus the blend ramps (half the overlap on each side), at output scale.
    const { boundaries } = planAxis(h, tile, request.overlap, 1);
    let tallest = 0;
    for (let i = 0; i + 1 < boundaries.length; i++) tallest = Math.max(tallest, boundaries[i + 1] - boundaries[i]);
    const bandRows = (tallest + (ys.length > 1 ? request.overlap : 0)) * request.modelScale;
    bandBytes = Math.max(bandBytes, 12 * w * request.modelScale * bandRows);
    for (const y of ys) {
      for (const x of xs) {
        seconds += seconds1(x * y);
        maxArea = Math.max(maxArea, x * y);
        inferred += x * y;
      }
    }
    windows += xs.length * ys.length;
    pixels += w * h;
  }
  const windowBytes = calibration.bytesPerPixel * maxArea;
  return { tile, windows, seconds, windowBytes, bandBytes, inferredRatio: inferred / pixels, fitsBudget: windowBytes + bandBytes <= request.memoryBudget };
}

/** More tiles than this along a side never pay: their context would outweigh their cores. */
const MAX_TILES_PER_SIDE = 64;

/**
 * The tile size with the least estimated inference time whose largest window fits the budget.
 * Candidates are the sizes that cut a pass's sides into 1, 2, 3… equal parts (any size between
 * two of them gives the same count of tiles and only larger windows). Ties go to the larger tile.
 */
export function chooseTiling(request: TilingRequest, calibration: Pick<TileCalibration, 'timings' | 'bytesPerPixel'>): TilingChoice {
  const candidates = new Set<number>();
  for (let k = 0; k < request.passes; k++) {
    const f = request.modelScale ** k;
    for (const side of [request.width * f, request.height * f]) {
      for (let n = 1; n <= MAX_TILES_PER_SIDE; n++) {
        const tile = Math.ceil(side / n);
        if (tile < LIMITS.tile.min) break;
        if (tile <= LIMITS.tile.max) candidates.add(tile);
      }
    }
  }
  candidates.add(LIMITS.tile.min);
  const seconds1 = secondsModel(calibration);
  let best: TilingChoice | undefined;
  let smallest: TilingChoice | undefined;
  for (const tile of [...candidates].sort((a, b) => b - a)) {
    const choice = evaluate(request, calibration, seconds1, tile);
    if (!smallest || choice.windowBytes + choice.bandBytes < smallest.windowBytes + smallest.bandBytes) smallest = choice;
    if (!choice.fitsBudget) continue;
    if (!best || choice.seconds < best.seconds * (1 - 1e-9)) best = choice;
  }
  // Nothing fits: the smallest windows, and the pipeline splits further if the runtime runs out.
  return best ?? (smallest as TilingChoice);
}
