import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { embedExif, resetExifOrientation } from '../../../core/node/exif-embed';

const W = 8;
const H = 6;
const base = () => sharp({ create: { width: W, height: H, channels: 3, background: '#808080' } });
const has = (bytes: Uint8Array, text: string) => Buffer.from(bytes).includes(text);
const pixels = (bytes: Uint8Array) => sharp(Buffer.from(bytes)).raw().toBuffer();
const meta = (bytes: Uint8Array) => sharp(Buffer.from(bytes)).metadata();

/** A minimal TIFF structure, in either byte order: IFD0 with Make and (optionally) Orientation. */
function tinyTiff(le: boolean, orientation?: number): Uint8Array {
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
    v.setUint16(e, 0x0112, le); // Orientation, SHORT, inline
    v.setUint16(e + 2, 3, le);
    v.setUint32(e + 4, 1, le);
    v.setUint16(e + 8, orientation, le);
  }
  out.set(make, 8 + ifdSize);
  return out;
}

const withHeader = (tiff: Uint8Array) => Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);

let sourceExif: Uint8Array; // sharp's metadata().exif of a JPEG with Orientation 6
let png: Buffer;
let jpeg: Buffer;
let webpVp8x: Buffer;
let webpSimple: Buffer;

beforeAll(async () => {
  const src = await base()
    .withExif({ IFD0: { Make: 'TestCam', Model: 'X1', Copyright: 'upbridge test' } })
    .withMetadata({ orientation: 6 })
    .jpeg()
    .toBuffer();
  const m = await sharp(src).metadata();
  expect(m.orientation).toBe(6);
  sourceExif = m.exif!;
  expect(has(sourceExif.subarray(0, 6), 'Exif\0\0')).toBe(true);

  // The pipeline's shape: output made from raw pixels, so no metadata survives by itself.
  const raw = await base().raw().toBuffer();
  const fromRaw = () => sharp(raw, { raw: { width: W, height: H, channels: 3 } });
  png = await fromRaw().png().toBuffer();
  jpeg = await fromRaw().jpeg().toBuffer();
  webpVp8x = await fromRaw().withIccProfile('p3').webp().toBuffer(); // ICC forces VP8X
  webpSimple = await fromRaw().webp().toBuffer();
  expect(webpVp8x.toString('latin1', 12, 16)).toBe('VP8X');
  expect(webpSimple.toString('latin1', 12, 16)).toBe('VP8 ');
});

describe('resetExifOrientation', () => {
  it('sets Orientation to 1 and keeps the other tags (sharp blob, II)', async () => {
    const reset = resetExifOrientation(sourceExif);
    expect(reset).not.toBe(sourceExif);
    expect(reset.length).toBe(sourceExif.length);
    expect(Buffer.from(sourceExif).compare(Buffer.from(reset))).not.toBe(0);
    expect(has(reset, 'TestCam')).toBe(true);
    expect(has(reset, 'upbridge test')).toBe(true);

    const before = await meta(embedExif(png, 'png', sourceExif).bytes);
    expect(before.orientation).toBe(6);
    const after = await meta(embedExif(png, 'png', reset).bytes);
    expect(after.orientation).toBe(1);
    expect(has(after.exif!, 'TestCam')).toBe(true);
    expect(has(after.exif!, 'X1')).toBe(true);
  });

  it.each([
    ['II', true],
    ['MM', false],
  ])('handles %s byte order, with or without the Exif header', async (_name, le) => {
    for (const blob of [tinyTiff(le, 8), withHeader(tinyTiff(le, 8))]) {
      expect((await meta(embedExif(png, 'png', blob).bytes)).orientation).toBe(8);
      const reset = resetExifOrientation(blob);
      const m = await meta(embedExif(png, 'png', reset).bytes);
      expect(m.orientation).toBe(1);
      expect(has(m.exif!, 'TinyCam')).toBe(true);
    }
  });

  it('returns an unchanged copy when there is no Orientation tag', () => {
    const blob = withHeader(tinyTiff(true));
    const out = resetExifOrientation(blob);
    expect(out).not.toBe(blob);
    expect(Buffer.from(out).equals(blob)).toBe(true);
  });

  it('returns a copy of malformed input without throwing', () => {
    const bad = [
      new Uint8Array(0),
      Buffer.from('Exif\0\0', 'latin1'),
      Buffer.from('not exif at all'),
      tinyTiff(true, 6).subarray(0, 12), // IFD cut short
      (() => {
        const t = tinyTiff(false, 6);
        new DataView(t.buffer).setUint32(4, 0xfffffff0, false); // IFD0 offset past the end
        return t;
      })(),
    ];
    for (const b of bad) {
      const out = resetExifOrientation(b);
      expect(Buffer.from(out).equals(Buffer.from(b))).toBe(true);
    }
  });
});

