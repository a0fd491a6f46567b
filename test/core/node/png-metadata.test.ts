import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { addPngMetadata, resetExifOrientation } from '../../../core/node/png-metadata';

// All fixtures are made in code: raw pixels, sharp-encoded images and hand-built PNG chunks.

const W = 16;
const H = 8;
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Saturated gradient: any P3 -> sRGB conversion would visibly move these values. */
function gradient(): Buffer {
  const out = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 3;
      out[i] = Math.min(255, x * 17);
      out[i + 1] = Math.min(255, y * 36);
      out[i + 2] = 255 - Math.min(255, x * 17);
    }
  }
  // A few pure primaries, the values a colour conversion changes most.
  out.set([255, 0, 0, 0, 255, 0, 0, 0, 255], 0);
  return out;
}

const RAW = gradient();
const fromRaw = () => sharp(RAW, { raw: { width: W, height: H, channels: 3 } });
const has = (bytes: Uint8Array, text: string) => Buffer.from(bytes).includes(text);
const meta = (bytes: Uint8Array) => sharp(Buffer.from(bytes)).metadata();
/** Pixel values as stored, with no conversion out of the embedded profile. */
const storedPixels = (bytes: Uint8Array) => sharp(Buffer.from(bytes)).keepIccProfile().raw().toBuffer();

// --- PNG chunk helpers, independent of the module under test ---

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface Chunk {
  type: string;
  data: Buffer;
  crc: number;
  /** CRC over type + data, computed here. */
  expectedCrc: number;
}

function chunks(png: Uint8Array): Chunk[] {
  const b = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  expect(b.subarray(0, 8).equals(SIGNATURE)).toBe(true);
  const out: Chunk[] = [];
  let at = 8;
  while (at < b.length) {
    expect(at + 12).toBeLessThanOrEqual(b.length);
    const length = b.readUInt32BE(at);
    expect(at + 12 + length).toBeLessThanOrEqual(b.length);
    out.push({
      type: b.toString('latin1', at + 4, at + 8),
      data: b.subarray(at + 8, at + 8 + length),
      crc: b.readUInt32BE(at + 8 + length),
      expectedCrc: crc32(b.subarray(at + 4, at + 8 + length)),
    });
    at += 12 + length;
  }
  expect(at).toBe(b.length);
  return out;
}

const types = (png: Uint8Array) => chunks(png).map((c) => c.type);
const only = (png: Uint8Array, type: string) => {
  const found = chunks(png).filter((c) => c.type === type);
  expect(found).toHaveLength(1);
  return found[0];
};

function makeChunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function assemble(parts: { type: string; data: Uint8Array }[]): Buffer {
  return Buffer.concat([SIGNATURE, ...parts.map((c) => makeChunk(c.type, c.data))]);
}

/** Inserts chunks right after IHDR. */
function insertAfterIhdr(png: Uint8Array, extra: { type: string; data: Uint8Array }[]): Buffer {
  const cs = chunks(png);
  expect(cs[0].type).toBe('IHDR');
  return assemble([cs[0], ...extra, ...cs.slice(1)]);
}

const idatBytes = (png: Uint8Array) => Buffer.concat(chunks(png).filter((c) => c.type === 'IDAT').map((c) => c.data));

function expectValidCrcs(png: Uint8Array): void {
  for (const c of chunks(png)) {
    expect({ type: c.type, crc: c.crc }).toEqual({ type: c.type, crc: c.expectedCrc });
    expect(c.crc).toBe(zlib.crc32(Buffer.concat([Buffer.from(c.type, 'latin1'), c.data])) >>> 0);
  }
}

// --- EXIF helpers ---

