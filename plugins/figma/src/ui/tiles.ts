/**
 * Cutting a result that is larger than a Figma image (4096 px a side) into a grid of tiles, over
 * raw pixels: no canvas, so the same code runs in Figma's iframe and in the tests, and the pixels
 * are copied exactly. Tiles are balanced (a 4120 px row is two tiles of 2060, not 4096 and a
 * 24 px sliver) and sit at whole pixels, so the grid has no seams.
 */
import type { ImagePiece } from '../common/messages';
import { encodePng, RawPixels } from './png-encode';

export interface TileRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Row-major rectangles of at most `maxSide` px covering width × height exactly. */
export function tileGrid(width: number, height: number, maxSide: number): TileRect[] {
  const xs = balancedSpans(width, maxSide);
  const ys = balancedSpans(height, maxSide);
  return ys.flatMap((row) => xs.map((col) => ({ x: col.start, y: row.start, width: col.size, height: row.size })));
}

function balancedSpans(length: number, maxSide: number): Array<{ start: number; size: number }> {
  const count = Math.ceil(length / maxSide);
  const spans = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    // Spread the remainder over the first spans so no two differ by more than a pixel.
    const size = Math.floor(length / count) + (i < length % count ? 1 : 0);
    spans.push({ start, size });
    start += size;
  }
  return spans;
}

export function crop(pixels: RawPixels, rect: TileRect): RawPixels {
  const bpp = (pixels.channels * pixels.depth) / 8;
  const rowBytes = rect.width * bpp;
  const data = new Uint8Array(rowBytes * rect.height);
  for (let y = 0; y < rect.height; y++) {
    const from = ((rect.y + y) * pixels.width + rect.x) * bpp;
    data.set(pixels.data.subarray(from, from + rowBytes), y * rowBytes);
  }
  return { width: rect.width, height: rect.height, channels: pixels.channels, depth: pixels.depth, data };
}

export function cutIntoPngTiles(pixels: RawPixels, maxSide: number): ImagePiece[] {
  return tileGrid(pixels.width, pixels.height, maxSide).map((rect) => ({ ...rect, bytes: encodePng(crop(pixels, rect)) }));
}
