import * as zlib from 'node:zlib';
import { pngChunk } from '../png-chunk';

export { crc32 } from '../png-chunk';

/**
 * Metadata for PNGs that sharp encoded from raw pixels.
 *
 * sharp attaches an ICC profile only by converting the pixels into it (ours are already in that
 * space), writes EXIF only from an object of string tags, and `withMetadata({density})` makes it
 * emit an EXIF block of its own. So image-io encodes a bare PNG, and this module inserts the
 * input's own iCCP (profile), pHYs (density) and eXIf (EXIF blob) chunks into it. libvips reads
 * them back as the image's metadata, so other output formats are encoded from that PNG with
 * `keepMetadata()` and get the same profile, EXIF and density without any pixel conversion.
 */

export interface PngMetadata {
  /** ICC profile bytes. */
  icc?: Uint8Array;
  /** EXIF blob as sharp's metadata() gives it ("Exif\0\0" + TIFF structure, or bare TIFF). */
  exif?: Uint8Array;
  /** Pixels per inch. */
  density?: number;
}

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

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const INCHES_PER_METRE = 1 / 0.0254;

/** iCCP: profile name, NUL, compression method 0, zlib-compressed profile. */
function iccpChunk(icc: Uint8Array): Uint8Array {
  const compressed = zlib.deflateSync(icc);
  const data = new Uint8Array(5 + compressed.length);
  data.set([0x69, 0x63, 0x63, 0x00, 0x00]); // "icc", NUL, method 0
  data.set(compressed, 5);
  return pngChunk('iCCP', data);
}

/** pHYs: pixels per metre in x and y, unit 1 (metre). */
function physChunk(density: number): Uint8Array {
  const data = new Uint8Array(9);
  const view = new DataView(data.buffer);
  const perMetre = Math.round(density * INCHES_PER_METRE);
  view.setUint32(0, perMetre, false);
  view.setUint32(4, perMetre, false);
  data[8] = 1;
  return pngChunk('pHYs', data);
}

/**
 * Inserts iCCP, pHYs and eXIf before the first IDAT (where the PNG spec wants them), replacing any
 * chunk of the same type; an sRGB/gAMA/cHRM chunk goes too when a profile is added, since the
 * spec lets iCCP stand alone. EXIF keeps its tags; its Orientation is reset to 1 because the
 * pixels were already rotated upright.
 */
export function addPngMetadata(png: Uint8Array, metadata: PngMetadata): Uint8Array {
  if (png.length < 8 || PNG_SIGNATURE.some((v, i) => png[i] !== v)) throw new Error('addPngMetadata: not a PNG');
  const added: Uint8Array[] = [];
  const replaced = new Set<string>();
  if (metadata.icc && metadata.icc.length > 0) {
    added.push(iccpChunk(metadata.icc));
    ['iCCP', 'sRGB', 'gAMA', 'cHRM'].forEach((t) => replaced.add(t));
  }
  if (metadata.density && metadata.density > 0) {
    added.push(physChunk(metadata.density));
    replaced.add('pHYs');
  }
  if (metadata.exif && metadata.exif.length > 0) {
    const exif = resetExifOrientation(metadata.exif);
    added.push(pngChunk('eXIf', tiffOf(exif)));
    replaced.add('eXIf');
  }
  if (added.length === 0) return png;

  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const kept: Uint8Array[] = [png.subarray(0, 8)];
  let inserted = false;
  for (let at = 8; at + 12 <= png.length; ) {
    const length = view.getUint32(at, false);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    if (type === 'IDAT' && !inserted) {
      kept.push(...added);
      inserted = true;
    }
    if (!replaced.has(type)) kept.push(png.subarray(at, at + 12 + length));
    at += 12 + length;
  }
  if (!inserted) throw new Error('addPngMetadata: PNG has no IDAT chunk');
  const out = new Uint8Array(kept.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of kept) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
