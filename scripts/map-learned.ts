/**
 * A learned invented-detail map (issue 7), evaluated held out: can a small model on per-pixel
 * features observable at inference time (input, creative result G, fidelity result F, their
 * disagreement, TTA spread, local statistics at several scales) predict where G is wrong better
 * than the output's gradient does, on photos it was not trained on?
 *
 * Protocol: map-study.ts's cases, ends and labels (the 17 Set5 + Set14 photos, ×4 bicubic, G and F
 * as modes.ts makes them for mode=creative, map=true, 8×8 blocks, positives the top 10 % of block
 * RMS error of G against the truth). Per image, feature planes at output size (FEATURES below, all
 * computable without ground truth); one training sample per block (the block means of the planes).
 * Leave one image out: for each of the 17 photos, standardisation and model are fitted on the 16
 * others only and the held-out image is scored; the gradient baseline is evaluateMap's, on the same
 * blocks, and so is the shipped map. Also Set14 → Set5 and Set5 → Set14. Models (hand-written, no
 * dependencies): ridge logistic regression on the label; ridge regression on the log block error
 * (centred per image: only the ranking inside an image is scored); a one-hidden-layer MLP (8 tanh)
 * on either target; gradient-boosted depth-2 trees on either target. Samples are weighted so every
 * training image counts the same. "block" scores are model(block means of features); "pixel"
 * scores apply the model to every pixel and take block means of the result, as a shipped map would.
 *
 *   node scripts/run-ts.mjs scripts/map-learned.ts [--config single|tta] [--models lr,ridge,...]
 *        [--features D,T,...;all;...]   feature sets, ';' between sets ('all': every feature)
 *        [--center | --zscore]          features relative to the image (minus its mean; / its std)
 *        [--pixel] [--per-image] [--json] [--cache DIR] [--lambda 1] [--hf-weight 1]
 *        [--oracles]                    upper bounds that use the truth (E_d² + F's error², ...)
 *        [--fidelity-target]            predict F's errors instead of G's (against F's gradient)
 * Findings: NOTES.md, issue 7 ("A learned map, held out").
 *
 * Needs map-study.ts's cached model outputs (/tmp/map-study); feature planes are cached under
 * /tmp/map-learned (Float32, one file per image and configuration).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyColumns, applyRows, linearAxis } from '../core/fidelity/axis';
import { inventedDetailMap, mapSignals } from '../core/fidelity/detail-map';
import { auroc, blockMeans, blockRmsError, evaluateMap, topBlocks } from '../core/fidelity/evaluate';
import { boxMean, sobelMagnitude, tentMean } from '../core/fidelity/filters';
import { FloatImage, luma, toFloat } from '../core/fidelity/image';
import { colourFixToInput } from '../core/fidelity/colour-fix';
import { projectToInput } from '../core/fidelity/consistency';
import { sharpResampler } from '../core/node/image-io';
import { Raster } from '../core/raster';
import { Case, CREATIVE, FIDELITY, loadCases, modeEnds, ModelOutputs } from './map-study';
import { arg, crop, flag, resize } from './quality-kit';

export const FEATURES = ['D', 'T', 'L', 'S', 'gG', 'gF', 'hfG', 'hfF', 'D8', 'gF8', 'gG8', 'vLR1', 'vLR3', 'lum', 'base', 'bLR1', 'bLR2', 'eG4', 'eF4', 'd4'] as const;
type Feature = (typeof FEATURES)[number];
type Config = 'single' | 'tta';

const log1p = (p: Float32Array) => p.map((v) => Math.log1p(Math.max(0, v)));

function meanSquaredLevels(a: FloatImage, b: FloatImage): Float32Array {
  const out = new Float32Array(a.width * a.height);
  const k = (255 * 255) / a.planes.length;
  a.planes.forEach((p, c) => {
    for (let i = 0; i < out.length; i++) out[i] += k * (p[i] - b.planes[c][i]) ** 2;
  });
  return out;
}

/** Per output pixel, every feature of FEATURES (log of levels² where it is an energy). */
/**
 * The coarse run: the same ends made from the input downscaled ×4 once more, compared with the
 * input (per input pixel, levels²): G's and F's own error one scale up, and their disagreement there.
 */