/** A minimal TIFF structure, in either byte order: IFD0 with Make and (optionally) Orientation. */
function tinyTiff(le: boolean, orientation?: number, orientationType: 3 | 4 = 3): Uint8Array {
  const make = Buffer.from('TinyCam\0');
  const entries = orientation === undefined ? 1 : 2;
  const ifdSize = 2 + entries * 12 + 4;
  const out = new Uint8Array(8 + ifdSize + make.length);
  const v = new DataView(out.buffer);
  out.set(le ? [0x49, 0x49] : [0x4d, 0x4d]);
  v.setUint16(2, 42, le);
  v.setUint32(4, 8, le);
  v.setUint16(8, entries, le);
  let e = 10;
  v.setUint16(e, 0x010f, le); // Make, ASCII, stored after the IFD
  v.setUint16(e + 2, 2, le);
  v.setUint32(e + 4, make.length, le);
  v.setUint32(e + 8, 8 + ifdSize, le);
  if (orientation !== undefined) {
    e += 12;
    v.setUint16(e, 0x0112, le); // Orientation, inline
    v.setUint16(e + 2, orientationType, le);
    v.setUint32(e + 4, 1, le);
    if (orientationType === 3) v.setUint16(e + 8, orientation, le);
    else v.setUint32(e + 8, orientation, le);
  }
  out.set(make, 8 + ifdSize);
  return out;
}

const withHeader = (tiff: Uint8Array) => Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);

/** The Orientation entry's value field (offset of IFD0 entry 1 in tinyTiff), read in the blob's byte order. */
function tinyOrientation(blob: Uint8Array, type: 3 | 4): number {
  const t = blob[0] === 0x45 ? blob.subarray(6) : blob;
  const v = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const le = t[0] === 0x49;
  return type === 3 ? v.getUint16(22 + 8, le) : v.getUint32(22 + 8, le);
}

// --- Fixtures ---

let icc: Buffer; // a real Display P3 profile, as sharp's metadata() gives it
// sharp's metadata().exif of a JPEG with Make TestCam, Orientation 6 and 300 dpi. libvips takes a
// PNG's density from the EXIF's XResolution when there is one (over pHYs), and image-io passes the
// density libvips read together with that EXIF, so the two agree, as here.
let sourceExif: Buffer;
// The pipeline's shape: a PNG encoded from raw pixels. libvips gives it a default pHYs (1 px/mm).
let png: Buffer;

beforeAll(async () => {
  const tagged = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#808080' } })
    .withIccProfile('p3')
    .png()
    .toBuffer();
  icc = (await sharp(tagged).metadata()).icc!;
  expect(icc).toBeDefined();
  expect(icc.length).toBeGreaterThan(128);
  expect(icc.toString('latin1', 36, 40)).toBe('acsp');

  const src = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#808080' } })
    .withExif({ IFD0: { Make: 'TestCam', Model: 'X1', Copyright: 'upbridge test' } })
    .withMetadata({ orientation: 6, density: 300 })
    .jpeg()
    .toBuffer();
  const m = await sharp(src).metadata();
  expect(m.orientation).toBe(6);
  expect(m.density).toBe(300);
  sourceExif = m.exif!;
  expect(sourceExif.toString('latin1', 0, 6)).toBe('Exif\0\0');

  png = await fromRaw().png().toBuffer();
  const bare = await meta(png);
  expect(bare.icc).toBeUndefined();
  expect(bare.exif).toBeUndefined();
  expect(bare.density).toBeUndefined(); // 25.4 dpi: sharp reports no density
  expect(types(png)).toEqual(['IHDR', 'pHYs', 'IDAT', 'IEND']);
});

