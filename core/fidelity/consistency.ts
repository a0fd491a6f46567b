/**
 * LR-consistency: make the result agree with the input under the degradation D of
 * degradation.ts, as DDNM's range–null split does: x' = x + U(y − D(x)). D(x') = D(x) + (y − D(x))
 * = y, because U is a right inverse of D. DDNM takes U = D's pseudo-inverse, whose correction lies
 * wholly in the range of Dᵀ and leaves the model's null-space content (the detail that averages
 * out under each input pixel) exactly as it was; for area averaging that correction is constant
 * over each footprint: blocks. Here U is the smooth right inverse (linear interpolation,
 * pre-compensated), so the correction is piecewise linear and slowly varying; it touches the
 * null space only with that smooth ramp, and the model's fine detail stays.
 *
 * The exact step can leave 0..1 where the model's detail sits next to black or white, and
 * clipping then breaks D(x') = y there. A few rounds of project-then-clip (POCS) pull most of it
 * back, but slowly: each round's smooth correction spreads into neighbours that clip again. So a
 * local settle finishes the job: each input pixel still off moves its own footprint toward the
 * bound it needs, which is exact and stays within 0..1. What remains is the rounding to the
 * raster's bit depth, which D averages away (at 4x: ±½ level over 16 pixels, ≈ 0.07 level RMS,
 * about 70 dB).
 */
import { maxValue, Raster } from '../raster';
import { areaAxis } from './axis';
import { checkScale, degrade, lift } from './degradation';
import { checkSameChannels, FloatImage, toFloat, toRaster } from './image';

/**
 * Rounds of smooth project-then-clip, at most. The first does all the work where nothing clips;
 * the others pull back what the clip took where the model's detail sits next to black or white,
 * until a round lowers the RMS residual by less than 1 − STALL. At integer scales the settle
 * below is exact whatever is left, so a few rounds only keep its (blockier) share small. At
 * fractional scales it is not, and rounds are what counts: measured on the noisy foliage fixture
 * (realesr-general-x4v3, 2.5x) 3 rounds leave 42.9 dB, 6 45.3, 12 47.3, 24 48.4.
 */
const SMOOTH_ROUNDS = { integer: 3, fractional: 16 };
const STALL = 0.97;

/** Sweeps of the local settle (see settle()); footprints overlap only at fractional scales. */
const SETTLE_SWEEPS = 4;

/**
 * Stops once no input pixel is off by more than this fraction of a level: the rounding to the
 * output depth is already larger.
 */
const TOLERANCE_LEVELS = 0.05;

export interface Projection {
  image: FloatImage;
  /** Smooth rounds run (each one D, one U and a clip). */
  rounds: number;
  /** Largest |y − D(x)| after the smooth rounds, before the local settle, in input levels. */
  smoothResidualLevels: number;
  /** Largest |y − D(x)| left at the end (before rounding to the output depth), in input levels. */
  residualLevels: number;
}

/** y − D(x) per plane, its largest magnitude and its RMS. */
function residual(x: FloatImage, input: FloatImage): { planes: Float32Array[]; worst: number; rms: number } {
  const down = degrade(x, input.width, input.height);
  let worst = 0;
  let squared = 0;
  const planes = down.planes.map((p, c) => {
    const plane = new Float32Array(p.length);
    for (let i = 0; i < p.length; i++) {
      const r = (plane[i] = input.planes[c][i] - p[i]);
      worst = Math.max(worst, Math.abs(r));
      squared += r * r;
    }
    return plane;
  });
  return { planes, worst, rms: Math.sqrt(squared / (planes.length * input.width * input.height)) };
}