export interface Coarse {
  eG: Float32Array;
  eF: Float32Array;
  d: Float32Array;
}

export function featurePlanes(input: Raster, creative: Raster, fidelity: Raster, spread: Float32Array | undefined, coarse: Coarse): { width: number; height: number; planes: Record<Feature, Float32Array> } {
  const s = mapSignals({ input, creative, fidelity, spread });
  const { width, height } = s;
  const radius = Math.max(1, Math.ceil(width / input.width / 2));
  const win = (p: Float32Array) => tentMean(p, width, height, radius);
  const gFloat = toFloat(creative);
  const fFloat = toFloat(fidelity);
  const gl = luma(gFloat);
  const fl = luma(fFloat);
  const sobG = sobelMagnitude(gl, width, height);
  const sobF = sobelMagnitude(fl, width, height);
  const sq = (p: Float32Array) => p.map((v) => (255 * v) ** 2);
  const hf = (l: Float32Array) => {
    const m = boxMean(l, width, height, 2);
    return l.map((v, i) => (255 * (v - m[i])) ** 2);
  };
  const mse = meanSquaredLevels(gFloat, fFloat);
  // The input's local variance (luma, levels²) at 3×3 and 7×7 input pixels, interpolated to output size.
  const il = luma(toFloat(input));
  const up = (v: Float32Array) => applyColumns(applyRows(v, input.width, input.height, linearAxis(input.width, width)), width, input.height, linearAxis(input.height, height));
  const lrVar = (r: number) => {
    const m = boxMean(il, input.width, input.height, r);
    const m2 = boxMean(il.map((v) => v * v), input.width, input.height, r);
    return up(m2.map((x, i) => 255 * 255 * Math.max(0, x - m[i] * m[i])));
  };
  // The input's energy in two bands (finest: minus its 3×3 mean; next: 3×3 mean minus 7×7 mean), over 5×5 input pixels.
  const m1 = boxMean(il, input.width, input.height, 1);
  const m3 = boxMean(il, input.width, input.height, 3);
  const band = (p: Float32Array) => up(boxMean(p, input.width, input.height, 2));
  const lrWin = (p: Float32Array) => up(boxMean(p, input.width, input.height, 1));
  const planes: Record<Feature, Float32Array> = {
    D: log1p(s.disagreement),
    T: log1p(s.spread),
    L: log1p(s.inconsistency),
    S: log1p(s.disagreement.map((v, i) => v + s.spread[i] + s.inconsistency[i])),
    gG: log1p(win(sq(sobG))),
    gF: log1p(win(sq(sobF))),
    hfG: log1p(win(hf(gl))),
    hfF: log1p(win(hf(fl))),
    D8: log1p(boxMean(mse, width, height, 8)),
    gF8: log1p(boxMean(sq(sobF), width, height, 8)),
    gG8: log1p(boxMean(sq(sobG), width, height, 8)),
    vLR1: log1p(lrVar(1)),
    vLR3: log1p(lrVar(3)),
    lum: boxMean(fl, width, height, 4),
    base: sobG.map((v) => Math.log1p(255 * v)),
    bLR1: log1p(band(il.map((v, i) => (255 * (v - m1[i])) ** 2))),
    bLR2: log1p(band(m1.map((v, i) => (255 * (v - m3[i])) ** 2))),
    eG4: log1p(lrWin(coarse.eG)),
    eF4: log1p(lrWin(coarse.eF)),
    d4: log1p(lrWin(coarse.d)),
  };
  return { width, height, planes };
}

