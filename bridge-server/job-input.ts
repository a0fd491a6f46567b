import { FastifyRequest } from 'fastify';
import { UpbridgeError } from '../core/errors';
import { BitDepth, ChannelCount, Raster } from '../core/raster';
import { fitsLimits, largestFittingScale, outputSize } from '../core/scale';
import { integerInRange, oneOf } from '../core/validate';
import { decodeImage, ImageMetadata, OUTPUT_FORMATS, OutputFormat } from '../core/node/image-io';
import { BridgeLimits } from './config';

export type TransferFormat = 'raw' | OutputFormat;
export const RESULT_FORMATS: readonly TransferFormat[] = ['raw', ...OUTPUT_FORMATS];
export const IMAGE_CONTENT_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/tiff'];
export const RAW_CONTENT_TYPE = 'application/octet-stream';

export interface RawDescriptor {
  width: number;
  height: number;
  channels: ChannelCount;
  depth: BitDepth;
}

export interface DecodedInput {
  raster: Raster;
  metadata: ImageMetadata;
  format: TransferFormat;
}

function isRaw(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase() === RAW_CONTENT_TYPE;
}

/** Raw pixels describe themselves in the query: width, height, channels (1–4), depth (8|16). */
export function rawDescriptor(query: Record<string, unknown>, limits: BridgeLimits): RawDescriptor {
  const side = Math.max(limits.maxOutputSide, 1);
  return {
    width: integerInRange('width', query.width, 1, side),
    height: integerInRange('height', query.height, 1, side),
    channels: integerInRange('channels', query.channels ?? 4, 1, 4) as ChannelCount,
    depth: Number(oneOf('depth', String(query.depth ?? 8), ['8', '16'])) as BitDepth,
  };
}

/** Bytes a raw body of this descriptor must have. */
function rawByteLength(raw: RawDescriptor): number {
  return raw.width * raw.height * raw.channels * (raw.depth / 8);
}

export function checkPixelLimits(width: number, height: number, scale: number, limits: BridgeLimits): void {
  if (width * height > limits.maxInputPixels) {
    throw new UpbridgeError('UPB_TOO_LARGE', `input is ${width}×${height} = ${width * height} pixels; at most ${limits.maxInputPixels} are allowed`);
  }
  if (!fitsLimits(width, height, scale, limits)) {
    const out = outputSize(width, height, scale);
    const best = largestFittingScale(width, height, limits);
    throw new UpbridgeError(
      'UPB_TOO_LARGE',
      `output would be ${out.width}×${out.height}; at most ${limits.maxOutputSide} px a side and ${limits.maxOutputPixels} pixels are allowed (${best === undefined ? 'the input is too large' : `largest scale that fits: ${best}`})`,
      best === undefined ? undefined : { largestScale: best },
    );
  }
}

/**
 * Before the body is read: a raw upload's size is known from its descriptor, so a wrong
 * Content-Length or an oversized image is refused without buffering anything.
 */
export function precheckBody(request: FastifyRequest, scale: number, limits: BridgeLimits, checkSize?: (width: number, height: number) => void): void {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== RAW_CONTENT_TYPE && !IMAGE_CONTENT_TYPES.includes(type)) {
    throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `Content-Type ${JSON.stringify(type)} is not accepted; send ${IMAGE_CONTENT_TYPES.join(', ')} or raw pixels as ${RAW_CONTENT_TYPE}`);
  }
  if (!isRaw(request)) return;
  const raw = rawDescriptor(request.query as Record<string, unknown>, limits);
  checkPixelLimits(raw.width, raw.height, scale, limits);
  checkSize?.(raw.width, raw.height);
  const expected = rawByteLength(raw);
  const length = request.headers['content-length'];
  if (length !== undefined && Number(length) !== expected) {
    throw new UpbridgeError('UPB_INVALID_OPTION', `raw body must be width × height × channels × depth/8 = ${expected} bytes, Content-Length says ${length}`);
  }
}

export async function decodeBody(request: FastifyRequest, body: Buffer, scale: number, limits: BridgeLimits, checkSize?: (width: number, height: number) => void): Promise<DecodedInput> {
  if (!Buffer.isBuffer(body) || body.length === 0) throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', 'the request body is empty; send the image as the body');
  if (isRaw(request)) {
    const raw = rawDescriptor(request.query as Record<string, unknown>, limits);
    const expected = rawByteLength(raw);
    if (body.length !== expected) throw new UpbridgeError('UPB_INVALID_OPTION', `raw body must be ${expected} bytes (width × height × channels × depth/8), got ${body.length}`);
    // 16-bit samples are little-endian; a Uint16Array view needs 2-byte alignment, else copy once.
    const data =
      raw.depth === 8
        ? new Uint8Array(body.buffer, body.byteOffset, body.length)
        : body.byteOffset % 2 === 0
          ? new Uint16Array(body.buffer, body.byteOffset, body.length / 2)
          : new Uint16Array(Uint8Array.from(body).buffer);
    return { raster: { ...raw, data }, metadata: { format: 'raw' }, format: 'raw' };
  }
  const decoded = await decodeImage(body, 'the uploaded image', limits.maxInputPixels, (width, height) => {
    checkPixelLimits(width, height, scale, limits);
    checkSize?.(width, height);
  });
  const format = (OUTPUT_FORMATS as readonly string[]).includes(decoded.metadata.format) ? (decoded.metadata.format as OutputFormat) : 'png';
  return { ...decoded, format };
}
