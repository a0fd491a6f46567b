import { fillTransparentColour } from './alpha';
import { axisWeights } from './blend';
import { isUpbridgeError, throwIfCancelled, UpbridgeError } from './errors';
import { convertDepth, createRaster, extractChannel, fillChannel, hasAlpha, insertChannel, maxValue, Raster } from './raster';
import { InferenceRunner, isOutOfMemory, TileTensor } from './session';
import { mirrorIndex, planAxis, tileCount } from './tiler';
import type { ModelSource } from './catalogue';
import { minimumInputSide } from './convert/ncnn-conventions';
import { outputSize, SCALE_LIMITS } from './scale';
import { integerInRange, numberInRange, oneOf } from './validate';

export { outputSize };

export const ALPHA_MODES = ['model', 'lanczos'] as const;
export type AlphaMode = (typeof ALPHA_MODES)[number];

export const LIMITS = {
  scale: SCALE_LIMITS,
  tile: { min: 16, max: 4096 },
  overlap: { min: 0, max: 256 },
} as const;

export interface UpscaleOptions {
  /** Output size ÷ input size, 1 to 16, fractional allowed. */
  scale: number;
  /** Tile core size in input pixels. */
  tile: number;
  /** Context pixels read around each tile core. */
  overlap: number;
  alpha: AlphaMode;
  /** Mirrored pixels added at the image border (default BORDER_PAD_PX); 0 for graphs that pad themselves. */
  borderPad?: number;
  /** Smallest window side the model accepts (Real-CUGAN's reflect padding needs prepad + align). */
  minWindow?: number;
  signal?: AbortSignal;
  onProgress?: (progress: { done: number; total: number }) => void;
}

/** Lanczos resampling, supplied by the runtime (sharp in Node). */
export interface Resampler {
  resize(raster: Raster, width: number, height: number): Promise<Raster>;
}

export interface UpscaleResult {
  raster: Raster;
  /** Model passes run (16x with a 4x model: 2). */
  passes: number;
  /** Tiles inferred, all passes and the alpha channel included. */
  tiles: number;
}

/**
 * Receives the output's finished rows: `rows` is a raster of the output's width, channels and
 * depth, `rows.height` rows tall, starting at output row `y`. Rows come in order, each once; the
 * next batch waits until the promise the sink returns settles (back-pressure). A sink must not keep
 * `rows` after it settles: the pipeline lets go of them.
 */
export type RowSink = (rows: Raster, y: number) => Promise<void> | void;

export interface StreamedUpscaleResult {
  width: number;
  height: number;
  channels: Raster['channels'];
  depth: Raster['depth'];
  passes: number;
  tiles: number;
  /**
   * True when the rows went to the sink as the last pass finished them, in bounded memory; false
   * when a final Lanczos resize needed the whole raster first (it was built, then handed over).
   */
  streamed: boolean;
}

/**
 * How a model wants its windows: a converted graph with reference conventions pads its own
 * border (RESEARCH.md §2), so the pipeline adds none, and its reflect padding needs a minimum side.
 */
export function windowConventions(model: { source?: ModelSource }): Pick<UpscaleOptions, 'borderPad' | 'minWindow'> {
  const conventions = model.source?.format === 'ncnn' ? model.source.conventions : undefined;
  return conventions ? { borderPad: 0, minWindow: minimumInputSide(conventions) } : {};
}

/** Validates untrusted options once, at the boundary (CLI, HTTP, plugins). */
export function validateUpscaleOptions(
  raw: { scale?: unknown; tile?: unknown; overlap?: unknown; alpha?: unknown },
  defaults: { tile: number; overlap: number; source?: ModelSource },
): Omit<UpscaleOptions, 'signal' | 'onProgress'> {
  return {
    ...windowConventions(defaults),
    scale: numberInRange('scale', raw.scale ?? 4, LIMITS.scale.min, LIMITS.scale.max),
    tile: integerInRange('tile', raw.tile ?? defaults.tile, LIMITS.tile.min, LIMITS.tile.max),
    overlap: integerInRange('overlap', raw.overlap ?? defaults.overlap, LIMITS.overlap.min, LIMITS.overlap.max),
    alpha: oneOf('alpha', raw.alpha ?? 'model', ALPHA_MODES),
  };
}