/** The input cropped to a multiple of 4 and downscaled ×4 (sharp's bicubic, as the protocol), its ends, errors padded to input size. */
async function coarseRun(c: Case, outputs: ModelOutputs): Promise<Coarse> {
  const w = c.input.width - (c.input.width % 4);
  const h = c.input.height - (c.input.height % 4);
  const target = await crop(c.input, 0, 0, w, h);
  const small = await resize(target, w / 4, h / 4, 'cubic');
  const g = await colourFixToInput(await outputs.onInput(`${c.name}.coarse`, small, CREATIVE), small, sharpResampler);
  const f = projectToInput(await colourFixToInput(await outputs.onInput(`${c.name}.coarse`, small, FIDELITY), small, sharpResampler), small);
  const pad = (p: Float32Array) => {
    const out = new Float32Array(c.input.width * c.input.height);
    for (let y = 0; y < c.input.height; y++) for (let x = 0; x < c.input.width; x++) out[y * c.input.width + x] = p[Math.min(y, h - 1) * w + Math.min(x, w - 1)];
    return out;
  };
  const t = toFloat(target);
  return { eG: pad(meanSquaredLevels(toFloat(g), t)), eF: pad(meanSquaredLevels(toFloat(f), t)), d: pad(meanSquaredLevels(toFloat(g), toFloat(f))) };
}

interface Image {
  name: string;
  set: Case['set'];
  width: number;
  height: number;
  /** Per pixel, FEATURES.length planes. */
  planes: Float32Array[];
  /** Per block, the block means of the planes (row-major blocks × features). */
  blockX: Float64Array[];
  labels: boolean[];
  /** log block RMS error minus its mean over the image. */
  logError: Float64Array;
  baseline: number;
  shipped: number;
  oracles: Record<string, number>;
  hfTruth: Float64Array;
  sBlocks: Float64Array;
}

