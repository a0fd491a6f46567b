/**
 * A PNG encoder over raw pixels, for the tiles of results larger than a Figma image. A canvas
 * could encode too, but it premultiplies alpha (semi-transparent pixels come back changed) and
 * does not exist in the tests; this writes exactly the pixels it is given, 8 or 16 bits, with
 * fflate's deflate. Rows are filtered with the usual adaptive heuristic (the filter whose output
 * has the smallest sum of absolute values), as libpng does.
 */
import { zlibSync } from 'fflate';
import type { BitDepth, ChannelCount } from '../../../../core/raster';
import { pngChunk } from '../../../../core/png-chunk';

/** Interleaved pixels as bytes; 16-bit samples little-endian, as the bridge sends raw results. */
export interface RawPixels {
  width: number;
  height: number;
  channels: ChannelCount;
  depth: BitDepth;
  data: Uint8Array;
}

const COLOUR_TYPE: Record<ChannelCount, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function encodePng(pixels: RawPixels, level: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 = 6): Uint8Array {
  const { width, height, channels, depth, data } = pixels;
  const bpp = (channels * depth) / 8;
  const rowBytes = width * bpp;
  if (data.length !== rowBytes * height) throw new Error(`${width}×${height}×${channels} at ${depth} bits is ${rowBytes * height} bytes; got ${data.length}`);

  const filtered = new Uint8Array((rowBytes + 1) * height);
  let previous = new Uint8Array(rowBytes);
  let current = new Uint8Array(rowBytes);
  const candidates = [0, 1, 2, 3, 4].map(() => new Uint8Array(rowBytes));
  for (let y = 0; y < height; y++) {
    const row = data.subarray(y * rowBytes, (y + 1) * rowBytes);
    if (depth === 16) {
      // PNG stores 16-bit samples big-endian.
      for (let i = 0; i < rowBytes; i += 2) {
        current[i] = row[i + 1];
        current[i + 1] = row[i];
      }
    } else {
      current.set(row);
    }
    let best = 0;
    let bestSum = Infinity;
    for (let type = 0; type < 5; type++) {
      const sum = filterRow(type, current, previous, bpp, candidates[type]);
      if (sum < bestSum) {
        bestSum = sum;
        best = type;
      }
    }
    filtered[y * (rowBytes + 1)] = best;
    filtered.set(candidates[best], y * (rowBytes + 1) + 1);
    [previous, current] = [current, previous];
  }

  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = depth;
  header[9] = COLOUR_TYPE[channels];
  // compression 0, filter method 0, no interlace: the remaining bytes stay 0
  return concat([new Uint8Array(SIGNATURE), pngChunk('IHDR', header), pngChunk('IDAT', zlibSync(filtered, { level })), pngChunk('IEND', new Uint8Array(0))]);
}

/** Writes one filter type's output into `out`; returns the heuristic's cost of that output. */
function filterRow(type: number, row: Uint8Array, above: Uint8Array, bpp: number, out: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp] : 0;
    const b = above[i];
    const c = i >= bpp ? above[i - bpp] : 0;
    let predicted = 0;
    if (type === 1) predicted = a;
    else if (type === 2) predicted = b;
    else if (type === 3) predicted = (a + b) >> 1;
    else if (type === 4) predicted = paeth(a, b, c);
    const value = (row[i] - predicted) & 0xff;
    out[i] = value;
    sum += value < 128 ? value : 256 - value;
  }
  return sum;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}


function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

