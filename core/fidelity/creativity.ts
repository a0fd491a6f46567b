/**
 * `creativity`: one dial between the fidelity result (0) and the creative result (1).
 *
 * The blend is linear in pixel values, fidelity + c·(creative − fidelity), per sample:
 * - c = 0 and c = 1 give the two results exactly;
 * - each sample moves monotonically from one end to the other, so every distance to the fidelity
 *   end (L1, L2, PSNR) grows and every distance to the creative end shrinks as c grows, rounding
 *   included (rounding is monotonic, and the ends are integers already);
 * - D is linear, so when both ends are LR-consistent (projected) every blend is too: a designer
 *   can dial texture up without the image drifting from the input.
 * Blending only the high-frequency part of the difference was considered: it would keep the
 * fidelity result's tones at c = 1, so c = 1 would not be the creative result the mode promises.
 */
import { ModelMode } from '../catalogue';
import { Raster } from '../raster';
import { numberInRange } from '../validate';
import { checkSameChannels, checkSameSize, FloatImage, toFloat, toRaster } from './image';

export const CREATIVITY_LIMITS = { min: 0, max: 1 } as const;

/**
 * The dial's default per mode. Only the ends need one model; a value in between runs both the
 * fidelity and the creative pipeline and blends them.
 */
export const DEFAULT_CREATIVITY: Record<ModelMode, number> = { fidelity: 0, balanced: 0.5, creative: 1 };

export function validateCreativity(value: unknown): number {
  return numberInRange('creativity', value, CREATIVITY_LIMITS.min, CREATIVITY_LIMITS.max);
}

export function blendFloat(fidelity: FloatImage, creative: FloatImage, creativity: number): FloatImage {
  checkSameSize(fidelity, creative, 'blendCreativity');
  checkSameChannels(fidelity, creative, 'blendCreativity');
  const planes = fidelity.planes.map((f, c) => {
    const k = creative.planes[c];
    const out = new Float32Array(f.length);
    for (let i = 0; i < out.length; i++) out[i] = f[i] + creativity * (k[i] - f[i]);
    return out;
  });
  return { width: fidelity.width, height: fidelity.height, planes };
}

/**
 * The blend at `creativity` (validated: a number from 0 to 1, else UPB_INVALID_OPTION). Colour
 * channels; alpha, size and depth are the fidelity result's.
 */
export function blendCreativity(fidelity: Raster, creative: Raster, creativity: unknown): Raster {
  const c = validateCreativity(creativity);
  return toRaster(blendFloat(toFloat(fidelity), toFloat(creative), c), fidelity);
}