async function loadImage(c: Case, outputs: ModelOutputs, config: Config, cacheDir: string): Promise<Image> {
  process.stderr.write(`${c.name} ${config}\n`);
  const { creative, fidelity, spread } = await modeEnds(c, outputs, config === 'tta');
  const file = path.join(cacheDir, `${c.name}.${config}.f32`);
  const n = creative.width * creative.height;
  let planes: Float32Array[];
  if (fs.existsSync(file) && fs.statSync(file).size === 4 * n * FEATURES.length) {
    const bytes = fs.readFileSync(file);
    const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    planes = FEATURES.map((_, k) => all.subarray(k * n, (k + 1) * n));
  } else {
    const f = featurePlanes(c.input, creative, fidelity, spread, await coarseRun(c, outputs));
    planes = FEATURES.map((k) => f.planes[k]);
    const all = new Float32Array(n * FEATURES.length);
    planes.forEach((p, k) => all.set(p, k * n));
    fs.writeFileSync(file, Buffer.from(all.buffer));
  }
  // --target fidelity: predict where F (not G) is wrong, against F's own gradient: can the features see F's error at all?
  const scored = flag('fidelity-target') ? fidelity : creative;
  const evaluation = evaluateMap(inventedDetailMap({ input: c.input, creative, fidelity, spread }), scored, c.truth);
  const errors = blockRmsError(scored, c.truth, 8);
  const oracles: Record<string, number> = {};
  // The two-stage model's target (training images only): log of the block mean of the truth's local
  // high-frequency energy (luma minus its 5×5 mean, squared, tent-windowed), and the map's S² per block.
  const radius0 = Math.max(1, Math.ceil(creative.width / c.input.width / 2));
  const truthLuma = luma(toFloat(c.truth));
  const truthMean = boxMean(truthLuma, creative.width, creative.height, 2);
  const hfTruth = blockMeans(tentMean(truthLuma.map((v, i) => (255 * (v - truthMean[i])) ** 2), creative.width, creative.height, radius0), creative.width, creative.height, 8).map(Math.log1p);
  const sBlocks = blockMeans(planes[FEATURES.indexOf('S')].map(Math.expm1), creative.width, creative.height, 8);
  if (flag('oracles')) {
    // Upper bounds with the truth: D² + F's true error² (windowed), D² + the truth's local high-frequency energy.
    const { width, height } = creative;
    const radius = Math.max(1, Math.ceil(width / c.input.width / 2));
    const d = planes[FEATURES.indexOf('D')].map(Math.expm1);
    const fErr = tentMean(meanSquaredLevels(toFloat(fidelity), toFloat(c.truth)), width, height, radius);
    const tl = luma(toFloat(c.truth));
    const tm = boxMean(tl, width, height, 2);
    const hfT = tentMean(tl.map((v, i) => (255 * (v - tm[i])) ** 2), width, height, radius);
    const hfG = planes[FEATURES.indexOf('hfG')].map(Math.expm1);
    const labels = topBlocks(errors, 0.1);
    const a = (p: Float32Array) => auroc(blockMeans(p, width, height, 8), labels);
    oracles['D²+Ferr²'] = a(d.map((v, i) => v + fErr[i]));
    oracles['Ferr²'] = a(fErr);
    oracles['D²+hfT²'] = a(d.map((v, i) => v + hfT[i]));
    oracles['hfG²+hfT²'] = a(hfG.map((v, i) => v + hfT[i]));
    oracles['D²+hfG²'] = a(d.map((v, i) => v + hfG[i]));
  }
  const logs = errors.map((e) => Math.log(e + 0.5));
  const m = logs.reduce((a, b) => a + b, 0) / logs.length;
  const perFeature = planes.map((p) => blockMeans(p, creative.width, creative.height, 8));
  // --center: every feature minus its mean over the image's blocks (observable; only ranks inside an image are scored).
  // --zscore: also divided by its standard deviation over the image's blocks.
  const relative = flag('center') || flag('zscore');
  const centre = relative ? perFeature.map((f) => f.reduce((a, b) => a + b, 0) / f.length) : perFeature.map(() => 0);
  const spreadOf = flag('zscore') ? perFeature.map((f, k) => Math.sqrt(f.reduce((a, b) => a + (b - centre[k]) ** 2, 0) / f.length) || 1) : perFeature.map(() => 1);
  if (relative) planes = planes.map((p, k) => p.map((v) => (v - centre[k]) / spreadOf[k]));
  const blockX = Array.from(errors, (_, b) => Float64Array.from(perFeature, (f, k) => (f[b] - centre[k]) / spreadOf[k]));
  return {
    name: c.name,
    set: c.set,
    width: creative.width,
    height: creative.height,
    planes,
    blockX,
    labels: topBlocks(errors, 0.1),
    logError: logs.map((v) => v - m),
    baseline: evaluation.baselineAuroc,
    shipped: evaluation.auroc,
    oracles,
    hfTruth,
    sBlocks,
  };
}

// ---------------------------------------------------------------- models

interface Data {
  x: Float64Array[];
  y: Float64Array; // label 0/1 or centred log error
  w: Float64Array; // sample weights (each image sums to 1 · mean blocks)
}

interface Model {
  /** Score of one standardised feature vector. */
  predict(x: ArrayLike<number>): number;
}

type Target = 'label' | 'logerr' | 'hf';

function dataset(images: Image[], cols: number[], target: Target): Data {
  const x: Float64Array[] = [];
  const y: number[] = [];
  const w: number[] = [];
  const meanBlocks = images.reduce((a, im) => a + im.labels.length, 0) / images.length;
  for (const im of images) {
    const wi = meanBlocks / im.labels.length;
    im.blockX.forEach((row, b) => {
      x.push(Float64Array.from(cols, (k) => row[k]));
      y.push(target === 'label' ? (im.labels[b] ? 1 : 0) : target === 'hf' ? im.hfTruth[b] : im.logError[b]);
      w.push(wi);
    });
  }
  return { x, y: Float64Array.from(y), w: Float64Array.from(w) };
}