/**
 * Smallest number of model passes whose combined scale reaches `scale` (at least one). A model
 * that does not enlarge (a 1x restoration model) runs once; Lanczos does the rest.
 */
export function passCount(scale: number, modelScale: number): number {
  if (modelScale < 2) return 1;
  let passes = 1;
  while (modelScale ** passes < scale - 1e-9) passes++;
  return passes;
}


/** The value of a channel if every pixel has the same one (an opaque PNG's alpha), else undefined. */
function uniformChannel(raster: Raster, channel: number): number | undefined {
  const first = raster.data[channel];
  for (let i = channel; i < raster.data.length; i += raster.channels) if (raster.data[i] !== first) return undefined;
  return first;
}

/** Tiles upscaleRaster will infer for this input (all passes, the alpha channel included): its progress total. */
export function plannedTiles(input: Raster, modelScale: number, options: Pick<UpscaleOptions, 'scale' | 'tile' | 'alpha'>): number {
  const passes = passCount(options.scale, modelScale);
  const alphaChannel = hasAlpha(input.channels) ? input.channels - 1 : -1;
  const alphaByModel = alphaChannel >= 0 && options.alpha === 'model' && uniformChannel(input, alphaChannel) === undefined;
  let total = 0;
  for (let k = 0; k < passes; k++) total += tileCount(input.width * modelScale ** k, input.height * modelScale ** k, options.tile);
  return alphaByModel ? total * 2 : total;
}

/**
 * What both pipelines (whole raster, row sink) settle before the first tile: how alpha is made,
 * and a progress counter that reports every tile and checks for a cancel after it.
 */
function startRun(input: Raster, modelScale: number, options: UpscaleOptions) {
  const alphaChannel = hasAlpha(input.channels) ? input.channels - 1 : -1;
  // A uniform alpha (opaque, or one flat level) is copied, not inferred: the model would only add texture.
  const flatAlpha = alphaChannel >= 0 ? uniformChannel(input, alphaChannel) : undefined;
  const alphaByModel = alphaChannel >= 0 && flatAlpha === undefined && options.alpha === 'model';
  const total = plannedTiles(input, modelScale, options);
  const progress = { done: 0, total };
  const tick = () => {
    progress.done++;
    options.onProgress?.({ ...progress });
    throwIfCancelled(options.signal);
  };
  options.onProgress?.({ ...progress });
  return { alphaChannel, flatAlpha, alphaByModel, total, tick };
}

/**
 * The whole pipeline: fill the colour under transparent pixels, run the colour channels (and the
 * alpha channel, as grey, when alpha = model) through as many model passes as the scale needs,
 * then resample to the exact requested size with Lanczos (as Real-ESRGAN's `outscale` does).
 */