describe('resetExifOrientation', () => {
  it('sets Orientation to 1 and keeps the other tags (sharp blob, II), leaving the input alone', async () => {
    const before = Buffer.from(sourceExif);
    const reset = resetExifOrientation(sourceExif);
    expect(Buffer.from(sourceExif).equals(before)).toBe(true);
    expect(reset).not.toBe(sourceExif);
    expect(reset.length).toBe(sourceExif.length);
    expect(Buffer.from(reset).equals(before)).toBe(false);
    expect(has(reset, 'TestCam')).toBe(true);
    expect(has(reset, 'upbridge test')).toBe(true);
    // Only the two bytes of the Orientation value differ.
    const diff = [...reset].map((v, i) => (v === before[i] ? -1 : i)).filter((i) => i >= 0);
    expect(diff.length).toBe(1);

    const m = await meta(addPngMetadata(png, { exif: reset }));
    expect(m.orientation).toBe(1);
    expect(has(m.exif!, 'X1')).toBe(true);
  });

  it.each([
    ['II', true],
    ['MM', false],
  ])('handles %s byte order, with or without the Exif header', async (_name, le) => {
    for (const blob of [tinyTiff(le, 8), withHeader(tinyTiff(le, 8))]) {
      expect(tinyOrientation(blob, 3)).toBe(8);
      const reset = resetExifOrientation(blob);
      expect(reset.length).toBe(blob.length);
      expect(tinyOrientation(reset, 3)).toBe(1);
      expect(tinyOrientation(blob, 3)).toBe(8); // input untouched
      // The bytes other than the Orientation value are the same.
      const headerLen = blob[0] === 0x45 ? 6 : 0;
      const valueAt = headerLen + 22 + 8;
      const strip = (b: Uint8Array) => Buffer.concat([b.subarray(0, valueAt), b.subarray(valueAt + 2)]);
      expect(strip(reset).equals(strip(blob))).toBe(true);

      // A libvips reader agrees (read back through a PNG eXIf chunk).
      const m = await meta(addPngMetadata(png, { exif: reset }));
      expect(m.orientation).toBe(1);
      expect(has(m.exif!, 'TinyCam')).toBe(true);
    }
  });

  it.each([
    ['II', true],
    ['MM', false],
  ])('resets an Orientation stored as LONG (%s)', (_name, le) => {
    const blob = withHeader(tinyTiff(le, 6, 4));
    expect(tinyOrientation(blob, 4)).toBe(6);
    expect(tinyOrientation(resetExifOrientation(blob), 4)).toBe(1);
  });

  it('returns an identical copy when there is no Orientation tag', () => {
    for (const blob of [withHeader(tinyTiff(true)), tinyTiff(false)]) {
      const out = resetExifOrientation(blob);
      expect(out).not.toBe(blob);
      expect(Buffer.from(out).equals(Buffer.from(blob))).toBe(true);
    }
  });

  it('returns a copy of malformed input without throwing', () => {
    const bad = [
      new Uint8Array(0),
      Buffer.from('Exif\0\0', 'latin1'),
      Buffer.from('Exif\0\0garbage', 'latin1'),
      Buffer.from('not exif at all'),
      Buffer.from('II*\0', 'latin1'), // header shorter than 8 bytes
      tinyTiff(true, 6).subarray(0, 12), // IFD cut short
      withHeader(tinyTiff(false, 6).subarray(0, 20)), // Orientation entry cut short
      (() => {
        const t = tinyTiff(false, 6);
        new DataView(t.buffer).setUint32(4, 0xfffffff0, false); // IFD0 offset past the end
        return t;
      })(),
    ];
    for (const b of bad) {
      const copy = Buffer.from(b);
      let out: Uint8Array = new Uint8Array(0);
      expect(() => {
        out = resetExifOrientation(b);
      }).not.toThrow();
      expect(out).not.toBe(b);
      expect(Buffer.from(out).equals(copy)).toBe(true);
      expect(Buffer.from(b).equals(copy)).toBe(true);
    }
  });

  it('stops at the end of the blob when the entry count runs past it', () => {
    const t = tinyTiff(true, 6);
    new DataView(t.buffer).setUint16(8, 0xffff, true); // entry count far past the end
    let out: Uint8Array = new Uint8Array(0);
    expect(() => {
      out = resetExifOrientation(t);
    }).not.toThrow();
    expect(tinyOrientation(out, 3)).toBe(1); // the in-range Orientation entry is still reset
    expect(tinyOrientation(t, 3)).toBe(6);
  });
});

