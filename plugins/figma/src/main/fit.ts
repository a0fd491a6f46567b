/**
 * Which scale an image gets: the one asked for when its output fits, otherwise the largest that
 * fits (rounded down to a tenth, the rule the bridge enforces: core/scale.ts).
 */
import { fitsLimits, largestFittingScale, OutputLimits } from '../../../../core/scale';
import { FIGMA_MAX_IMAGE_SIDE } from '../common/messages';

export interface ScaleChoice {
  scale: number;
  /** Less than asked for, because of the limits. */
  clamped: boolean;
}

/** Undefined when not even a gain of a tenth fits: nothing worth doing. */
export function fitScale(width: number, height: number, requested: number, limits: OutputLimits): ScaleChoice | undefined {
  if (fitsLimits(width, height, requested, limits)) return { scale: requested, clamped: false };
  const best = largestFittingScale(width, height, limits);
  if (best === undefined || best <= 1) return undefined;
  return { scale: best, clamped: true };
}

/** What an image fill may become: Figma's 4096 px ceiling, or the bridge's own if lower. */
export function fillLimits(bridge: OutputLimits): OutputLimits {
  return {
    maxOutputSide: Math.min(FIGMA_MAX_IMAGE_SIDE, bridge.maxOutputSide),
    maxOutputPixels: Math.min(FIGMA_MAX_IMAGE_SIDE * FIGMA_MAX_IMAGE_SIDE, bridge.maxOutputPixels),
  };
}

/** "4x", "3.2x": how scales read in names and messages. */
export function formatScale(scale: number): string {
  return `${Number(scale.toFixed(2))}x`;
}
