/**
 * The invented-detail map: per output pixel, 0 = supported by the input, 1 = invented.
 *
 * A detail is supported when the input pins it down: reconstructions agree on it, it survives
 * flipping and turning the input, and it averages back to the input. So the map combines three
 * uncertainty signals, each a local RMS over the colour channels in 8-bit levels, over a tent
 * window of half-width 2·r output pixels (r = ⌈scale / 2⌉, about one input pixel):
 *   E_d = local RMS of (creative − fidelity)        disagreement between the two ends
 *   E_t = local RMS of the creative model's TTA spread (tta.ts), when TTA ran
 *   E_l = |input − D(creative)| per input pixel (D of degradation.ts), interpolated to output
 *         size and windowed: what the creative result changed at the input's own resolution
 * and maps their weighted root-sum-square through a saturating curve:
 *   S = √(E_d² + (2·E_t)² + E_l²),    map = 1 − exp(−S / τ),    τ = TAU_LEVELS = 24
 * so map = 0.5 at S = τ·ln 2 ≈ 16.6 levels. A signal that was not computed counts as 0. The curve
 * is absolute, not normalised per image: a result that invents nothing gets a dark map.
 *
 * τ sets how much must differ before a pixel reads as invented. On Set5 + Set14 at 4x (against
 * esrgan-medium-x4, projected) the share of pixels over 0.5 averages 0.44 for realesrgan-x4plus
 * (with TTA spread), 0.28 for realesr-general-x4v3, 0.07 for the creativity-0.5 blend and 0.08 for
 * Lanczos (which invents nothing but loses detail the fidelity result has); at τ = 8 they were
 * 0.86, 0.71, 0.49, 0.45: white maps that show nothing.
 *
 * The spread counts twice because 8 views of one model understate its uncertainty: in a sweep on
 * Set5 + Set14 the mean AUROC over the gradient baseline was +0.019 at weight 1, +0.026 at 2 and
 * +0.024 at 4; E_l added +0.002, RGB rather than luma +0.003.
 *
 * Validation (scripts/map-study.ts; evaluate.ts's protocol: the 17 Set5 + Set14 photos, ×4 bicubic
 * by sharp, 8×8 blocks, positives the top 10 % of block RMS error, baseline the output's Sobel
 * magnitude). The result is what modes.ts makes with mode=creative, map=true: G =
 * colourFix(realesrgan-x4plus), F = project(colourFix(waifu2x-cunet-2x)) (the catalogue's photo
 * fidelity model), with tta=8 both the TTA mean and G's spread (the study reproduces
 * runUpscalePlan's map bit for bit). Mean AUROC, map vs baseline (Set5 | Set14 | all):
 *   no TTA   0.968 vs 0.934 (+0.034) | 0.921 vs 0.900 (+0.021) | 0.935 vs 0.910 (+0.025)
 *   tta=8    0.947 vs 0.905 (+0.042) | 0.907 vs 0.871 (+0.036) | 0.919 vs 0.881 (+0.038)
 * With esrgan-thick-x4 as F (1.1 dB lower PSNR on these photos) they were +0.018 and +0.034: a
 * better fidelity reference is the one change that moved the margin. The 0.80 holds on
 * average and on 16 of 17 photos (Barbara's aliased stripes: 0.763 and 0.723, the baseline 0.747
 * and 0.717); its "baseline + 0.05" does not, and refitting did not get there. Also tried with
 * this F, no better held out: the disagreement between two PSNR models (F against
 * esrgan-thick-x4, `--second-fidelity`: where two regressors disagree the truth is uncertain), and
 * S scaled by a power of the output's gradient (`--products`; β from −0.5 to 2, best at 0).
 * The figures below (fits, other signals) were measured with esrgan-thick-x4 as F. The study fits the weights of S² = E_d² + w_t·E_t² + w_l·E_l² + w_f·H_F² (H_F: the local
 * high-frequency energy of F, a predictor of F's own error, since the result's error is (G − F) +
 * (F − truth)) on Set14 and tests on Set5, and the other way round: held-out +0.029 / +0.018 without
 * TTA (+0.021 over all 17), +0.038 / +0.028 with it (+0.031), no better than the hand-set weights
 * above, so they stay, and H_F stays out (it would light up texture in a result that invents nothing).
 * Signals tried that did not raise the held-out margin (fitted the same way): a second GAN
 * (realesr-general-x4v3) against G and against F; the spread of F under TTA; G under ±2-level input
 * noise; the input's and F's local variance and gradient; windows of half-width 0 to 16. A logistic
 * fit on all of these in log form gained +0.017 on the images it was fitted on. One extra run of G
 * on the transposed input (a 2-view spread for the no-TTA map, doubling the creative model's time)
 * gives +0.030 / +0.022 (+0.024). Why the margin is small: where a 4x GAN is most wrong it paints
 * texture the input cannot pin down, and its error there is about √(var G + var truth) — the local
 * texture energy, which the output's gradient already measures; the map's edge over the gradient is
 * only in telling a reconstructed edge (high gradient, small error) from invented texture. With the
 * truth's F-error added to E_d² (an oracle; 8×8 blocks, no TTA) the AUROC is 0.985: predicting F's
 * error is what is missing.
 */
import { colourChannels, createRaster, Raster } from '../raster';
import { UpbridgeError } from '../errors';
import { applyColumns, applyRows, linearAxis } from './axis';
import { degrade } from './degradation';
import { tentMean } from './filters';
import { checkSameSize, FloatImage, toFloat } from './image';

/** Local RMS that maps to 1 − 1/e ≈ 0.63; 0.5 is reached at τ·ln 2. */
export const TAU_LEVELS = 24;