/** Standardisation fitted on training rows only. */
function standardiser(x: Float64Array[]): { mean: Float64Array; std: Float64Array } {
  const d = x[0].length;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const r of x) for (let k = 0; k < d; k++) mean[k] += r[k] / x.length;
  for (const r of x) for (let k = 0; k < d; k++) std[k] += (r[k] - mean[k]) ** 2 / x.length;
  for (let k = 0; k < d; k++) std[k] = Math.sqrt(std[k]) || 1;
  return { mean, std };
}

/** Solve A·x = b (symmetric positive definite, small) by Gaussian elimination. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((r, i) => [...r, b[i]]);
  for (let i = 0; i < n; i++) {
    let p = i;
    for (let r = i + 1; r < n; r++) if (Math.abs(m[r][i]) > Math.abs(m[p][i])) p = r;
    [m[i], m[p]] = [m[p], m[i]];
    for (let r = i + 1; r < n; r++) {
      const f = m[r][i] / m[i][i];
      for (let c = i; c <= n; c++) m[r][c] -= f * m[i][c];
    }
  }
  const out = new Array(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = m[i][n];
    for (let c = i + 1; c < n; c++) s -= m[i][c] * out[c];
    out[i] = s / m[i][i];
  }
  return out;
}

/** Weighted ridge regression (squared loss) or logistic regression by IRLS, with an intercept. */
function linear(data: Data, logistic: boolean, lambda = 1): Model & { beta: number[] } {
  const d = data.x[0].length + 1;
  let beta = new Array(d).fill(0);
  const sumW = data.w.reduce((a, b) => a + b, 0);
  for (let iter = 0; iter < (logistic ? 25 : 1); iter++) {
    const a = Array.from({ length: d }, () => new Array(d).fill(0));
    const b = new Array(d).fill(0);
    for (let i = 0; i < data.x.length; i++) {
      const xi = [1, ...data.x[i]];
      let z = 0;
      for (let k = 0; k < d; k++) z += beta[k] * xi[k];
      let h = data.w[i];
      let g = data.w[i] * data.y[i];
      if (logistic) {
        const p = 1 / (1 + Math.exp(-z));
        const v = Math.max(p * (1 - p), 1e-6);
        h = data.w[i] * v;
        g = h * (z + (data.y[i] - p) / v); // working response
      }
      for (let k = 0; k < d; k++) {
        b[k] += g * xi[k];
        for (let l = 0; l < d; l++) a[k][l] += h * xi[k] * xi[l];
      }
    }
    for (let k = 1; k < d; k++) a[k][k] += (lambda * sumW) / 1000;
    const next = solve(a, b);
    const change = next.reduce((s, v, k) => s + Math.abs(v - beta[k]), 0);
    beta = next;
    if (change < 1e-6) break;
  }
  return {
    beta,
    predict: (x) => {
      let z = beta[0];
      for (let k = 1; k < d; k++) z += beta[k] * x[k - 1];
      return z;
    },
  };
}