describe('embedExif', () => {
  let exif: Uint8Array;
  beforeAll(() => {
    exif = resetExifOrientation(sourceExif);
  });

  it.each([
    ['png' as const, () => png],
    ['jpeg' as const, () => jpeg],
    ['webp' as const, () => webpVp8x],
  ])('%s: sharp reads the EXIF back and the pixels are unchanged', async (format, input) => {
    const encoded = input();
    const { bytes, embedded } = embedExif(encoded, format, exif);
    expect(embedded).toBe(true);
    const m = await meta(bytes);
    expect(m.format).toBe(format);
    expect(m.exif).toBeDefined();
    expect(has(m.exif!, 'TestCam')).toBe(true);
    expect(m.orientation).toBe(1);
    expect((await pixels(bytes)).equals(await pixels(encoded))).toBe(true);
    if (format === 'webp') expect(m.icc).toBeDefined(); // ICCP kept
  });

  it('png: eXIf holds the bare TIFF before the first IDAT, with a valid CRC', () => {
    const out = Buffer.from(embedExif(png, 'png', exif).bytes);
    const at = out.indexOf('eXIf') - 4;
    expect(at).toBeGreaterThan(8);
    expect(at).toBeLessThan(out.indexOf('IDAT'));
    const len = out.readUInt32BE(at);
    expect(len).toBe(exif.length - 6);
    expect(out.toString('latin1', at + 8, at + 10)).toBe('II');
    expect(out.readUInt32BE(at + 8 + len)).toBe(zlib.crc32(out.subarray(at + 4, at + 8 + len)) >>> 0);
  });

  it('png: the table CRC fallback (Node < 20.15) gives the same bytes', () => {
    const native = embedExif(png, 'png', exif).bytes;
    jest.isolateModules(() => {
      jest.doMock('node:zlib', () => ({ ...jest.requireActual('node:zlib'), crc32: undefined }));
      const isolated = require('../../../core/node/exif-embed') as typeof import('../../../core/node/exif-embed');
      expect(Buffer.from(isolated.embedExif(png, 'png', exif).bytes).equals(Buffer.from(native))).toBe(true);
    });
    jest.dontMock('node:zlib');
  });

  it('jpeg: APP1 goes right after SOI (sharp/mozjpeg writes no JFIF segment)', async () => {
    expect(jpeg.readUInt16BE(2)).not.toBe(0xffe0);
    const out = Buffer.from(embedExif(jpeg, 'jpeg', exif).bytes);
    expect(out.readUInt16BE(2)).toBe(0xffe1);
    expect(out.readUInt16BE(4)).toBe(2 + exif.length);
    expect(out.toString('latin1', 6, 12)).toBe('Exif\0\0');
    expect(out.subarray(4 + 2 + exif.length).equals(jpeg.subarray(2))).toBe(true);
  });

  it('jpeg: APP1 goes after a leading APP0/JFIF segment', async () => {
    // APP0: length 16, "JFIF\0", version 1.01, aspect-ratio units, 1:1 density, no thumbnail.
    const app0 = Buffer.from([0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
    const jfif = Buffer.concat([jpeg.subarray(0, 2), app0, jpeg.subarray(2)]);
    const out = Buffer.from(embedExif(jfif, 'jpeg', exif).bytes);
    expect(out.subarray(0, 20).equals(jfif.subarray(0, 20))).toBe(true);
    expect(out.readUInt16BE(20)).toBe(0xffe1);
    expect(out.toString('latin1', 24, 30)).toBe('Exif\0\0');
    const m = await meta(out);
    expect(has(m.exif!, 'TestCam')).toBe(true);
    expect((await pixels(out)).equals(await pixels(jpeg))).toBe(true);
  });

  it('jpeg: a bare TIFF blob gets the Exif header; 65533 bytes fit, 65534 do not', async () => {
    const tiff = exif.subarray(6);
    const fits = Buffer.concat([tiff, Buffer.alloc(65533 - 6 - tiff.length)]); // payload = 65533
    const r = embedExif(jpeg, 'jpeg', fits);
    expect(r.embedded).toBe(true);
    expect(has((await meta(r.bytes)).exif!, 'TestCam')).toBe(true);
    const tooBig = Buffer.concat([fits, Buffer.alloc(1)]);
    const r2 = embedExif(jpeg, 'jpeg', tooBig);
    expect(r2.embedded).toBe(false);
    expect(r2.bytes).toBe(jpeg);
  });

  it('webp: sets the VP8X EXIF flag, fixes the RIFF size, pads odd chunks', async () => {
    const odd = Buffer.concat([exif.subarray(6), Buffer.alloc(1)]); // bare TIFF, odd length
    const out = Buffer.from(embedExif(webpVp8x, 'webp', odd).bytes);
    expect(out[20] & 0x08).toBe(0x08);
    expect(out.readUInt32LE(4)).toBe(out.length - 8);
    const at = out.indexOf('EXIF');
    expect(out.readUInt32LE(at + 4)).toBe(odd.length);
    expect(out.toString('latin1', at + 8, at + 10)).toBe('II'); // bare TIFF, no "Exif\0\0"
    expect(out.length).toBe(webpVp8x.length + 8 + odd.length + 1);
    const m = await meta(out);
    expect(has(m.exif!, 'TestCam')).toBe(true);
    expect((await pixels(out)).equals(await pixels(webpVp8x))).toBe(true);
  });

  it('webp: EXIF goes before an XMP chunk', async () => {
    const xmp = await base().withIccProfile('p3').withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"/>').webp().toBuffer();
    const out = Buffer.from(embedExif(xmp, 'webp', exif).bytes);
    expect(out.indexOf('EXIF')).toBeGreaterThan(0);
    expect(out.indexOf('EXIF')).toBeLessThan(out.indexOf('XMP '));
    const m = await meta(out);
    expect(has(m.exif!, 'TestCam')).toBe(true);
    expect(m.xmp).toBeDefined();
  });

  it('webp without VP8X is left alone', () => {
    const r = embedExif(webpSimple, 'webp', exif);
    expect(r.embedded).toBe(false);
    expect(r.bytes).toBe(webpSimple);
  });

  it('tiff is left alone', async () => {
    const tiff = await base().tiff().toBuffer();
    const r = embedExif(tiff, 'tiff', exif);
    expect(r.embedded).toBe(false);
    expect(Buffer.from(r.bytes).equals(tiff)).toBe(true);
  });

  it.each(['png', 'jpeg', 'webp'] as const)('%s that already has EXIF is left alone', async (format) => {
    const encoded = await base()
      .withIccProfile('p3')
      .withExif({ IFD0: { Make: 'Other' } })
      .toFormat(format)
      .toBuffer();
    expect((await meta(encoded)).exif).toBeDefined();
    const r = embedExif(encoded, format, exif);
    expect(r.embedded).toBe(false);
    expect(r.bytes).toBe(encoded);
  });

  it('rejects inputs that are not what they claim to be', () => {
    expect(embedExif(png, 'jpeg', exif).embedded).toBe(false);
    expect(embedExif(jpeg, 'webp', exif).embedded).toBe(false);
    expect(embedExif(webpVp8x, 'png', exif).embedded).toBe(false);
    expect(embedExif(png, 'png', Buffer.from('Exif\0\0garbage')).embedded).toBe(false);
  });
});
