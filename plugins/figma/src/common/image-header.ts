/**
 * What kind of image a byte string is, and its size, read from the first bytes. The main thread
 * has no decoder (Figma's sandbox exposes no browser APIs), and it needs only the header: to skip
 * GIFs, to name the right content type for the bridge, and to size an exported PNG.
 */

import { UpbridgeError } from '../../../../core/errors';

/** The formats Figma stores images in (figma.createImage takes exactly these). */
export type ImageKind = 'png' | 'jpeg' | 'gif';

export const CONTENT_TYPES: Record<ImageKind, string> = { png: 'image/png', jpeg: 'image/jpeg', gif: 'image/gif' };

export function imageKind(bytes: Uint8Array): ImageKind | undefined {
  const starts = (...sig: number[]) => sig.every((b, i) => bytes[i] === b);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (starts(0xff, 0xd8, 0xff)) return 'jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'gif';
  return undefined;
}

/** Width and height from a PNG's IHDR chunk, which the format requires to come first. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } {
  if (imageKind(bytes) !== 'png' || bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') {
    throw new UpbridgeError('UPB_INTERNAL', `expected a PNG from Figma's export, got ${bytes.length} bytes starting ${Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ')}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}
