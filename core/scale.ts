/**
 * Output-size arithmetic shared by the pipeline, the bridge's limit checks and the plugins, so a
 * plugin's "largest scale that fits" is the very rule the bridge enforces.
 */

export const SCALE_LIMITS = { min: 1, max: 16 } as const;

export interface OutputLimits {
  maxOutputSide: number;
  maxOutputPixels: number;
}

export function outputSize(width: number, height: number, scale: number): { width: number; height: number } {
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

export function fitsLimits(width: number, height: number, scale: number, limits: OutputLimits): boolean {
  const out = outputSize(width, height, scale);
  return out.width <= limits.maxOutputSide && out.height <= limits.maxOutputSide && out.width * out.height <= limits.maxOutputPixels;
}

/**
 * The largest scale (a multiple of 1/step, at most 16) whose output fits the limits, or
 * undefined when not even 1x fits. Designers read it in a message, so it is rounded down to a
 * tenth by default.
 */
export function largestFittingScale(width: number, height: number, limits: OutputLimits, step = 10): number | undefined {
  let best: number | undefined;
  for (let k = SCALE_LIMITS.min * step; k <= SCALE_LIMITS.max * step; k++) {
    if (!fitsLimits(width, height, k / step, limits)) break;
    best = k / step;
  }
  return best;
}