describe('addPngMetadata', () => {
  let exif: Buffer;
  let result: Uint8Array;

  beforeAll(() => {
    exif = sourceExif;
    result = addPngMetadata(png, { icc, exif, density: 300 });
  });

  it('sharp reads back the profile byte for byte, the density, and the EXIF with Orientation 1', async () => {
    const m = await meta(result);
    expect(m.format).toBe('png');
    expect(m.width).toBe(W);
    expect(m.height).toBe(H);
    expect(m.icc).toBeDefined();
    expect(Buffer.compare(m.icc!, icc)).toBe(0);
    expect(m.density).toBe(300);
    expect(m.exif).toBeDefined();
    expect(has(m.exif!, 'TestCam')).toBe(true);
    expect(has(m.exif!, 'upbridge test')).toBe(true);
    expect(m.orientation).toBe(1);
    expect(m.hasProfile).toBe(true);
  });

  it('leaves the pixel values alone (no colour conversion)', async () => {
    const stored = await storedPixels(result);
    expect(stored.equals(RAW)).toBe(true);
    expect(stored.equals(await storedPixels(png))).toBe(true);
    expect(idatBytes(result).equals(idatBytes(png))).toBe(true);
    // Sanity: the profile is real, so sharp's default (convert to sRGB) would change the values.
    const converted = await sharp(Buffer.from(result)).raw().toBuffer();
    expect(converted.equals(RAW)).toBe(false);
  });

  it('puts iCCP, pHYs and eXIf after IHDR and before the first IDAT, all CRCs valid', () => {
    const t = types(result);
    expect(t[0]).toBe('IHDR');
    expect(t[t.length - 1]).toBe('IEND');
    const idat = t.indexOf('IDAT');
    for (const type of ['iCCP', 'pHYs', 'eXIf']) {
      expect(t.filter((x) => x === type)).toHaveLength(1);
      expect(t.indexOf(type)).toBeGreaterThan(0);
      expect(t.indexOf(type)).toBeLessThan(idat);
    }
    expectValidCrcs(result);
    // Everything else the input had is still there, in order (its default pHYs was replaced).
    expect(t.filter((x) => !['iCCP', 'pHYs', 'eXIf'].includes(x))).toEqual(types(png).filter((x) => x !== 'pHYs'));
  });

  it('writes the chunk payloads as the PNG spec lays them out', () => {
    const iccp = only(result, 'iCCP').data;
    const nul = iccp.indexOf(0);
    expect(nul).toBeGreaterThanOrEqual(1);
    expect(nul).toBeLessThanOrEqual(79); // profile name: 1-79 Latin-1 bytes
    expect(iccp[nul + 1]).toBe(0); // compression method 0 (zlib)
    expect(zlib.inflateSync(iccp.subarray(nul + 2)).equals(icc)).toBe(true);

    const phys = only(result, 'pHYs').data;
    expect(phys.length).toBe(9);
    expect(phys.readUInt32BE(0)).toBe(Math.round(300 / 0.0254)); // 11811 px/m
    expect(phys.readUInt32BE(4)).toBe(Math.round(300 / 0.0254));
    expect(phys[8]).toBe(1); // unit: metre

    // eXIf: the bare TIFF structure (no "Exif\0\0"), Orientation reset.
    const exifData = only(result, 'eXIf').data;
    expect(exifData.equals(exif.subarray(6))).toBe(false);
    expect(exifData.equals(Buffer.from(resetExifOrientation(exif)).subarray(6))).toBe(true);
    expect(exifData.toString('latin1', 0, 4)).toMatch(/^(II\*\0|MM\0\*)$/);
  });

  it('takes a bare TIFF blob as it is, and works on a subarray with an offset', async () => {
    const tiff = exif.subarray(6);
    const padded = Buffer.concat([Buffer.alloc(13, 0xaa), png, Buffer.alloc(7, 0xbb)]);
    const view = new Uint8Array(padded.buffer, padded.byteOffset + 13, png.length);
    const out = addPngMetadata(view, { exif: tiff, density: 300 });
    expect(only(out, 'eXIf').data.equals(Buffer.from(resetExifOrientation(tiff)))).toBe(true);
    expectValidCrcs(out);
    const m = await meta(out);
    expect(m.density).toBe(300);
    expect(m.orientation).toBe(1);
    expect(has(m.exif!, 'TestCam')).toBe(true);
    expect(Buffer.from(tiff).equals(exif.subarray(6))).toBe(true); // input untouched
  });

  it.each([
    ['icc only', () => ({ icc }), ['IHDR', 'pHYs', 'iCCP', 'IDAT', 'IEND']], // kept chunks stay put
    ['density only', () => ({ density: 96 }), ['IHDR', 'pHYs', 'IDAT', 'IEND']],
    ['exif only', () => ({ exif: sourceExif }), ['IHDR', 'pHYs', 'eXIf', 'IDAT', 'IEND']],
  ])('adds just what it is given: %s', async (_name, metadata, expected) => {
    const out = addPngMetadata(png, metadata());
    expect(types(out)).toEqual(expected);
    expectValidCrcs(out);
    // The default pHYs is kept unless a density is given.
    const phys = only(out, 'pHYs').data;
    expect(phys.equals(only(png, 'pHYs').data)).toBe(!('density' in metadata()));
    if ('density' in metadata()) expect((await meta(out)).density).toBe(96);
    expect((await storedPixels(out)).equals(RAW)).toBe(true);
  });

  it('inserts before the first of several IDAT chunks only', async () => {
    const cs = chunks(png);
    const i = cs.findIndex((c) => c.type === 'IDAT');
    const data = cs[i].data;
    expect(data.length).toBeGreaterThan(4);
    const half = data.length >> 1;
    const split = assemble([
      ...cs.slice(0, i),
      { type: 'IDAT', data: data.subarray(0, half) },
      { type: 'IDAT', data: data.subarray(half) },
      ...cs.slice(i + 1),
    ]);
    expect((await storedPixels(split)).equals(RAW)).toBe(true);
    const out = addPngMetadata(split, { icc, exif, density: 300 });
    const t = types(out);
    expect(t.filter((x) => x === 'IDAT')).toHaveLength(2);
    const firstIdat = t.indexOf('IDAT');
    expect(t.slice(firstIdat)).toEqual(['IDAT', 'IDAT', 'IEND']);
    for (const type of ['iCCP', 'pHYs', 'eXIf']) expect(t.filter((x) => x === type)).toHaveLength(1);
    expectValidCrcs(out);
    expect((await storedPixels(out)).equals(RAW)).toBe(true);
  });

  it('replaces chunks of the same type when run twice', async () => {
    const srgb = (await sharp(await fromRaw().withIccProfile('srgb').png().toBuffer()).metadata()).icc!;
    expect(Buffer.compare(srgb, icc)).not.toBe(0);
    const other = (
      await sharp(
        await sharp({ create: { width: 2, height: 2, channels: 3, background: '#000' } })
          .withExif({ IFD0: { Make: 'OtherCam' } })
          .withMetadata({ density: 150 })
          .jpeg()
          .toBuffer(),
      ).metadata()
    ).exif!;

    const twice = addPngMetadata(result, { icc: srgb, exif: other, density: 150 });
    const t = types(twice);
    for (const type of ['iCCP', 'pHYs', 'eXIf']) expect(t.filter((x) => x === type)).toHaveLength(1);
    expect(t.length).toBe(types(result).length);
    expectValidCrcs(twice);
    const m = await meta(twice);
    expect(Buffer.compare(m.icc!, srgb)).toBe(0);
    expect(m.density).toBe(150);
    expect(has(m.exif!, 'OtherCam')).toBe(true);
    expect(has(m.exif!, 'TestCam')).toBe(false);
    expect((await storedPixels(twice)).equals(RAW)).toBe(true);

    // The same metadata again gives the same bytes.
    expect(Buffer.from(addPngMetadata(result, { icc, exif, density: 300 })).equals(Buffer.from(result))).toBe(true);
  });

  it("replaces the iCCP, pHYs and eXIf of sharp's withMetadata({density}) PNG", async () => {
    const dense = await fromRaw().withMetadata({ density: 72 }).png().toBuffer();
    expect(types(dense)).toEqual(['IHDR', 'iCCP', 'pHYs', 'eXIf', 'IDAT', 'IEND']);
    const before = await meta(dense);
    expect(before.density).toBe(72);
    expect(Buffer.compare(before.icc!, icc)).not.toBe(0);

    const out = addPngMetadata(dense, { icc, density: 300, exif });
    const t = types(out);
    for (const type of ['iCCP', 'pHYs', 'eXIf']) {
      expect(t.filter((x) => x === type)).toHaveLength(1);
      expect(t.indexOf(type)).toBeLessThan(t.indexOf('IDAT'));
    }
    expectValidCrcs(out);
    const m = await meta(out);
    expect(Buffer.compare(m.icc!, icc)).toBe(0);
    expect(m.density).toBe(300);
    expect(has(m.exif!, 'TestCam')).toBe(true);
    expect(m.orientation).toBe(1);
    expect((await storedPixels(out)).equals(RAW)).toBe(true);
  });

  it('writes the density given even when the EXIF says otherwise (libvips then reports the EXIF one)', async () => {
    // Behaviour pinned, not endorsed: eXIf's XResolution (25.4 dpi here) and pHYs (300) disagree;
    // libvips' loader sets the density from the EXIF after pHYs, so sharp reports no density.
    const lowRes = (
      await sharp(await sharp({ create: { width: 2, height: 2, channels: 3, background: '#000' } }).withExif({ IFD0: { Make: 'LowRes' } }).jpeg().toBuffer()).metadata()
    ).exif!;
    const out = addPngMetadata(png, { exif: lowRes, density: 300 });
    expect(only(out, 'pHYs').data.readUInt32BE(0)).toBe(11811);
    expect((await meta(out)).density).toBeUndefined();
    expect((await meta(addPngMetadata(png, { density: 300 }))).density).toBe(300);
  });

  it('drops sRGB, gAMA and cHRM when a profile is added, and keeps them otherwise', async () => {
    const cHRM = Buffer.alloc(32);
    [31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000].forEach((v, i) => cHRM.writeUInt32BE(v, i * 4));
    const gAMA = Buffer.alloc(4);
    gAMA.writeUInt32BE(45455, 0);
    const colourTagged = insertAfterIhdr(png, [
      { type: 'sRGB', data: Uint8Array.of(0) },
      { type: 'gAMA', data: gAMA },
      { type: 'cHRM', data: cHRM },
      { type: 'tEXt', data: Buffer.from('Comment\0keep me', 'latin1') },
    ]);
    expectValidCrcs(colourTagged);
    expect((await storedPixels(colourTagged)).equals(RAW)).toBe(true);

    const withIcc = addPngMetadata(colourTagged, { icc });
    const t = types(withIcc);
    expect(t).not.toContain('sRGB');
    expect(t).not.toContain('gAMA');
    expect(t).not.toContain('cHRM');
    expect(t).toContain('tEXt');
    expect(t.filter((x) => x === 'iCCP')).toHaveLength(1);
    expectValidCrcs(withIcc);
    expect(Buffer.compare((await meta(withIcc)).icc!, icc)).toBe(0);

    const noIcc = addPngMetadata(colourTagged, { density: 300 });
    expect(types(noIcc).filter((x) => ['sRGB', 'gAMA', 'cHRM', 'tEXt'].includes(x))).toEqual(['sRGB', 'gAMA', 'cHRM', 'tEXt']);
  });

  it('keeps chunks it does not own (XMP in iTXt)', async () => {
    const xmpPng = await fromRaw().withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/">upbridge-xmp</x:xmpmeta>').png().toBuffer();
    const before = chunks(xmpPng).filter((c) => !['IHDR', 'pHYs', 'IDAT', 'IEND'].includes(c.type));
    expect(before.length).toBeGreaterThan(0);
    const out = addPngMetadata(xmpPng, { icc, exif, density: 300 });
    for (const c of before) {
      const kept = chunks(out).filter((k) => k.type === c.type && k.data.equals(c.data));
      expect(kept).toHaveLength(1);
    }
    const m = await meta(out);
    expect(m.xmp).toBeDefined();
    expect(has(m.xmp!, 'upbridge-xmp')).toBe(true);
    expect(Buffer.compare(m.icc!, icc)).toBe(0);
  });

  it('returns the input itself when there is nothing to add', () => {
    expect(addPngMetadata(png, {})).toBe(png);
    expect(addPngMetadata(png, { icc: new Uint8Array(0), exif: new Uint8Array(0), density: 0 })).toBe(png);
    expect(addPngMetadata(png, { density: -72 })).toBe(png);
    expect(Buffer.from(addPngMetadata(png, {})).equals(png)).toBe(true);
  });

  it('throws on input that is not a PNG, or a PNG without IDAT', async () => {
    const jpeg = await fromRaw().jpeg().toBuffer();
    const webp = await fromRaw().webp().toBuffer();
    for (const bad of [jpeg, webp, new Uint8Array(0), SIGNATURE.subarray(0, 7), Buffer.from('not a png at all')]) {
      expect(() => addPngMetadata(bad, { density: 300 })).toThrow(/not a PNG/);
      expect(() => addPngMetadata(bad, {})).toThrow(/not a PNG/);
    }
    const cs = chunks(png);
    const noIdat = assemble(cs.filter((c) => c.type !== 'IDAT'));
    expect(() => addPngMetadata(noIdat, { density: 300 })).toThrow(/IDAT/);
  });

  it('gives the same bytes with the table CRC fallback (Node < 20.15)', () => {
    const native = addPngMetadata(png, { icc, exif, density: 300 });
    jest.isolateModules(() => {
      jest.doMock('node:zlib', () => ({ ...jest.requireActual('node:zlib'), crc32: undefined }));
      const isolated = require('../../../core/node/png-metadata') as typeof import('../../../core/node/png-metadata');
      const fallback = isolated.addPngMetadata(png, { icc, exif, density: 300 });
      expect(Buffer.from(fallback).equals(Buffer.from(native))).toBe(true);
    });
    jest.dontMock('node:zlib');
  });
});

