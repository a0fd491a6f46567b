import * as zlib from 'node:zlib';

/**
 * Carry an input image's EXIF into an output that sharp encoded from raw pixels.
 *
 * sharp can write EXIF only from an object of string tags (`withExif`), while `metadata().exif`
 * hands back the raw blob ("Exif\0\0" + TIFF structure). Rather than decode and re-describe every
 * tag, we splice the original blob into the encoded bytes, container by container.
 */

export type EmbedFormat = 'png' | 'jpeg' | 'webp' | 'tiff';

/** The 6-byte header that JPEG's APP1 (and sharp's blob) puts before the TIFF structure. */
const EXIF_HEADER = Uint8Array.of(0x45, 0x78, 0x69, 0x66, 0x00, 0x00); // "Exif\0\0"
const ORIENTATION_TAG = 0x0112;

function hasExifHeader(b: Uint8Array): boolean {
  return b.length >= 6 && EXIF_HEADER.every((v, i) => b[i] === v);
}

/** The bare TIFF structure ("II*\0"/"MM\0*" ...), with the "Exif\0\0" header dropped if present. */
function tiffOf(exif: Uint8Array): Uint8Array {
  return hasExifHeader(exif) ? exif.subarray(6) : exif;
}

/** True when `t` starts with a TIFF header in either byte order. */
function isTiff(t: Uint8Array): boolean {
  return (
    t.length >= 8 &&
    ((t[0] === 0x49 && t[1] === 0x49 && t[2] === 42 && t[3] === 0) ||
      (t[0] === 0x4d && t[1] === 0x4d && t[2] === 0 && t[3] === 42))
  );
}

/**
 * Copy of the blob with IFD0's Orientation set to 1: the pixels were already rotated upright, so
 * keeping e.g. 6 would make viewers rotate them a second time. Malformed input is returned copied.
 */
export function resetExifOrientation(exif: Uint8Array): Uint8Array {
  const out = Uint8Array.from(exif);
  const tiffStart = hasExifHeader(out) ? 6 : 0;
  const t = out.subarray(tiffStart);
  if (!isTiff(t)) return out;
  const view = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const le = t[0] === 0x49; // "II" = little-endian, "MM" = big-endian
  const ifd0 = view.getUint32(4, le);
  if (ifd0 + 2 > t.length) return out;
  const count = view.getUint16(ifd0, le);
  for (let i = 0; i < count; i++) {
    const entry = ifd0 + 2 + i * 12;
    if (entry + 12 > t.length) break;
    if (view.getUint16(entry, le) !== ORIENTATION_TAG) continue;
    // Values of up to 4 bytes sit inline in the entry's value field, left-justified.
    const type = view.getUint16(entry + 2, le);
    if (type === 3) view.setUint16(entry + 8, 1, le); // SHORT, as the spec says
    else if (type === 4) view.setUint32(entry + 8, 1, le); // LONG, seen from sloppy writers
    break;
  }
  return out;
}

const NOT_EMBEDDED = (encoded: Uint8Array) => ({ bytes: encoded, embedded: false });

/**
 * Insert the EXIF blob into encoded image bytes. `embedded` is false and the bytes are returned
 * untouched when the format cannot take it here (tiff: EXIF lives in the IFDs themselves; webp
 * without VP8X: the simple format has no metadata; jpeg blob over the 65533-byte APP1 limit),
 * when the encoded bytes already carry EXIF, or when either input is not what it claims to be.
 */
export function embedExif(
  encoded: Uint8Array,
  format: EmbedFormat,
  exif: Uint8Array,
): { bytes: Uint8Array; embedded: boolean } {
  const tiff = tiffOf(exif);
  if (!isTiff(tiff)) return NOT_EMBEDDED(encoded);
  let bytes: Uint8Array | null = null;
  switch (format) {
    case 'png':
      bytes = embedPng(encoded, tiff);
      break;
    case 'jpeg':
      bytes = embedJpeg(encoded, tiff);
      break;
    case 'webp':
      bytes = embedWebp(encoded, tiff);
      break;
    case 'tiff':
      bytes = null;
      break;
  }
  return bytes ? { bytes, embedded: true } : NOT_EMBEDDED(encoded);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function ascii(b: Uint8Array, at: number, len: number): string {
  return String.fromCharCode(...b.subarray(at, at + len));
}

// ---- PNG ------------------------------------------------------------------------------------

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

let crcTable: Uint32Array | undefined;
/** CRC-32 (ISO-HDLC, as PNG uses). zlib.crc32 arrived in Node 20.15; older 20.x get the table. */
function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return native(data) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const byte of data) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** eXIf holds the bare TIFF structure (no "Exif\0\0") and must come before the first IDAT. */
function embedPng(png: Uint8Array, tiff: Uint8Array): Uint8Array | null {
  if (png.length < 8 || PNG_SIGNATURE.some((v, i) => png[i] !== v)) return null;
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let firstIdat = -1;
  for (let at = 8; at + 12 <= png.length; ) {
    const type = ascii(png, at + 4, 4);
    if (type === 'eXIf') return null; // already has EXIF; two would be invalid
    if (type === 'IDAT' && firstIdat < 0) firstIdat = at;
    if (type === 'IEND') break;
    at += 12 + view.getUint32(at, false);
  }
  if (firstIdat < 0) return null;
  const chunk = new Uint8Array(12 + tiff.length);
  const cv = new DataView(chunk.buffer);
  cv.setUint32(0, tiff.length, false);
  chunk.set([0x65, 0x58, 0x49, 0x66], 4); // "eXIf"
  chunk.set(tiff, 8);
  cv.setUint32(8 + tiff.length, crc32(chunk.subarray(4, 8 + tiff.length)), false); // type + data
  return concat(png.subarray(0, firstIdat), chunk, png.subarray(firstIdat));
}

