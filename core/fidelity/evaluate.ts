/**
 * How well a map predicts where a result is actually wrong, on images with ground truth.
 *
 * The output is cut into block×block squares (8×8 by default; a partial block at the right or
 * bottom edge is left out). A block's error is the RMS of result − truth over its colour samples;
 * the blocks with the top 10 % of errors are the positives (ties at the cut are all positive).
 * A block's score is the map's mean over it. AUROC is the probability that a random positive
 * block scores above a random negative one (Mann–Whitney U, ties counting ½): 0.5 is chance.
 *
 * The baseline is the trivial map the issue names, "local gradient magnitude of the output"
 * (Sobel on luma), scored the same way: errors concentrate on edges and texture, so a map must
 * beat this to be more than an edge detector.
 */
import { Raster } from '../raster';
import { integerInRange, invalidOption, numberInRange } from '../validate';
import { DetailMap } from './detail-map';
import { sobelMagnitude } from './filters';
import { checkSameSize, luma, toFloat } from './image';

export interface EvaluationOptions {
  block?: number;
  /** Share of blocks that count as wrong (positives). */
  positiveShare?: number;
}

export interface Evaluation {
  auroc: number;
  baselineAuroc: number;
  blocks: number;
  positives: number;
}

/** Per block: the mean of a per-pixel plane. */
export function blockMeans(plane: Float32Array, width: number, height: number, block: number): Float64Array {
  const cols = Math.floor(width / block);
  const rows = Math.floor(height / block);
  const out = new Float64Array(cols * rows);
  for (let by = 0; by < rows; by++) {
    for (let bx = 0; bx < cols; bx++) {
      let s = 0;
      for (let y = by * block; y < (by + 1) * block; y++) for (let x = bx * block; x < (bx + 1) * block; x++) s += plane[y * width + x];
      out[by * cols + bx] = s / (block * block);
    }
  }
  return out;
}

/** Per block: RMS of result − truth over the colour samples, in 8-bit levels. */
export function blockRmsError(result: Raster, truth: Raster, block: number): Float64Array {
  checkSameSize(result, truth, 'blockRmsError');
  const a = toFloat(result);
  const b = toFloat(truth);
  const squared = new Float32Array(result.width * result.height);
  a.planes.forEach((p, c) => {
    for (let i = 0; i < squared.length; i++) squared[i] += ((255 * (p[i] - b.planes[c][i])) ** 2) / a.planes.length;
  });
  return blockMeans(squared, result.width, result.height, block).map(Math.sqrt);
}

/** AUROC of `scores` for `labels` (Mann–Whitney U with average ranks for ties). */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<boolean>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => scores[i] - scores[j]);
  let positives = 0;
  let rankSum = 0;
  for (let start = 0; start < n; ) {
    let end = start;
    while (end + 1 < n && scores[order[end + 1]] === scores[order[start]]) end++;
    const rank = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) {
      if (labels[order[k]]) {
        positives++;
        rankSum += rank;
      }
    }
    start = end + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** The trivial baseline map: Sobel gradient magnitude of the output's luma (unnormalised). */
export function gradientMap(result: Raster): DetailMap {
  return { width: result.width, height: result.height, data: sobelMagnitude(luma(toFloat(result)), result.width, result.height) };
}

/** The blocks that count as wrong: error at or above the top-`share` cut. */
export function topBlocks(errors: Float64Array, share: number): boolean[] {
  const sorted = Array.from(errors).sort((a, b) => b - a);
  const cut = sorted[Math.max(0, Math.ceil(share * sorted.length) - 1)];
  return Array.from(errors, (e) => e >= cut);
}

export function evaluateMap(map: DetailMap, result: Raster, truth: Raster, options: EvaluationOptions = {}): Evaluation {
  checkSameSize(map, result, 'evaluateMap');
  const block = integerInRange('block', options.block ?? 8, 1, Math.max(1, Math.min(result.width, result.height)));
  const share = numberInRange('positiveShare', options.positiveShare ?? 0.1, 0.01, 0.5);
  if (Math.floor(result.width / block) * Math.floor(result.height / block) < 2) throw invalidOption('block', `a size that leaves at least 2 whole blocks in the ${result.width}×${result.height} result`, block);
  const labels = topBlocks(blockRmsError(result, truth, block), share);
  const baseline = gradientMap(result);
  return {
    auroc: auroc(blockMeans(map.data, map.width, map.height, block), labels),
    baselineAuroc: auroc(blockMeans(baseline.data, baseline.width, baseline.height, block), labels),
    blocks: labels.length,
    positives: labels.filter(Boolean).length,
  };
}
