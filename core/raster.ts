/**
 * An interleaved image in memory, as codecs and host APIs (Photoshop imaging, canvas) give it.
 * 8-bit data is a Uint8Array, 16-bit a Uint16Array; channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
 */
export type BitDepth = 8 | 16;
export type ChannelCount = 1 | 2 | 3 | 4;

export interface Raster {
  width: number;
  height: number;
  channels: ChannelCount;
  depth: BitDepth;
  data: Uint8Array | Uint16Array;
}

export function maxValue(depth: BitDepth): number {
  return depth === 16 ? 65535 : 255;
}

export function hasAlpha(channels: ChannelCount): boolean {
  return channels === 2 || channels === 4;
}

export function colourChannels(channels: ChannelCount): number {
  return channels >= 3 ? 3 : 1;
}

export function createRaster(width: number, height: number, channels: ChannelCount, depth: BitDepth): Raster {
  const length = width * height * channels;
  return { width, height, channels, depth, data: depth === 16 ? new Uint16Array(length) : new Uint8Array(length) };
}

/** One channel of a raster as its own 1-channel raster. */
export function extractChannel(raster: Raster, channel: number): Raster {
  const out = createRaster(raster.width, raster.height, 1, raster.depth);
  const n = raster.width * raster.height;
  for (let i = 0; i < n; i++) out.data[i] = raster.data[i * raster.channels + channel];
  return out;
}

/** Writes a 1-channel raster of the same size and depth into one channel of `target`. */
export function insertChannel(target: Raster, channel: number, plane: Raster): void {
  const n = target.width * target.height;
  for (let i = 0; i < n; i++) target.data[i * target.channels + channel] = plane.data[i];
}

export function fillChannel(target: Raster, channel: number, value: number): void {
  for (let i = channel; i < target.data.length; i += target.channels) target.data[i] = value;
}

/** The same raster at another bit depth (8 ↔ 16, exact scaling by 257); the raster itself when equal. */
export function convertDepth(raster: Raster, depth: BitDepth): Raster {
  if (raster.depth === depth) return raster;
  const data = depth === 16 ? Uint16Array.from(raster.data, (v) => v * 257) : Uint8Array.from(raster.data, (v) => Math.round(v / 257));
  return { ...raster, depth, data };
}