/** The spread's weight in the sum of squares: (2·E_t)². */
const SPREAD_WEIGHT = 4;

/** Per pixel, the mean over the colour channels of (a − b)², in 8-bit levels². */
function meanSquaredLevels(a: FloatImage, b: FloatImage): Float32Array {
  const out = new Float32Array(a.width * a.height);
  const k = (255 * 255) / a.planes.length;
  a.planes.forEach((p, c) => {
    const q = b.planes[c];
    for (let i = 0; i < out.length; i++) out[i] += k * (p[i] - q[i]) ** 2;
  });
  return out;
}

export interface MapSignals {
  /** The input, at its own size. */
  input: Raster;
  /** The result whose invented detail is mapped (the creative result), at output size. */
  creative: Raster;
  /** The fidelity result at output size: the disagreement signal. */
  fidelity?: Raster;
  /** The creative model's TTA spread (TtaResult.spread), 0..1 per output pixel. */
  spread?: Float32Array;
}

/** A single-channel float image, 0..1. */
export interface DetailMap {
  width: number;
  height: number;
  data: Float32Array;
}

export interface SignalPlanes {
  width: number;
  height: number;
  /** Squared local RMS per output pixel, in levels², one per signal, weighted (zeros where absent). */
  disagreement: Float32Array;
  spread: Float32Array;
  inconsistency: Float32Array;
}

/** The three windowed signals, squared (summable), before the curve. */
export function mapSignals(signals: MapSignals): SignalPlanes {
  const { input, creative } = signals;
  if (colourChannels(input.channels) !== colourChannels(creative.channels)) throw new UpbridgeError('UPB_INTERNAL', 'detail map: input and result differ in colour channels');
  const width = creative.width;
  const height = creative.height;
  const radius = Math.max(1, Math.ceil(width / input.width / 2));
  const n = width * height;
  const creativeFloat = toFloat(creative);
  const window = (squared: Float32Array) => tentMean(squared, width, height, radius);

  let disagreement: Float32Array = new Float32Array(n);
  if (signals.fidelity) {
    checkSameSize(signals.fidelity, creative, 'detail map (fidelity)');
    disagreement = window(meanSquaredLevels(creativeFloat, toFloat(signals.fidelity)));
  }

  let spread: Float32Array = new Float32Array(n);
  if (signals.spread) {
    if (signals.spread.length !== n) throw new UpbridgeError('UPB_INTERNAL', `detail map: spread has ${signals.spread.length} pixels, the result ${n}`);
    for (let i = 0; i < n; i++) spread[i] = SPREAD_WEIGHT * (255 * signals.spread[i]) ** 2;
    spread = window(spread);
  }

  const lrSquared = meanSquaredLevels(degrade(creativeFloat, input.width, input.height), toFloat(input));
  const up = applyColumns(applyRows(lrSquared, input.width, input.height, linearAxis(input.width, width)), width, input.height, linearAxis(input.height, height));
  const inconsistency = window(up);
  return { width, height, disagreement, spread, inconsistency };
}

/** The map of the module comment. */
export function inventedDetailMap(signals: MapSignals, tau = TAU_LEVELS): DetailMap {
  const s = mapSignals(signals);
  const data = new Float32Array(s.width * s.height);
  for (let i = 0; i < data.length; i++) {
    const rms = Math.sqrt(s.disagreement[i] + s.spread[i] + s.inconsistency[i]);
    data[i] = 1 - Math.exp(-rms / tau);
  }
  return { width: s.width, height: s.height, data };
}

/** The map as an 8-bit grey raster (0 black = supported, 255 white = invented), for PNG and overlays. */
export function mapToRaster(map: DetailMap): Raster {
  const out = createRaster(map.width, map.height, 1, 8);
  for (let i = 0; i < map.data.length; i++) out.data[i] = Math.round(Math.min(1, Math.max(0, map.data[i])) * 255);
  return out;
}

export interface MapRegion {
  /** Bounding box in output pixels. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Pixels over the threshold in this region (8-connected). */
  pixels: number;
}

export interface MapSummary {
  mean: number;
  /** Share of pixels over 0.5. */
  shareOver: number;
  /** The largest connected regions over 0.5, largest first. */
  regions: MapRegion[];
}

export const SUMMARY_THRESHOLD = 0.5;

/** Mean, share over 0.5, and the bounding boxes of the `top` largest 8-connected regions over 0.5. */
export function summary(map: DetailMap, top = 5): MapSummary {
  const { width, height, data } = map;
  let total = 0;
  let over = 0;
  for (let i = 0; i < data.length; i++) {
    total += data[i];
    if (data[i] > SUMMARY_THRESHOLD) over++;
  }
  // Flood fill with an explicit stack: regions can be millions of pixels.
  const seen = new Uint8Array(data.length);
  const stack = new Int32Array(data.length);
  const regions: MapRegion[] = [];
  for (let start = 0; start < data.length; start++) {
    if (seen[start] || !(data[start] > SUMMARY_THRESHOLD)) continue;
    let size = 0;
    stack[size++] = start;
    seen[start] = 1;
    let x0 = width;
    let y0 = height;
    let x1 = -1;
    let y1 = -1;
    let pixels = 0;
    while (size > 0) {
      const p = stack[--size];
      const x = p % width;
      const y = (p - x) / width;
      pixels++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (!seen[q] && data[q] > SUMMARY_THRESHOLD) {
            seen[q] = 1;
            stack[size++] = q;
          }
        }
      }
    }
    regions.push({ x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1, pixels });
  }
  regions.sort((a, b) => b.pixels - a.pixels || a.y - b.y || a.x - b.x);
  return { mean: data.length ? total / data.length : 0, shareOver: data.length ? over / data.length : 0, regions: regions.slice(0, top) };
}