/** Seeded uniform numbers (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One hidden layer of `hidden` tanh units, Adam on mini-batches, logistic or squared loss, L2 decay. */
function mlp(data: Data, logistic: boolean, hidden = 8, epochs = 40, seed = 1): Model {
  const d = data.x[0].length;
  const rnd = random(seed);
  const w1 = Float64Array.from({ length: hidden * d }, () => (rnd() - 0.5) * 2 * Math.sqrt(3 / d));
  const b1 = new Float64Array(hidden);
  const w2 = Float64Array.from({ length: hidden }, () => (rnd() - 0.5) * 2 * Math.sqrt(3 / hidden));
  const b2 = new Float64Array(1);
  const params = [w1, b1, w2, b2];
  const m = params.map((p) => new Float64Array(p.length));
  const v = params.map((p) => new Float64Array(p.length));
  const grads = params.map((p) => new Float64Array(p.length));
  const n = data.x.length;
  const order = Array.from({ length: n }, (_, i) => i);
  const batch = 2048;
  const lr = 0.01;
  const decay = 1e-4;
  let step = 0;
  const h = new Float64Array(hidden);
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let start = 0; start < n; start += batch) {
      grads.forEach((g) => g.fill(0));
      const end = Math.min(n, start + batch);
      let wsum = 0;
      for (let t = start; t < end; t++) wsum += data.w[order[t]];
      for (let t = start; t < end; t++) {
        const i = order[t];
        const x = data.x[i];
        let z = b2[0];
        for (let u = 0; u < hidden; u++) {
          let a = b1[u];
          for (let k = 0; k < d; k++) a += w1[u * d + k] * x[k];
          h[u] = Math.tanh(a);
          z += w2[u] * h[u];
        }
        const dz = (data.w[i] / wsum) * (logistic ? 1 / (1 + Math.exp(-z)) - data.y[i] : z - data.y[i]);
        grads[3][0] += dz;
        for (let u = 0; u < hidden; u++) {
          grads[2][u] += dz * h[u];
          const da = dz * w2[u] * (1 - h[u] * h[u]);
          grads[1][u] += da;
          for (let k = 0; k < d; k++) grads[0][u * d + k] += da * x[k];
        }
      }
      step++;
      params.forEach((p, q) => {
        for (let k = 0; k < p.length; k++) {
          const g = grads[q][k] + decay * p[k];
          m[q][k] = 0.9 * m[q][k] + 0.1 * g;
          v[q][k] = 0.999 * v[q][k] + 0.001 * g * g;
          p[k] -= (lr * (m[q][k] / (1 - 0.9 ** step))) / (Math.sqrt(v[q][k] / (1 - 0.999 ** step)) + 1e-8);
        }
      });
    }
  }
  return {
    predict: (x) => {
      let z = b2[0];
      for (let u = 0; u < hidden; u++) {
        let a = b1[u];
        for (let k = 0; k < d; k++) a += w1[u * d + k] * x[k];
        z += w2[u] * Math.tanh(a);
      }
      return z;
    },
  };
}

interface TreeNode {
  feature: number;
  threshold: number;
  left: TreeNode | number;
  right: TreeNode | number;
}

