import { UpbridgeError } from '../errors';
import { Raster } from '../raster';

/**
 * Raster ↔ ImageData/canvas, the browser's side of image I/O (sharp's in Node). Decoding asks the
 * browser for the file's own pixels: no colour-space conversion (the Node path converts none
 * either) and no premultiplication. A canvas keeps 8-bit RGBA only, so 16-bit files arrive as 8
 * bits here (Figma hands its images over as PNG/JPEG/GIF, 8-bit in practice).
 */
export async function decodeImageBytes(bytes: Uint8Array, contentType: string): Promise<Raster> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: contentType }), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch (e) {
    throw new UpbridgeError('UPB_INPUT_NOT_IMAGE', `the browser could not decode this ${contentType} image: ${e instanceof Error ? e.message : String(e)}`);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (!context) throw new UpbridgeError('UPB_INTERNAL', 'no 2D canvas context in this browser');
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return imageDataToRaster(context.getImageData(0, 0, canvas.width, canvas.height, { colorSpace: 'srgb' }));
}

/** ImageData as a raster: RGB when every pixel is opaque (as an opaque file decodes in Node), else RGBA. */
export function imageDataToRaster(image: { width: number; height: number; data: Uint8ClampedArray }): Raster {
  const { width, height, data } = image;
  let opaque = true;
  for (let i = 3; i < data.length; i += 4) {
    if (data[i] !== 255) {
      opaque = false;
      break;
    }
  }
  if (!opaque) return { width, height, channels: 4, depth: 8, data: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
    rgb[j] = data[i];
    rgb[j + 1] = data[i + 1];
    rgb[j + 2] = data[i + 2];
  }
  return { width, height, channels: 3, depth: 8, data: rgb };
}

/** Any 8- or 16-bit raster as RGBA bytes for ImageData / putImageData (16-bit rounded to 8). */
export function rasterToRgba(raster: Raster): Uint8ClampedArray<ArrayBuffer> {
  const n = raster.width * raster.height;
  const out = new Uint8ClampedArray(n * 4);
  const shift = raster.depth === 16 ? 1 / 257 : 1;
  const c = raster.channels;
  for (let i = 0; i < n; i++) {
    const p = i * c;
    const grey = c <= 2;
    const r = raster.data[p] * shift;
    out[i * 4] = r;
    out[i * 4 + 1] = grey ? r : raster.data[p + 1] * shift;
    out[i * 4 + 2] = grey ? r : raster.data[p + 2] * shift;
    out[i * 4 + 3] = c === 2 ? raster.data[p + 1] * shift : c === 4 ? raster.data[p + 3] * shift : 255;
  }
  return out;
}

/** Draws a raster onto a canvas (resized to it), for the page's before/after view. */
export function drawRaster(canvas: HTMLCanvasElement | OffscreenCanvas, raster: Raster): void {
  canvas.width = raster.width;
  canvas.height = raster.height;
  const context = canvas.getContext('2d') as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
  if (!context) throw new UpbridgeError('UPB_INTERNAL', 'no 2D canvas context in this browser');
  context.putImageData(new ImageData(rasterToRgba(raster), raster.width, raster.height), 0, 0);
}
