import { AxisPlan } from './tiler';

/**
 * Feathered blending. Along each axis, a tile's weight is 1 inside its core and falls to 0 across
 * a ramp centred on each inner core boundary with a half-sine profile (sin² rising, its
 * complement falling, the window chaiNNer uses). Neighbours' weights are exact complements, so
 * the 2-D product weights of all tiles sum to one at every output pixel: no seams, no dimming.
 *
 * Returns the weights for tile `index` over output coordinates [start, end).
 */
export function axisWeights(plan: AxisPlan, index: number, scale: number): { start: number; weights: Float64Array } {
  const { boundaries, rampOut } = plan;
  const last = boundaries.length - 2;
  const lengthOut = boundaries[boundaries.length - 1] * scale;
  const start = index === 0 ? 0 : boundaries[index] * scale - rampOut;
  const end = index === last ? lengthOut : boundaries[index + 1] * scale + rampOut;
  const weights = new Float64Array(end - start);
  for (let x = start; x < end; x++) {
    let w = 1;
    if (index > 0) w *= rising(x, boundaries[index] * scale, rampOut);
    if (index < last) w *= 1 - rising(x, boundaries[index + 1] * scale, rampOut);
    weights[x - start] = w;
  }
  return { start, weights };
}

/** Weight of the tile to the right of `edge` at pixel x: 0 before the ramp, 1 after it. */
function rising(x: number, edge: number, rampOut: number): number {
  if (x < edge - rampOut) return 0;
  if (x >= edge + rampOut) return 1;
  const t = (x + 0.5 - (edge - rampOut)) / (2 * rampOut);
  const s = Math.sin((Math.PI * t) / 2);
  return s * s;
}