export async function upscaleRaster(input: Raster, runner: InferenceRunner, modelScale: number, resampler: Resampler, options: UpscaleOptions): Promise<UpscaleResult> {
  const checkCancelled = () => throwIfCancelled(options.signal);
  const passes = passCount(options.scale, modelScale);
  const final = outputSize(input.width, input.height, options.scale);
  const passScale = modelScale ** passes;
  const needsResize = input.width * passScale !== final.width || input.height * passScale !== final.height;
  const { alphaChannel, flatAlpha, alphaByModel, total, tick } = startRun(input, modelScale, options);

  // When a Lanczos resize follows, the model's output stays 16-bit until after it.
  const target = createRaster(input.width * passScale, input.height * passScale, input.channels, needsResize ? 16 : input.depth);
  const colour = alphaChannel >= 0 && flatAlpha === undefined ? fillTransparentColour(input) : input;
  const isGrey = input.channels <= 2;
  await runPasses(colour, isGrey ? [0, 0, 0] : [0, 1, 2], target, isGrey ? [0] : [0, 1, 2], passes, runner, modelScale, options, tick);

  if (alphaByModel) {
    await runPasses(input, [alphaChannel, alphaChannel, alphaChannel], target, [alphaChannel], passes, runner, modelScale, options, tick);
  } else if (flatAlpha !== undefined) {
    fillChannel(target, alphaChannel, target.depth === input.depth ? flatAlpha : flatAlpha * 257);
  } else if (alphaChannel >= 0) {
    const alpha = await resampler.resize(extractChannel(input, alphaChannel), target.width, target.height);
    insertChannel(target, alphaChannel, convertDepth(alpha, target.depth));
  }
  checkCancelled();

  const raster = needsResize ? convertDepth(await resampler.resize(target, final.width, final.height), input.depth) : target;
  checkCancelled();
  return { raster, passes, tiles: total };
}

/**
 * Whether upscaleRasterToSink streams for this size: when the scale is the model's scale to a whole
 * power (4x, 16x with a 4x model; 2x, 4x, 8x, 16x with a 2x one), the last pass's rows are the
 * output's rows. Any other scale ends with a Lanczos resize of the whole raster (sharp resamples a
 * whole image, not a row stream), so those rows exist only once everything is done.
 */
export function streamsRows(width: number, height: number, modelScale: number, scale: number): boolean {
  const passScale = modelScale ** passCount(scale, modelScale);
  const final = outputSize(width, height, scale);
  return width * passScale === final.width && height * passScale === final.height;
}

/** Rows handed over from a whole raster in batches of this many bytes (views, not copies). */
const WHOLE_RASTER_BATCH_BYTES = 8 << 20;

/**
 * upscaleRaster, delivering the output to `sink` instead of returning it. Pixels are identical to
 * upscaleRaster's (same tiling, blending and rounding; only where finished rows go differs).
 *
 * When streamsRows() holds, the last pass hands each finished band of rows to the sink and drops
 * it, so memory is bounded by the input, the intermediate passes (16x with a 4x model: the whole
 * 4x raster, 16-bit RGB), one tile row's float band, and, for an alpha that is not flat, the alpha
 * plane at output size (1 channel: a quarter of an RGBA output), computed first. Otherwise (a final
 * resize) the whole raster is built as upscaleRaster does and then handed over in batches.
 */
