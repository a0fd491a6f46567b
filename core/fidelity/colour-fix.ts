/**
 * The wavelet colour fix of SUPIR (`wavelet_reconstruction`) and chaiNNer ("Wavelet Color Fix"):
 * split the result into a high-frequency band and a low-frequency residue with a few levels of
 * à-trous blur, and put the input's low-frequency residue (from the input enlarged to the same
 * size) under the result's high band. A model that shifts colours or tone shifts them smoothly,
 * so the low band is where the drift lives, and the detail it drew stays.
 *
 * The blur is theirs: a 3×3 [¼ ½ ¼]² kernel whose taps are 2^level pixels apart, with the edge
 * pixel repeated beyond the border (their replicate padding), 5 levels by default, so the low band
 * holds structures wider than about 2⁵·2 = 64 output pixels (16 input pixels at 4x).
 */
import { Raster } from '../raster';
import { Resampler } from '../upscale';
import { integerInRange } from '../validate';
import { checkSameChannels, checkSameSize, FloatImage, toFloat, toRaster } from './image';

export const COLOUR_FIX_LEVELS = { min: 1, max: 8, default: 5 } as const;

/** One à-trous level along both axes: taps at −d, 0, +d with weights ¼, ½, ¼, edges repeated. */
function atrousBlur(plane: Float32Array, width: number, height: number, d: number): Float32Array {
  const rows = new Float32Array(plane.length);
  for (let y = 0; y < height; y++) {
    const o = y * width;
    for (let x = 0; x < width; x++) {
      rows[o + x] = 0.5 * plane[o + x] + 0.25 * (plane[o + Math.max(0, x - d)] + plane[o + Math.min(width - 1, x + d)]);
    }
  }
  const out = new Float32Array(plane.length);
  for (let y = 0; y < height; y++) {
    const up = Math.max(0, y - d) * width;
    const down = Math.min(height - 1, y + d) * width;
    const o = y * width;
    for (let x = 0; x < width; x++) out[o + x] = 0.5 * rows[o + x] + 0.25 * (rows[up + x] + rows[down + x]);
  }
  return out;
}

/** The low-frequency residue after `levels` à-trous levels (dilations 1, 2, 4, …). */
export function lowFrequency(plane: Float32Array, width: number, height: number, levels: number): Float32Array {
  let low = plane;
  for (let level = 0; level < levels; level++) low = atrousBlur(low, width, height, 2 ** level);
  return low;
}

/** result − low(result) + low(reference), per colour channel, unclipped. */
export function colourFixFloat(result: FloatImage, reference: FloatImage, levels: number = COLOUR_FIX_LEVELS.default): FloatImage {
  checkSameSize(result, reference, 'colourFix');
  checkSameChannels(result, reference, 'colourFix');
  const planes = result.planes.map((plane, c) => {
    const ownLow = lowFrequency(plane, result.width, result.height, levels);
    const referenceLow = lowFrequency(reference.planes[c], result.width, result.height, levels);
    const out = new Float32Array(plane.length);
    for (let i = 0; i < out.length; i++) out[i] = plane[i] - ownLow[i] + referenceLow[i];
    return out;
  });
  return { width: result.width, height: result.height, planes };
}

/**
 * The colour fix against a reference at the result's size (the input enlarged, e.g. by Lanczos).
 * Colour channels only; alpha is the result's. `levels` is validated (UPB_INVALID_OPTION).
 */
export function waveletColourFix(result: Raster, reference: Raster, levels: unknown = COLOUR_FIX_LEVELS.default): Raster {
  const n = integerInRange('colourFixLevels', levels, COLOUR_FIX_LEVELS.min, COLOUR_FIX_LEVELS.max);
  return toRaster(colourFixFloat(toFloat(result), toFloat(reference), n), result);
}

/** The colour fix against the input itself, enlarged to the result's size by the runtime's Lanczos. */
export async function colourFixToInput(result: Raster, input: Raster, resampler: Resampler, levels: unknown = COLOUR_FIX_LEVELS.default): Promise<Raster> {
  const reference = await resampler.resize(input, result.width, result.height);
  return waveletColourFix(result, reference, levels);
}