// ---- JPEG -----------------------------------------------------------------------------------

/** APP1's length field is 16 bits and counts itself: at most 65533 bytes of "Exif\0\0" + TIFF. */
const JPEG_APP1_MAX_PAYLOAD = 0xffff - 2;

/**
 * An APP1 "Exif\0\0" segment right after SOI, or after APP0/JFIF when that comes first (JFIF
 * requires its APP0 to follow SOI immediately; EXIF readers look for APP1 among the first segments).
 */
function embedJpeg(jpeg: Uint8Array, tiff: Uint8Array): Uint8Array | null {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return null;
  const payloadLength = EXIF_HEADER.length + tiff.length;
  if (payloadLength > JPEG_APP1_MAX_PAYLOAD) return null;
  // Walk the header segments up to SOS looking for an existing EXIF APP1.
  let insertAt = 2;
  for (let at = 2; at + 4 <= jpeg.length; ) {
    if (jpeg[at] !== 0xff) return null; // not at a marker: malformed
    const marker = jpeg[at + 1];
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // EOI / SOS: entropy-coded data follows
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // standalone markers carry no length
      continue;
    }
    const len = (jpeg[at + 2] << 8) | jpeg[at + 3];
    if (marker === 0xe1 && hasExifHeader(jpeg.subarray(at + 4, at + 2 + len))) return null;
    if (at === 2 && marker === 0xe0 && ascii(jpeg, at + 4, 5) === 'JFIF\0') insertAt = at + 2 + len;
    at += 2 + len;
  }
  const segment = new Uint8Array(4 + payloadLength);
  segment.set([0xff, 0xe1, (payloadLength + 2) >> 8, (payloadLength + 2) & 0xff]);
  segment.set(EXIF_HEADER, 4);
  segment.set(tiff, 10);
  return concat(jpeg.subarray(0, insertAt), segment, jpeg.subarray(insertAt));
}

// ---- WebP -----------------------------------------------------------------------------------

const VP8X_FLAG_EXIF = 0x08;

/**
 * Only the extended format (VP8X first) may carry metadata; turning a simple VP8/VP8L file into
 * an extended one would need the canvas size from the bitstream, so we leave those alone.
 * The EXIF chunk holds the bare TIFF structure: that is what webpmux, ExifTool and Pillow (9.3+)
 * write and expect. libvips 8.17 itself writes "Exif\0\0"-prefixed data but reads either form.
 * Chunk order per the container spec: ... image data, EXIF, XMP, so EXIF goes before any "XMP ".
 */
function embedWebp(webp: Uint8Array, tiff: Uint8Array): Uint8Array | null {
  if (webp.length < 30 || ascii(webp, 0, 4) !== 'RIFF' || ascii(webp, 8, 4) !== 'WEBP') return null;
  if (ascii(webp, 12, 4) !== 'VP8X') return null;
  const view = new DataView(webp.buffer, webp.byteOffset, webp.byteLength);
  const riffEnd = Math.min(webp.length, 8 + view.getUint32(4, true));
  let insertAt = riffEnd;
  for (let at = 12; at + 8 <= riffEnd; ) {
    const type = ascii(webp, at, 4);
    if (type === 'EXIF') return null;
    if (type === 'XMP ') {
      insertAt = at;
      break;
    }
    const size = view.getUint32(at + 4, true);
    at += 8 + size + (size & 1); // chunks are padded to an even length
  }
  if (webp[20] & VP8X_FLAG_EXIF) return null; // flag says EXIF, even if we did not find it

  const padded = tiff.length + (tiff.length & 1);
  const chunk = new Uint8Array(8 + padded);
  chunk.set([0x45, 0x58, 0x49, 0x46]); // "EXIF"
  new DataView(chunk.buffer).setUint32(4, tiff.length, true); // size excludes the pad byte
  chunk.set(tiff, 8);

  const out = concat(webp.subarray(0, insertAt), chunk, webp.subarray(insertAt, riffEnd));
  out[20] |= VP8X_FLAG_EXIF; // VP8X flags byte: Rsv(2) ICC Alpha EXIF XMP Anim Rsv
  new DataView(out.buffer).setUint32(4, out.length - 8, true);
  return out;
}