/** Gradient-boosted trees (depth `depth`, thresholds at 32 training quantiles), Newton leaves. */
function boosted(data: Data, logistic: boolean, rounds = 150, depth = 2, shrink = 0.1): Model {
  const d = data.x[0].length;
  const n = data.x.length;
  const bins = 32;
  const cuts = Array.from({ length: d }, (_, k) => {
    const sorted = data.x.map((r) => r[k]).sort((a, b) => a - b);
    const c = Array.from({ length: bins - 1 }, (_, q) => sorted[Math.floor(((q + 1) * n) / bins)]);
    return [...new Set(c)];
  });
  const binned = data.x.map((r) => Uint8Array.from(r, (v, k) => {
    let b = 0;
    while (b < cuts[k].length && v > cuts[k][b]) b++;
    return b;
  }));
  const f = new Float64Array(n);
  const trees: TreeNode[] = [];
  const g = new Float64Array(n);
  const hs = new Float64Array(n);
  const lambda = 1;
  const build = (rows: number[], level: number): TreeNode | number => {
    let G = 0;
    let H = 0;
    for (const i of rows) (G += g[i]), (H += hs[i]);
    const leaf = -G / (H + lambda);
    if (level === depth || rows.length < 20) return shrink * leaf;
    let best = { gain: 1e-9, feature: -1, bin: 0 };
    for (let k = 0; k < d; k++) {
      const hg = new Float64Array(bins);
      const hh = new Float64Array(bins);
      for (const i of rows) (hg[binned[i][k]] += g[i]), (hh[binned[i][k]] += hs[i]);
      let gl = 0;
      let hl = 0;
      for (let b = 0; b < cuts[k].length; b++) {
        gl += hg[b];
        hl += hh[b];
        const gain = (gl * gl) / (hl + lambda) + ((G - gl) * (G - gl)) / (H - hl + lambda) - (G * G) / (H + lambda);
        if (gain > best.gain) best = { gain, feature: k, bin: b };
      }
    }
    if (best.feature < 0) return shrink * leaf;
    const left = rows.filter((i) => binned[i][best.feature] <= best.bin);
    const right = rows.filter((i) => binned[i][best.feature] > best.bin);
    return { feature: best.feature, threshold: cuts[best.feature][best.bin], left: build(left, level + 1), right: build(right, level + 1) };
  };
  const evalTree = (t: TreeNode | number, x: ArrayLike<number>): number => (typeof t === 'number' ? t : evalTree(x[t.feature] <= t.threshold ? t.left : t.right, x));
  const all = Array.from({ length: n }, (_, i) => i);
  const base = logistic ? 0 : 0;
  f.fill(base);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < n; i++) {
      if (logistic) {
        const p = 1 / (1 + Math.exp(-f[i]));
        g[i] = data.w[i] * (p - data.y[i]);
        hs[i] = data.w[i] * Math.max(p * (1 - p), 1e-6);
      } else {
        g[i] = data.w[i] * (f[i] - data.y[i]);
        hs[i] = data.w[i];
      }
    }
    const t = build(all, 0);
    if (typeof t === 'number') break;
    trees.push(t);
    for (let i = 0; i < n; i++) f[i] += evalTree(t, data.x[i]);
  }
  return { predict: (x) => trees.reduce((s, t) => s + evalTree(t, x), base) };
}

// ---------------------------------------------------------------- study

const MODELS: Record<string, { target: Target; fit: (d: Data) => Model }> = {
  lr: { target: 'label', fit: (d) => linear(d, true) },
  ridge: { target: 'logerr', fit: (d) => linear(d, false, Number(arg('lambda', '1'))) },
  mlp: { target: 'label', fit: (d) => mlp(d, true) },
  'mlp-reg': { target: 'logerr', fit: (d) => mlp(d, false) },
  gbt: { target: 'label', fit: (d) => boosted(d, true) },
  'gbt-reg': { target: 'logerr', fit: (d) => boosted(d, false) },
  // Two stages: regress the truth's local HF energy (log), then score S² + predicted energy, the oracle's form.
  'hf-ridge': { target: 'hf', fit: (d) => linear(d, false) },
  'hf-gbt': { target: 'hf', fit: (d) => boosted(d, false) },
  'hf-mlp': { target: 'hf', fit: (d) => mlp(d, false) },
};

function trained(train: Image[], cols: number[], name: string) {
  const spec = MODELS[name];
  const raw = dataset(train, cols, spec.target);
  const { mean, std } = standardiser(raw.x);
  const z = (row: ArrayLike<number>) => Float64Array.from(cols, (_, k) => (row[k] - mean[k]) / std[k]);
  const model = spec.fit({ ...raw, x: raw.x.map(z) });
  return { model, mean, std, z, name };
}

/** Held-out AUROC of a trained model on an image, block level (model of block means) or pixel level. */
function score(im: Image, cols: number[], t: ReturnType<typeof trained>, pixel: boolean): number {
  if (MODELS[t.name].target === 'hf') return auroc(im.blockX.map((row, b) => im.sBlocks[b] + HF_WEIGHT * Math.expm1(t.model.predict(t.z(cols.map((k) => row[k]))))), im.labels);
  if (!pixel) return auroc(im.blockX.map((row) => t.model.predict(t.z(cols.map((k) => row[k])))), im.labels);
  const n = im.width * im.height;
  const out = new Float32Array(n);
  const x = new Float64Array(cols.length);
  for (let i = 0; i < n; i++) {
    cols.forEach((k, j) => (x[j] = im.planes[k][i]));
    const s = t.model.predict(t.z(x));
    out[i] = 1 / (1 + Math.exp(-s));
  }
  return auroc(blockMeans(out, im.width, im.height, 8), im.labels);
}