export async function upscaleRasterToSink(input: Raster, runner: InferenceRunner, modelScale: number, resampler: Resampler, options: UpscaleOptions, sink: RowSink): Promise<StreamedUpscaleResult> {
  const checkCancelled = () => throwIfCancelled(options.signal);
  const passes = passCount(options.scale, modelScale);
  const shape = { channels: input.channels, depth: input.depth, passes };
  if (!streamsRows(input.width, input.height, modelScale, options.scale)) {
    const { raster, tiles } = await upscaleRaster(input, runner, modelScale, resampler, options);
    const rowBytes = raster.width * raster.channels * raster.data.BYTES_PER_ELEMENT;
    const batch = Math.max(1, Math.floor(WHOLE_RASTER_BATCH_BYTES / rowBytes));
    const rowLength = raster.width * raster.channels;
    for (let y = 0; y < raster.height; y += batch) {
      const height = Math.min(batch, raster.height - y);
      await sink({ ...raster, height, data: raster.data.subarray(y * rowLength, (y + height) * rowLength) }, y);
      checkCancelled();
    }
    return { ...shape, width: raster.width, height: raster.height, tiles, streamed: false };
  }

  const passScale = modelScale ** passes;
  const width = input.width * passScale;
  const height = input.height * passScale;
  const { alphaChannel, flatAlpha, alphaByModel, total, tick } = startRun(input, modelScale, options);

  // An alpha that varies is made whole first (its rows are needed beside every colour row); the
  // colour then streams. upscaleRaster runs colour first: the order changes no pixel.
  let alphaPlane: Raster | undefined;
  if (alphaByModel) {
    alphaPlane = createRaster(width, height, 1, input.depth);
    await runPasses(input, [alphaChannel, alphaChannel, alphaChannel], alphaPlane, [0], passes, runner, modelScale, options, tick);
  } else if (alphaChannel >= 0 && flatAlpha === undefined) {
    alphaPlane = convertDepth(await resampler.resize(extractChannel(input, alphaChannel), width, height), input.depth);
  }
  checkCancelled();

  let nextRow = 0;
  const target: RowTarget = {
    width,
    height,
    channels: input.channels,
    depth: input.depth,
    async write(rows, y) {
      if (y !== nextRow) throw new UpbridgeError('UPB_INTERNAL', `rows arrived out of order: ${y}, expected ${nextRow}`);
      nextRow = y + rows.height;
      if (flatAlpha !== undefined) fillChannel(rows, alphaChannel, flatAlpha);
      else if (alphaPlane) {
        const offset = y * width;
        for (let i = 0; i < rows.height * width; i++) rows.data[i * rows.channels + alphaChannel] = alphaPlane.data[offset + i];
      }
      await sink(rows, y);
    },
  };
  const colour = alphaChannel >= 0 && flatAlpha === undefined ? fillTransparentColour(input) : input;
  const isGrey = input.channels <= 2;
  await runPasses(colour, isGrey ? [0, 0, 0] : [0, 1, 2], target, isGrey ? [0] : [0, 1, 2], passes, runner, modelScale, options, tick);
  if (nextRow !== height) throw new UpbridgeError('UPB_INTERNAL', `the last pass finished ${nextRow} of ${height} rows`);
  checkCancelled();
  return { ...shape, width, height, tiles: total, streamed: true };
}

/** The last pass's destination when streaming: a shape, and where each finished band of rows goes. */
interface RowTarget {
  width: number;
  height: number;
  channels: Raster['channels'];
  depth: Raster['depth'];
  write(rows: Raster, y: number): Promise<void>;
}

function isRowTarget(target: Raster | RowTarget): target is RowTarget {
  return 'write' in target;
}

/** Chains passes; intermediate results stay 16-bit so a 16x job is not quantised to 8 bits midway. */
async function runPasses(source: Raster, sourceChannels: number[], target: Raster | RowTarget, targetChannels: number[], passes: number, runner: InferenceRunner, modelScale: number, options: UpscaleOptions, tick: () => void): Promise<void> {
  let src = source;
  let srcChannels = sourceChannels;
  const grey = targetChannels.length === 1;
  for (let k = 1; k < passes; k++) {
    const dst = createRaster(src.width * modelScale, src.height * modelScale, grey ? 1 : 3, 16);
    await runPass(src, srcChannels, dst, grey ? [0] : [0, 1, 2], runner, modelScale, options, tick);
    src = dst;
    srcChannels = grey ? [0, 0, 0] : [0, 1, 2];
  }
  await runPass(src, srcChannels, target, targetChannels, runner, modelScale, options, tick);
}

/** Reads a window of the source (mirrored outside the image) as a CHW float tile. */
function readWindow(source: Raster, channels: number[], x0: number, y0: number, width: number, height: number): TileTensor {
  const norm = 1 / maxValue(source.depth);
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  const columns = new Int32Array(width);
  for (let x = 0; x < width; x++) columns[x] = mirrorIndex(x0 + x, source.width) * source.channels;
  const [c0, c1, c2] = channels;
  for (let y = 0; y < height; y++) {
    const rowBase = mirrorIndex(y0 + y, source.height) * source.width * source.channels;
    const out = y * width;
    for (let x = 0; x < width; x++) {
      const p = rowBase + columns[x];
      data[out + x] = source.data[p + c0] * norm;
      data[plane + out + x] = source.data[p + c1] * norm;
      data[2 * plane + out + x] = source.data[p + c2] * norm;
    }
  }
  return { data, channels: 3, height, width };
}

