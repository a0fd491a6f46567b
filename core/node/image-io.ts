import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { UpbridgeError } from '../errors';
import { BitDepth, ChannelCount, hasAlpha, Raster } from '../raster';
import { Resampler } from '../upscale';
import { writeFileAtomic } from './atomic-write';
import { addPngMetadata } from './png-metadata';

export const OUTPUT_FORMATS = ['png', 'jpeg', 'webp', 'tiff'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Largest side each format can store (WebP: 14-bit sizes; JPEG: 16-bit). */
export const MAX_SIDE: Record<OutputFormat, number> = { png: 2 ** 31 - 1, jpeg: 65535, webp: 16383, tiff: 2 ** 32 - 1 };

/** Refuses, before any inference, an output the format cannot hold. */
export function checkFormatFits(format: OutputFormat, width: number, height: number): void {
  if (width > MAX_SIDE[format] || height > MAX_SIDE[format]) {
    throw new UpbridgeError('UPB_INVALID_OPTION', `a ${width}×${height} result does not fit ${format.toUpperCase()} (at most ${MAX_SIDE[format]} px a side); choose PNG or TIFF, or a smaller scale`);
  }
}

/** What the input carried besides pixels; written back to the output. */
export interface ImageMetadata {
  format: string;
  icc?: Buffer;
  exif?: Buffer;
  xmp?: string;
  /** Pixels per inch. */
  density?: number;
}

export interface DecodedImage {
  raster: Raster;
  metadata: ImageMetadata;
}

const EXTENSIONS: Record<string, OutputFormat> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp', '.tif': 'tiff', '.tiff': 'tiff' };

/** The output format named by a file's extension. */
export function formatFromPath(file: string): OutputFormat {
  const format = EXTENSIONS[path.extname(file).toLowerCase()];
  if (!format) {
    throw new UpbridgeError('UPB_INVALID_OPTION', `output ${JSON.stringify(file)} must end in one of ${Object.keys(EXTENSIONS).join(', ')}`, { option: 'output' });
  }
  return format;
}

/** Spaces whose pixel values we keep untouched (and re-tag with the input's ICC profile). */
const NATIVE_SPACES = new Set(['srgb', 'rgb', 'rgb16', 'b-w', 'grey16']);

/** sharp's own default guard against decompression bombs. */
const DEFAULT_MAX_PIXELS = 268402689;

/**
 * Metadata we carry into the output. Bounded, because a few KB of compressed upload can inflate to
 * a huge profile that a job would then hold on to (the fuzz test has such a PNG).
 */
export const METADATA_LIMITS = { icc: 4 << 20, exif: 1 << 20, xmp: 16 << 20 };

/**
 * Reads only the header first: the pixel count (and the caller's `beforeDecode` check, given the
 * upright size) runs before anything is decoded.
 */
export async function decodeImage(bytes: Buffer, name = 'input', maxPixels = DEFAULT_MAX_PIXELS, beforeDecode?: (width: number, height: number) => void): Promise<DecodedImage> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `${name} is not an image sharp can read (PNG, JPEG, WebP, TIFF): ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!meta.width || !meta.height) throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `${name} has no width or height`);
  if (meta.width * meta.height > maxPixels) {
    throw new UpbridgeError('UPB_TOO_LARGE', `${name} is ${meta.width}×${meta.height} = ${meta.width * meta.height} pixels; at most ${maxPixels} are allowed`);
  }
  for (const key of ['icc', 'exif', 'xmp'] as const) {
    const size = meta[key]?.length ?? 0;
    if (size > METADATA_LIMITS[key]) {
      throw new UpbridgeError('UPB_TOO_LARGE', `${name} carries ${(size / 2 ** 20).toFixed(1)} MiB of ${key.toUpperCase()} metadata; at most ${METADATA_LIMITS[key] / 2 ** 20} MiB is kept`);
    }
  }
  // EXIF orientations 5–8 swap width and height once applied.
  const swapped = (meta.orientation ?? 1) >= 5;
  beforeDecode?.(swapped ? meta.height : meta.width, swapped ? meta.width : meta.height);
  const depth: BitDepth = meta.depth === 'ushort' || meta.depth === 'short' || meta.depth === 'uint' || meta.depth === 'float' || meta.depth === 'double' ? 16 : 8;
  const native = NATIVE_SPACES.has(meta.space ?? 'srgb');
  const alpha = meta.hasAlpha === true;
  const grey = meta.space === 'b-w' || meta.space === 'grey16';
  const channels = ((grey ? 1 : 3) + (alpha ? 1 : 0)) as ChannelCount;

  // Keep the ICC profile (no conversion to sRGB): a designer's Adobe RGB or Display P3 document must
  // come back in its own space. Other spaces (CMYK, Lab) are converted to sRGB.
  let pipeline = sharp(bytes, { limitInputPixels: maxPixels }).autoOrient();
  if (native) pipeline = pipeline.keepIccProfile();
  // sharp's 8-bit 'b-w' raw output drops the alpha band, so 8-bit grey+alpha goes through RGBA.
  const viaRgba = grey && alpha && depth === 8;
  pipeline = pipeline.toColourspace(grey && !viaRgba ? (depth === 16 ? 'grey16' : 'b-w') : depth === 16 ? 'rgb16' : 'srgb');
  if (!alpha) pipeline = pipeline.removeAlpha();
  const { data, info } = await pipeline
    .raw({ depth: depth === 16 ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true })
    .catch((e: unknown) => {
      throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `${name} could not be decoded: ${e instanceof Error ? e.message : String(e)}`);
    });
  if (info.channels !== (viaRgba ? 4 : channels)) {
    throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `${name}: decoded ${info.channels} channels, expected ${channels}`);
  }
  const decoded = depth === 16 ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const pixels = viaRgba ? pickChannels(decoded, 4, [0, 3]) : decoded;
  return {
    raster: { width: info.width, height: info.height, channels, depth, data: pixels },
    metadata: {
      format: meta.format ?? 'unknown',
      icc: native ? meta.icc : undefined,
      exif: meta.exif,
      xmp: meta.xmp ? meta.xmp.toString('utf8') : undefined,
      density: meta.density,
    },
  };
}

export async function readImage(file: string): Promise<DecodedImage> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UpbridgeError('UPB_INPUT_NOT_FOUND', `input file ${JSON.stringify(file)} does not exist`);
    if (code === 'EISDIR') throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `input ${JSON.stringify(file)} is a folder, not an image`);
    throw new UpbridgeError('UPB_INPUT_NOT_FOUND', `input file ${JSON.stringify(file)} cannot be read (${code})`);
  }
  return decodeImage(bytes, JSON.stringify(file));
}

function interpretation(channels: ChannelCount, depth: BitDepth): string {
  if (channels <= 2) return depth === 16 ? 'grey16' : 'b-w';
  return depth === 16 ? 'rgb16' : 'srgb';
}

function rawInput(raster: Raster): sharp.Sharp {
  // Our own rasters are trusted: sharp's decompression-bomb limit (268 MP) must not stop a 16x output.
  return sharp(raster.data, { raw: { width: raster.width, height: raster.height, channels: raster.channels }, limitInputPixels: false }).toColourspace(
    interpretation(raster.channels, raster.depth),
  );
}

/**
 * Encodes to PNG first and inserts the input's own ICC profile, EXIF and density as PNG chunks
 * (png-metadata.ts says why sharp cannot attach them to raw pixels without converting them).
 * Other formats are encoded from that PNG with keepMetadata(): libvips carries the profile, EXIF,
 * XMP and density across, and the pixel values are never colour-converted.
 */
export async function encodeImage(raster: Raster, format: OutputFormat, metadata: Partial<ImageMetadata> = {}): Promise<{ bytes: Buffer; exifKept: boolean }> {
  checkFormatFits(format, raster.width, raster.height);
  try {
    return await encodeChecked(raster, format, metadata);
  } catch (e) {
    if (e instanceof UpbridgeError) throw e;
    throw new UpbridgeError('UPB_INTERNAL', `could not encode the ${raster.width}×${raster.height} result as ${format}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function encodeChecked(raster: Raster, format: OutputFormat, metadata: Partial<ImageMetadata>): Promise<{ bytes: Buffer; exifKept: boolean }> {
  let base = rawInput(raster);
  if (metadata.xmp) base = base.withXmp(metadata.xmp);
  // The intermediate PNG for other formats is stored uncompressed: it is decoded at once.
  const png = Buffer.from(addPngMetadata(await base.png({ compressionLevel: format === 'png' ? 6 : 0 }).toBuffer(), metadata));
  // libvips writes no EXIF into TIFF.
  const exifKept = metadata.exif !== undefined && format !== 'tiff';
  if (format === 'png') return { bytes: png, exifKept };

  // sharp would otherwise output grey as RGB; only TIFF (of these) stores 16 bits.
  const keep16 = raster.depth === 16 && format === 'tiff';
  let pipeline = sharp(png, { limitInputPixels: false }).keepMetadata().toColourspace(interpretation(raster.channels, keep16 ? 16 : 8));
  switch (format) {
    case 'jpeg':
      // JPEG has no alpha: flatten onto white, as design tools do on export.
      if (hasAlpha(raster.channels)) pipeline = pipeline.flatten({ background: '#ffffff' });
      pipeline = pipeline.jpeg({ quality: 95, chromaSubsampling: '4:4:4' });
      break;
    case 'webp':
      pipeline = pipeline.webp({ quality: 95, alphaQuality: 100 });
      break;
    case 'tiff': {
      // sharp's TIFF resolution is in pixels per millimetre and does not come from the PNG's pHYs.
      const perMm = metadata.density ? metadata.density / 25.4 : undefined;
      pipeline = pipeline.tiff({ compression: 'deflate', predictor: 'horizontal', ...(perMm ? { xres: perMm, yres: perMm, resolutionUnit: 'inch' } : {}) });
      break;
    }
  }
  return { bytes: await pipeline.toBuffer(), exifKept };
}

/** Fails early (before minutes of inference) when the output cannot be written. */
export async function checkWritable(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  try {
    const stat = await fs.stat(dir);
    if (!stat.isDirectory()) throw new Error('not a folder');
    await fs.access(dir, fs.constants.W_OK);
  } catch (e) {
    throw new UpbridgeError('UPB_OUTPUT_UNWRITABLE', `cannot write ${JSON.stringify(file)}: folder ${JSON.stringify(dir)} ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'is not writable'}`);
  }
  const existing = await fs.stat(file).catch(() => null);
  if (existing?.isDirectory()) throw new UpbridgeError('UPB_OUTPUT_UNWRITABLE', `cannot write ${JSON.stringify(file)}: it is a folder`);
}

export async function writeImage(file: string, raster: Raster, metadata: Partial<ImageMetadata> = {}, format: OutputFormat = formatFromPath(file)): Promise<{ exifKept: boolean }> {
  const { bytes, exifKept } = await encodeImage(raster, format, metadata);
  try {
    await writeFileAtomic(file, bytes);
  } catch (e) {
    throw new UpbridgeError('UPB_OUTPUT_UNWRITABLE', `cannot write ${JSON.stringify(file)}: ${(e as Error).message}`);
  }
  return { exifKept };
}

function pickChannels(data: Uint8Array | Uint16Array, stride: number, channels: number[]): Uint8Array | Uint16Array {
  const n = data.length / stride;
  const out = data instanceof Uint16Array ? new Uint16Array(n * channels.length) : new Uint8Array(n * channels.length);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels.length; c++) out[i * channels.length + c] = data[i * stride + channels[c]];
  return out;
}

/** Lanczos-3 resampling with sharp, keeping channels and bit depth; sharp premultiplies alpha. */
export const sharpResampler: Resampler = {
  async resize(raster, width, height) {
    // 8-bit grey+alpha would lose its alpha in sharp's raw output (see decodeImage): resize as RGBA.
    const viaRgba = raster.channels === 2 && raster.depth === 8;
    const source: Raster = viaRgba ? { ...raster, channels: 4, data: pickChannels(raster.data, 2, [0, 0, 0, 1]) } : raster;
    const { data, info } = await rawInput(source)
      .resize(width, height, { kernel: 'lanczos3', fit: 'fill' })
      .raw({ depth: raster.depth === 16 ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== source.channels) throw new UpbridgeError('UPB_INFERENCE', `resample changed channels ${source.channels} → ${info.channels}`);
    const pixels = raster.depth === 16 ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { width, height, channels: raster.channels, depth: raster.depth, data: viaRgba ? pickChannels(pixels, 4, [0, 3]) : pixels };
  },
};
