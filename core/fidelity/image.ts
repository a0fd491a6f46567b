import { UpbridgeError } from '../errors';
import { colourChannels, createRaster, maxValue, Raster } from '../raster';

/**
 * The fidelity tools compute in floats, one plane per colour channel, on a 0..1 scale: the
 * projection and the blends must not round between steps, and planes make the separable
 * operators (rows, then columns) simple. Alpha is not a plane here: it stays with the raster.
 */
export interface FloatImage {
  width: number;
  height: number;
  planes: Float32Array[];
}

export function createFloatImage(width: number, height: number, channels: number): FloatImage {
  return { width, height, planes: Array.from({ length: channels }, () => new Float32Array(width * height)) };
}

/**
 * The colour channels of a raster (1 for grey, 3 for RGB) as 0..1 planes, or as the raw levels
 * (0..255, 0..65535) where a measurement wants sums without rounding (float32 holds every level
 * exactly, and a box mean of power-of-two size stays exact).
 */
export function toFloat(raster: Raster, range: 'unit' | 'levels' = 'unit'): FloatImage {
  const channels = colourChannels(raster.channels);
  const out = createFloatImage(raster.width, raster.height, channels);
  const scale = range === 'unit' ? 1 / maxValue(raster.depth) : 1;
  const n = raster.width * raster.height;
  for (let c = 0; c < channels; c++) {
    const plane = out.planes[c];
    for (let i = 0; i < n; i++) plane[i] = raster.data[i * raster.channels + c] * scale;
  }
  return out;
}

/**
 * A raster like `like` (its size, channels, depth and alpha) whose colour channels are `image`,
 * clipped to 0..1 and rounded: how every fidelity step hands its result back to the pipeline.
 */
export function toRaster(image: FloatImage, like: Raster): Raster {
  checkSameSize(image, like, 'toRaster');
  const out = createRaster(like.width, like.height, like.channels, like.depth);
  out.data.set(like.data);
  const max = maxValue(like.depth);
  const n = like.width * like.height;
  for (let c = 0; c < image.planes.length; c++) {
    const plane = image.planes[c];
    for (let i = 0; i < n; i++) {
      const v = Math.round(plane[i] * max);
      out.data[i * like.channels + c] = v < 0 ? 0 : v > max ? max : v;
    }
  }
  return out;
}

/**
 * Luma on 0..1 with the BT.601 weights (full range). The maps and the content heuristic only rank
 * and threshold it, so the studio-range offset of the PSNR protocol's luma would add nothing.
 */
export function luma(image: FloatImage): Float32Array {
  if (image.planes.length === 1) return image.planes[0];
  const [r, g, b] = image.planes;
  const out = new Float32Array(r.length);
  for (let i = 0; i < out.length; i++) out[i] = 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i];
  return out;
}

/** Rasters or images that a step combines pixel by pixel must agree in size (a bug, not user input). */
export function checkSameSize(a: { width: number; height: number }, b: { width: number; height: number }, what: string): void {
  if (a.width !== b.width || a.height !== b.height) {
    throw new UpbridgeError('UPB_INTERNAL', `${what}: ${a.width}×${a.height} vs ${b.width}×${b.height}`);
  }
}

export function checkSameChannels(a: FloatImage, b: FloatImage, what: string): void {
  if (a.planes.length !== b.planes.length) throw new UpbridgeError('UPB_INTERNAL', `${what}: ${a.planes.length} vs ${b.planes.length} colour channels`);
}