/**
 * Mirrored padding at the image border, as Real-ESRGAN's pre_pad (PyTorch) and prepadding
 * (ncnn) do: enough to keep the convolutions' zero padding away from the visible edge, far less
 * than the context tiles need from each other.
 */
export const BORDER_PAD_PX = 10;

/** Smallest window side at which an out-of-memory tile is no longer split. */
const MIN_SPLIT_PX = 16;

async function runPass(source: Raster, sourceChannels: number[], target: Raster | RowTarget, targetChannels: number[], runner: InferenceRunner, scale: number, options: UpscaleOptions, tick: () => void): Promise<void> {
  const { tile, overlap, signal } = options;
  const pad = options.borderPad ?? BORDER_PAD_PX;
  const minWindow = options.minWindow ?? 1;
  const xPlan = planAxis(source.width, tile, overlap, scale);
  const yPlan = planAxis(source.height, tile, overlap, scale);
  const cols = xPlan.boundaries.length - 1;
  const rows = yPlan.boundaries.length - 1;
  const outW = target.width;
  const xWeights = Array.from({ length: cols }, (_, i) => axisWeights(xPlan, i, scale));
  const yWeights = Array.from({ length: rows }, (_, j) => axisWeights(yPlan, j, scale));

  const checkCancelled = () => throwIfCancelled(signal);

  // Each half keeps the window's outer edges and reads up to `overlap` pixels of context across
  // the cut (within the window), so a side is split only while that makes its windows shorter.
  // Halves must stay at least minWindow wide.
  const shrinks = (side: number) => side > MIN_SPLIT_PX && Math.ceil(side / 2) + overlap < side && (side >> 1) + Math.min(overlap, Math.ceil(side / 2)) >= minWindow;

  // The smallest window area that ran out of memory: later windows that large are split at once
  // instead of failing again.
  let failedArea = Infinity;

  /**
   * Infers a window (its pixels already read, when `pixels` is given); when the runtime runs out
   * of memory, infers its halves (with context) instead.
   */
  const inferWindow = async (x0: number, y0: number, width: number, height: number, pixels?: TileTensor): Promise<TileTensor> => {
    checkCancelled();
    let result: TileTensor;
    try {
      if (width * height >= failedArea && (shrinks(width) || shrinks(height))) throw new Error('out of memory (a window this large failed before)');
      result = await runner.run(pixels ?? readWindow(source, sourceChannels, x0, y0, width, height));
    } catch (e) {
      if (isUpbridgeError(e)) throw e;
      if (!isOutOfMemory(e)) throw new UpbridgeError('UPB_INFERENCE', `inference failed on a ${width}×${height} tile: ${e instanceof Error ? e.message : String(e)}`);
      failedArea = Math.min(failedArea, width * height);
      const splitX = shrinks(width);
      const splitY = shrinks(height);
      if (!splitX && !splitY) {
        throw new UpbridgeError('UPB_INFERENCE', `out of memory even on a ${width}×${height} tile (overlap ${overlap}): ${e instanceof Error ? e.message : String(e)}`);
      }
      return inferSplit(x0, y0, width, height, splitX, splitY);
    }
    if (result.width !== width * scale || result.height !== height * scale || result.channels !== 3) {
      throw new UpbridgeError('UPB_INFERENCE', `model returned ${result.channels}×${result.width}×${result.height} for a 3×${width}×${height} tile; expected a ${scale}x RGB model`);
    }
    return result;
  };

  const inferSplit = async (x0: number, y0: number, width: number, height: number, splitX: boolean, splitY: boolean): Promise<TileTensor> => {
    const out: TileTensor = { data: new Float32Array(3 * width * scale * height * scale), channels: 3, width: width * scale, height: height * scale };
    const outPlane = out.width * out.height;
    const xParts = halves(width, splitX);
    const yParts = halves(height, splitY);
    for (const yp of yParts) {
      for (const xp of xParts) {
        const part = await inferWindow(x0 + xp.from - xp.before, y0 + yp.from - yp.before, xp.to - xp.from + xp.before + xp.after, yp.to - yp.from + yp.before + yp.after);
        const partPlane = part.width * part.height;
        const rowLength = (xp.to - xp.from) * scale;
        for (let c = 0; c < 3; c++) {
          for (let y = 0; y < (yp.to - yp.from) * scale; y++) {
            const from = c * partPlane + (y + yp.before * scale) * part.width + xp.before * scale;
            out.data.set(part.data.subarray(from, from + rowLength), c * outPlane + (yp.from * scale + y) * out.width + xp.from * scale);
          }
        }
      }
    }
    return out;
  };

  /** The two halves of a window side, each with context only across the cut. */
  const halves = (side: number, split: boolean) => {
    if (!split) return [{ from: 0, to: side, before: 0, after: 0 }];
    const mid = side >> 1;
    return [
      { from: 0, to: mid, before: 0, after: Math.min(overlap, side - mid) },
      { from: mid, to: side, before: Math.min(overlap, mid), after: 0 },
    ];
  };

  // The windows in raster order: each core, read with `overlap` of context between tiles and
  // always `pad` (BORDER_PAD_PX) of mirrored padding at the image border; windows never reach past
  // it, so every run sees the same border, whatever its overlap or tiling. A window below the
  // model's minimum grows to it: back into the image first, then into mirrored pixels past it
  // (images smaller than the minimum). Only the core is kept.
  const windows: { row: number; col: number; left: number; top: number; width: number; height: number }[] = [];
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      const x0 = xPlan.boundaries[col];
      const x1 = xPlan.boundaries[col + 1];
      const y0 = yPlan.boundaries[row];
      const y1 = yPlan.boundaries[row + 1];
      let left = x0 === 0 ? -pad : Math.max(x0 - overlap, -pad);
      let top = y0 === 0 ? -pad : Math.max(y0 - overlap, -pad);
      let right = x1 === source.width ? source.width + pad : Math.min(x1 + overlap, source.width + pad);
      let bottom = y1 === source.height ? source.height + pad : Math.min(y1 + overlap, source.height + pad);
      left = Math.max(-pad, Math.min(left, right - minWindow));
      top = Math.max(-pad, Math.min(top, bottom - minWindow));
      right = Math.max(right, left + minWindow);
      bottom = Math.max(bottom, top + minWindow);
      windows.push({ row, col, left, top, width: right - left, height: bottom - top });
    }
  }

  let band = new Float32Array(0);
  let bandStart = 0;
  let bandRows = 0;
  let bandPlane = 0;

  /** Starts a tile row's band: float sums for the rows it touches, the previous row's ramp carried over. */
  const startBand = (row: number) => {
    const { start: rowStart, weights: wy } = yWeights[row];
    const next = new Float32Array(3 * wy.length * outW);
    const carried = Math.max(0, bandStart + bandRows - rowStart);
    for (let c = 0; c < 3; c++) {
      const from = c * bandRows * outW + (rowStart - bandStart) * outW;
      next.set(band.subarray(from, from + carried * outW), c * wy.length * outW);
    }
    band = next;
    bandStart = rowStart;
    bandRows = wy.length;
    bandPlane = bandRows * outW;
  };

  const blend = (out: TileTensor, w: (typeof windows)[number]) => {
    const { start: rowStart, weights: wy } = yWeights[w.row];
    const rowEnd = rowStart + wy.length;
    const winX0 = w.left * scale;
    const winY0 = w.top * scale;
    const { start: colStart, weights: wx } = xWeights[w.col];
    const outPlane = out.width * out.height;
    for (let Y = rowStart; Y < rowEnd; Y++) {
      const wyv = wy[Y - rowStart];
      if (wyv === 0) continue;
      const srcRow = (Y - winY0) * out.width - winX0;
      const dstRow = (Y - bandStart) * outW;
      for (let X = colStart; X < colStart + wx.length; X++) {
        const weight = wyv * wx[X - colStart];
        if (weight === 0) continue;
        const s = srcRow + X;
        const d = dstRow + X;
        band[d] += weight * out.data[s];
        band[bandPlane + d] += weight * out.data[outPlane + s];
        band[2 * bandPlane + d] += weight * out.data[2 * outPlane + s];
      }
    }
  };

  const finishRow = async (row: number) => {
    const rowStart = yWeights[row].start;
    const finalEnd = row + 1 < rows ? yWeights[row + 1].start : target.height;
    if (isRowTarget(target)) {
      // Streaming: the finished rows go out in a raster of their own, then are let go.
      const finished = createRaster(outW, finalEnd - rowStart, target.channels, target.depth);
      writeRows(band, bandStart, bandRows, rowStart, finalEnd, finished, targetChannels, rowStart);
      await target.write(finished, rowStart);
    } else {
      writeRows(band, bandStart, bandRows, rowStart, finalEnd, target, targetChannels, 0);
    }
  };

  // Pipelined, one window in flight: while the runtime infers window i (in its own thread, see
  // core/node/ort-worker-session.ts), this thread reads window i + 1, then, once i + 1 is running,
  // blends window i and hands finished rows on. The order of every float operation is the same as
  // one window at a time, so the pixels are too.
  const start = (i: number, pixels?: TileTensor) => {
    const w = windows[i];
    const p = inferWindow(w.left, w.top, w.width, w.height, pixels);
    // Marked handled now: it may fail while this thread awaits a sink; it is awaited below.
    p.catch(() => undefined);
    return p;
  };
  let inflight: Promise<TileTensor> | undefined = start(0);
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i];
    let out: TileTensor;
    let nextTile: TileTensor | undefined;
    try {
      if (i + 1 < windows.length) {
        const n = windows[i + 1];
        nextTile = readWindow(source, sourceChannels, n.left, n.top, n.width, n.height);
      }
    } finally {
      out = await (inflight as Promise<TileTensor>);
    }
    inflight = i + 1 < windows.length ? start(i + 1, nextTile) : undefined;
    try {
      if (w.col === 0) startBand(w.row);
      blend(out, w);
      tick();
      if (w.col === cols - 1) await finishRow(w.row);
    } catch (e) {
      // Never leave a run going on a session the next job will use.
      await inflight?.catch(() => undefined);
      throw e;
    }
  }
}

/**
 * Rounds finished float rows into the target raster (whose first row is output row `targetStart`);
 * one target channel takes the mean of R, G, B.
 */
function writeRows(band: Float32Array, bandStart: number, bandRows: number, from: number, to: number, target: Raster, channels: number[], targetStart: number): void {
  const max = maxValue(target.depth);
  const width = target.width;
  const plane = bandRows * width;
  const stride = target.channels;
  for (let Y = from; Y < to; Y++) {
    const bandRow = (Y - bandStart) * width;
    const outRow = (Y - targetStart) * width * stride;
    for (let X = 0; X < width; X++) {
      const b = bandRow + X;
      const o = outRow + X * stride;
      if (channels.length === 3) {
        target.data[o + channels[0]] = quantise(band[b], max);
        target.data[o + channels[1]] = quantise(band[plane + b], max);
        target.data[o + channels[2]] = quantise(band[2 * plane + b], max);
      } else {
        target.data[o + channels[0]] = quantise((band[b] + band[plane + b] + band[2 * plane + b]) / 3, max);
      }
    }
  }
}

function quantise(value: number, max: number): number {
  const v = Math.round(value * max);
  return v < 0 ? 0 : v > max ? max : v;
}