const HF_WEIGHT = Number(arg('hf-weight', '1'));
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

async function main() {
  const cache = arg('cache', '/tmp/map-study');
  const featureCache = '/tmp/map-learned';
  fs.mkdirSync(featureCache, { recursive: true });
  const configs = (arg('config', 'single,tta') as string).split(',') as Config[];
  const models = arg('models', Object.keys(MODELS).join(',')).split(',');
  const pixel = flag('pixel');
  const json = flag('json');
  const cases = await loadCases(arg('images', path.resolve('..', 'shared', 'images', 'hr')), cache);
  const outputs = new ModelOutputs(cache);
  const f3 = (v: number) => v.toFixed(3);
  const signed = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)}`;
  const report: Record<string, unknown> = {};
  for (const config of configs) {
    const images: Image[] = [];
    for (const c of cases) images.push(await loadImage(c, outputs, config, featureCache));
    const featureSets = arg('features', config === 'tta' ? FEATURES.join(',') : FEATURES.filter((f) => f !== 'T').join(','))
      .replace(/\ball\b/g, (config === 'tta' ? FEATURES : FEATURES.filter((f) => f !== 'T')).join(','))
      .split(';')
      .map((s) => s.split(',').map((f) => FEATURES.indexOf(f as Feature)));
    const baseline = mean(images.map((im) => im.baseline));
    const shipped = mean(images.map((im) => im.shipped));
    process.stdout.write(`\n## ${config}: ${images.length} photos, shipped map ${f3(shipped)} vs gradient ${f3(baseline)} (${signed(shipped - baseline)})\n`);
    for (const k of Object.keys(images[0].oracles)) process.stdout.write(`oracle ${k}: ${f3(mean(images.map((im) => im.oracles[k])))}\n`);
    for (const cols of featureSets) {
      for (const name of models) {
        const started = Date.now();
        const perImage = images.map((im) => {
          const t = trained(images.filter((o) => o !== im), cols, name);
          return { name: im.name, map: score(im, cols, t, pixel), baseline: im.baseline };
        });
        const folds = (['Set14', 'Set5'] as const).map((fitSet) => {
          const t = trained(images.filter((o) => o.set === fitSet), cols, name);
          const held = images.filter((o) => o.set !== fitSet);
          const m = mean(held.map((im) => score(im, cols, t, pixel)));
          return { fitOn: fitSet, map: m, baseline: mean(held.map((im) => im.baseline)) };
        });
        const m = mean(perImage.map((r) => r.map));
        const key = `${config} ${name} [${cols.map((k) => FEATURES[k]).join(',')}]${pixel ? ' pixel' : ''}`;
        report[key] = { perImage, loio: { map: m, baseline, margin: m - baseline }, folds };
        if (!json) {
          process.stdout.write(`${key}: leave-one-out ${f3(m)} vs ${f3(baseline)} (${signed(m - baseline)}), min ${f3(Math.min(...perImage.map((r) => r.map)))}; ` + folds.map((f) => `${f.fitOn}→other ${f3(f.map)} vs ${f3(f.baseline)} (${signed(f.map - f.baseline)})`).join('; ') + ` [${((Date.now() - started) / 1000).toFixed(0)} s]\n`);
          if (flag('per-image')) for (const r of perImage) process.stdout.write(`  ${r.name.padEnd(18)} ${f3(r.map)} ${f3(r.baseline)} ${signed(r.map - r.baseline)}\n`);
        }
      }
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
}

if (/map-learned\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
    process.exit(1);
  });
}