/** The projection on float images: `input` at LR size, `result` at output size, both 0..1. */
export function projectFloat(result: FloatImage, input: FloatImage, inputMax = 255): Projection {
  checkSameChannels(result, input, 'projectToInput');
  const tolerance = TOLERANCE_LEVELS / inputMax;
  let x = result;
  let rounds = 0;
  let r = residual(x, input);
  const integer = result.width % input.width === 0 && result.height % input.height === 0;
  const maxRounds = integer ? SMOOTH_ROUNDS.integer : SMOOTH_ROUNDS.fractional;
  while (r.worst > tolerance && rounds < maxRounds) {
    const correction = lift({ width: input.width, height: input.height, planes: r.planes }, x.width, x.height);
    const before = { x, r };
    x = {
      width: x.width,
      height: x.height,
      planes: x.planes.map((p, c) => {
        const out = new Float32Array(p.length);
        const d = correction.planes[c];
        for (let i = 0; i < p.length; i++) {
          const v = p[i] + d[i];
          out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
        return out;
      }),
    };
    rounds++;
    r = residual(x, input);
    // U is not an orthogonal projection, so with the clip a round can (rarely) make things worse.
    if (r.rms > before.r.rms) ({ x, r } = before);
    if (r.rms > STALL * before.r.rms) break;
  }
  const smoothResidualLevels = r.worst * inputMax;
  if (r.worst > tolerance) {
    x = settle(x, input, tolerance);
    r = residual(x, input);
  }
  return { image: x, rounds, smoothResidualLevels, residualLevels: r.worst * inputMax };
}

/**
 * The exact finish where clipping kept the smooth rounds from converging (input pixels at or near
 * 0 or max under model detail). Each input pixel still off by more than the tolerance moves the
 * output pixels of its footprint toward the bound it needs, in proportion to their room to move
 * (1 − v up, v down): its mean then matches exactly and nothing leaves 0..1, because the footprint
 * all at the bound would reach any value in 0..1. It touches only the footprints the smooth rounds
 * left, so the result stays smooth elsewhere.
 *
 * First only the output pixels wholly inside one footprint move: those updates are independent,
 * and at integer scales (every pixel is wholly inside one) one sweep is exact. At fractional
 * scales footprints share their edge pixels, and two neighbours pulling a shared pixel to opposite
 * bounds can have no common solution (255 next to 0 at 2.5x), so sweeps over all pixels run only
 * while they lower the total squared error, and the last one is undone if it did not.
 */
function settle(image: FloatImage, input: FloatImage, tolerance: number): FloatImage {
  const xs = areaAxis(image.width, input.width);
  const ys = areaAxis(image.height, input.height);
  const xWhole = input.width / image.width;
  const yWhole = input.height / image.height;
  const W = image.width;
  let planes = image.planes.map((p) => p.slice());

  /** One Gauss–Seidel sweep over the input pixels, in raster order. */
  const sweep = (wholeOnly: boolean): void => {
    planes.forEach((plane, c) => {
      const target = input.planes[c];
      for (let j = 0; j < input.height; j++) {
        for (let i = 0; i < input.width; i++) {
          let mean = 0;
          for (let a = ys.start[j]; a < ys.start[j + 1]; a++) {
            for (let b = xs.start[i]; b < xs.start[i + 1]; b++) mean += ys.weight[a] * xs.weight[b] * plane[ys.index[a] * W + xs.index[b]];
          }
          const r = target[j * input.width + i] - mean;
          if (Math.abs(r) <= tolerance) continue;
          const moves = (a: number, b: number) => !wholeOnly || (ys.weight[a] === yWhole && xs.weight[b] === xWhole);
          let room = 0;
          for (let a = ys.start[j]; a < ys.start[j + 1]; a++) {
            for (let b = xs.start[i]; b < xs.start[i + 1]; b++) {
              if (!moves(a, b)) continue;
              const v = plane[ys.index[a] * W + xs.index[b]];
              room += ys.weight[a] * xs.weight[b] * (r > 0 ? 1 - v : v);
            }
          }
          if (room <= 0) continue;
          const share = Math.min(1, Math.abs(r) / room);
          for (let a = ys.start[j]; a < ys.start[j + 1]; a++) {
            for (let b = xs.start[i]; b < xs.start[i + 1]; b++) {
              if (!moves(a, b)) continue;
              const k = ys.index[a] * W + xs.index[b];
              plane[k] += r > 0 ? share * (1 - plane[k]) : -share * plane[k];
            }
          }
        }
      }
    });
  };
  const rmsError = () => residual({ width: image.width, height: image.height, planes }, input).rms;

  sweep(true);
  let error = rmsError();
  for (let k = 0; k < SETTLE_SWEEPS && error > 0; k++) {
    const before = planes.map((p) => p.slice());
    sweep(false);
    const after = rmsError();
    if (after >= error) {
      planes = before;
      break;
    }
    error = after;
  }
  return { width: image.width, height: image.height, planes };
}

/**
 * The result made consistent with the input: D(projectToInput(result, input)) equals the input up
 * to the rounding of the result's bit depth. Colour channels only; alpha is kept as it is.
 * `scale`, when given, is checked against the sizes.
 */
export function projectToInput(result: Raster, input: Raster, scale?: number): Raster {
  if (scale !== undefined) checkScale(result, input, scale);
  return toRaster(projectFloat(toFloat(result), toFloat(input), maxValue(input.depth)).image, result);
}
