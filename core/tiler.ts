/**
 * Tile planning. The image is cut into cores of at most `tile` input pixels (balanced, so there
 * is no sliver tile at the end); each core is inferred with `overlap` pixels of context on each
 * side, read by mirroring at the image borders, and cores are feathered together over a ramp
 * centred on their shared edge (see blend.ts).
 */
export interface AxisPlan {
  /** Core boundaries, boundaries[0] = 0 … boundaries[n] = length. */
  boundaries: number[];
  /** Half-width of the blend ramp around each inner boundary, in output pixels. */
  rampOut: number;
}

function tilesAlong(length: number, tile: number): number {
  return Math.max(1, Math.ceil(length / tile));
}

export function planAxis(length: number, tile: number, overlap: number, scale: number): AxisPlan {
  const count = tilesAlong(length, tile);
  const boundaries = Array.from({ length: count + 1 }, (_, i) => Math.round((i * length) / count));
  let minCore = length;
  for (let i = 0; i < count; i++) minCore = Math.min(minCore, boundaries[i + 1] - boundaries[i]);
  // The ramp uses half the context, so every blended pixel still had overlap/2 pixels of context;
  // it never exceeds half a core, so at most one ramp covers any pixel and weights sum to one.
  const rampOut = count === 1 ? 0 : Math.min(Math.floor((overlap * scale) / 2), Math.floor((minCore * scale) / 2));
  return { boundaries, rampOut };
}

export function tileCount(width: number, height: number, tile: number): number {
  return tilesAlong(width, tile) * tilesAlong(height, tile);
}

/**
 * Reflect-101 (mirror without repeating the edge pixel), periodic for any distance, so context
 * wider than the image (tiny images, 1×N strips) still reads real pixels.
 */
export function mirrorIndex(i: number, length: number): number {
  if (length === 1) return 0;
  const period = 2 * (length - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < length ? m : period - m;
}