describe("re-encoding the tagged PNG with keepMetadata() (image-io's path)", () => {
  let tagged: Buffer;
  beforeAll(() => {
    tagged = Buffer.from(addPngMetadata(png, { icc, exif: sourceExif, density: 300 }));
  });

  async function expectMetadataKept(bytes: Buffer, format: string): Promise<sharp.Metadata> {
    const m = await meta(bytes);
    expect(m.format).toBe(format);
    expect(m.icc).toBeDefined();
    expect(Buffer.compare(m.icc!, icc)).toBe(0);
    expect(m.exif).toBeDefined();
    expect(has(m.exif!, 'TestCam')).toBe(true);
    expect(m.orientation).toBe(1);
    return m;
  }

  it('jpeg keeps the profile, EXIF and density, and the values within quality-100 noise', async () => {
    const jpeg = await sharp(tagged).keepMetadata().jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
    const m = await expectMetadataKept(jpeg, 'jpeg');
    expect(m.density).toBe(300);
    const values = await storedPixels(jpeg);
    expect(values.length).toBe(RAW.length);
    let max = 0;
    let sum = 0;
    for (let i = 0; i < RAW.length; i++) {
      const d = Math.abs(values[i] - RAW[i]);
      max = Math.max(max, d);
      sum += d;
    }
    expect(max).toBeLessThanOrEqual(8);
    expect(sum / RAW.length).toBeLessThan(2);
    // The same tolerance would catch a P3 -> sRGB conversion.
    const converted = await sharp(tagged).raw().toBuffer();
    let convertedMax = 0;
    for (let i = 0; i < RAW.length; i++) convertedMax = Math.max(convertedMax, Math.abs(converted[i] - RAW[i]));
    expect(convertedMax).toBeGreaterThan(8);
  });

  it('lossless webp keeps the profile and EXIF, and the values exactly', async () => {
    const webp = await sharp(tagged).keepMetadata().webp({ lossless: true }).toBuffer();
    await expectMetadataKept(webp, 'webp');
    expect((await storedPixels(webp)).equals(RAW)).toBe(true);
  });

  it('lossy webp keeps the profile and EXIF', async () => {
    const webp = await sharp(tagged).keepMetadata().webp({ quality: 95 }).toBuffer();
    await expectMetadataKept(webp, 'webp');
  });
});
