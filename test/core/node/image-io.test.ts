import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { UpbridgeError } from '../../../core/errors';
import {
  checkWritable,
  decodeImage,
  encodeImage,
  formatFromPath,
  OutputFormat,
  readImage,
  sharpResampler,
  writeImage,
} from '../../../core/node/image-io';
import { BitDepth, ChannelCount, Raster } from '../../../core/raster';

// All fixtures are made in code with sharp (or written byte by byte) into a fresh temp folder.

const XMP_MARK = 'upbridge-xmp-test';
const XMP =
  '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">' +
  '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" ' +
  `xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>${XMP_MARK}</dc:creator></rdf:Description>` +
  '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-image-io-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const tmp = (name: string) => path.join(dir, name);
const meta = (bytes: Buffer | string) => sharp(bytes).metadata();

async function expectCode(p: Promise<unknown>, code: string): Promise<UpbridgeError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UpbridgeError);
  expect((e as UpbridgeError).code).toBe(code);
  return e as UpbridgeError;
}

/** Deterministic, varied 8-bit content (no two neighbouring values alike, nothing saturated). */
function pattern8(width: number, height: number, channels: number): Buffer {
  const out = Buffer.alloc(width * height * channels);
  for (let i = 0; i < out.length; i++) out[i] = 24 + ((i * 37 + Math.floor(i / 7) * 11) % 200);
  return out;
}

/** Smooth, fairly saturated RGB gradients: lossy codecs barely touch them, while sRGB↔P3 moves them a lot. */
function smoothRgb8(width: number, height: number): Buffer {
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out.set([30 + 12 * x, 210 - 10 * y, 40 + 6 * x + 6 * y], (y * width + x) * 3);
  }
  return out;
}

/** Deterministic 16-bit content whose values are not multiples of 257 (so 8-bit would lose them). */
function pattern16(width: number, height: number, channels: number, alpha = false): Uint16Array {
  const out = new Uint16Array(width * height * channels);
  for (let i = 0; i < out.length; i++) {
    const isAlpha = alpha && i % channels === channels - 1;
    let v = isAlpha ? 20000 + ((i * 4099) % 40000) : 1000 + ((i * 7919 + 12345) % 63000);
    if (v % 257 === 0) v += 1;
    out[i] = v;
  }
  return out;
}

/** Decode a non-interlaced 8/16-bit PNG's stored samples without sharp (ground truth: no colour management). */
function pngSamples(png: Buffer): { width: number; height: number; channels: number; depth: number; values: number[] } {
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  let width = 0;
  let height = 0;
  let depth = 0;
  let colourType = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at + 12 <= png.length; ) {
    const len = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const body = png.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      depth = body[8];
      colourType = body[9];
      expect(body[12]).toBe(0); // not interlaced
    }
    if (type === 'IDAT') idat.push(body);
    if (type === 'IEND') break;
    at += 12 + len;
  }
  const channels = ({ 0: 1, 4: 2, 2: 3, 6: 4 } as Record<number, number>)[colourType];
  expect(channels).toBeDefined();
  const bpp = (channels * depth) / 8;
  const stride = width * bpp;
  const inflated = zlib.inflateSync(Buffer.concat(idat));
  const rows = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = inflated[y * (stride + 1)];
    const src = inflated.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = rows.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? row[x - bpp] : 0;
      const b = prev[x];
      const c = x >= bpp ? prev[x - bpp] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else expect(filter).toBe(0);
      row[x] = (src[x] + pred) & 0xff;
    }
  }
  const values: number[] = [];
  if (depth === 16) for (let i = 0; i < rows.length; i += 2) values.push(rows.readUInt16BE(i));
  else for (const v of rows) values.push(v);
  return { width, height, channels, depth, values };
}

/** What a P3-aware reader sees: the stored values, no conversion to sRGB. */
async function storedValues(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes).keepIccProfile().raw().toBuffer();
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

const rgb16 = (bytes: Buffer) => sharp(bytes).toColourspace('rgb16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
const u16 = (b: Buffer) => Array.from(new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2));

// ---------------------------------------------------------------------------------------------
// Round trip of colour and metadata
// ---------------------------------------------------------------------------------------------

describe('readImage → writeImage round trip (P3, 300 dpi, XMP, EXIF)', () => {
  const W = 16;
  const H = 12;
  let p3Icc: Buffer;

  /** The designer's document: a Display P3 image with density, XMP and EXIF, in `format`. */
  async function source(format: OutputFormat): Promise<Buffer> {
    // withMetadata() resets the output profile to sRGB, so it must come before withIccProfile().
    let s = sharp(smoothRgb8(W, H), { raw: { width: W, height: H, channels: 3 } })
      .withMetadata({ density: 300 })
      .withIccProfile('p3')
      .withXmp(XMP)
      .withExif({ IFD0: { Make: 'TestCam', Model: 'X1' } });
    if (format === 'png') s = s.png();
    if (format === 'jpeg') s = s.jpeg({ quality: 95, chromaSubsampling: '4:4:4' });
    if (format === 'webp') s = s.webp({ quality: 95, smartSubsample: true });
    if (format === 'tiff') s = s.tiff({ compression: 'lzw' }); // sharp's default TIFF compression is JPEG
    return s.toBuffer();
  }

  beforeAll(async () => {
    p3Icc = (await meta(await source('png'))).icc!;
    expect(p3Icc).toBeDefined();
    expect(p3Icc.includes(Buffer.from([0, 0x50, 0, 0x33]))).toBe(true); // "P3" in the UTF-16 description
    const srgbIcc = (await meta(await sharp({ create: { width: 2, height: 2, channels: 3, background: '#888' } }).withIccProfile('srgb').png().toBuffer())).icc!;
    expect(p3Icc.equals(srgbIcc)).toBe(false);
  });

  it.each(['png', 'jpeg', 'webp', 'tiff'] as const)('%s: the ICC profile is kept, byte-identical', async (format) => {
    const input = tmp(`in.${format}`);
    await fs.writeFile(input, await source(format));
    const decoded = await readImage(input);
    expect(decoded.metadata.format).toBe(format);
    expect(decoded.metadata.icc?.equals(p3Icc)).toBe(true);

    const out = tmp(`out.${format}`);
    await writeImage(out, decoded.raster, decoded.metadata);
    const m = await meta(out);
    expect(m.format).toBe(format);
    expect(m.icc).toBeDefined();
    expect(m.icc!.equals(p3Icc)).toBe(true);
  });

  it.each(['png', 'jpeg', 'webp', 'tiff'] as const)('%s: the decoded raster holds the stored (P3) values, not sRGB', async (format) => {
    const bytes = await source(format);
    const { raster } = await decodeImage(bytes);
    expect(raster).toMatchObject({ width: W, height: H, channels: 3, depth: 8 });
    const stored = await storedValues(bytes);
    expect(Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength).equals(stored)).toBe(true);
    // Converting to sRGB would change them noticeably: the check above is not vacuous.
    const srgb = await sharp(bytes).raw().toBuffer();
    expect(meanAbsDiff(srgb, stored)).toBeGreaterThan(2);
    if (format === 'png') expect(Array.from(raster.data)).toEqual(pngSamples(bytes).values);
  });

  it('png: the written file stores exactly the input values (no colour conversion on write)', async () => {
    const bytes = await source('png');
    const inputValues = pngSamples(bytes).values;
    const { raster, metadata } = await decodeImage(bytes);
    const out = tmp('out.png');
    await writeImage(out, raster, metadata);
    const written = pngSamples(await fs.readFile(out));
    expect(written).toMatchObject({ width: W, height: H, channels: 3, depth: 8 });
    expect(written.values).toEqual(inputValues);
    expect((await storedValues(await fs.readFile(out))).equals(Buffer.from(inputValues))).toBe(true);
  });

  // sharp's own working space is sRGB for 8-bit and P3 for 16-bit images: any other profile is the
  // one a transform-on-write would betray.
  it.each([
    [8, 'srgb'],
    [8, 'p3'],
    [16, 'srgb'],
    [16, 'p3'],
  ] as const)('%i-bit PNG tagged %s: the written file stores exactly the input values and profile', async (depth, profile) => {
    const values = depth === 16 ? pattern16(8, 6, 3) : new Uint8Array(pattern8(8, 6, 3));
    const bytes = await sharp(values, { raw: { width: 8, height: 6, channels: 3 } })
      .toColourspace(depth === 16 ? 'rgb16' : 'srgb')
      .withIccProfile(profile)
      .png()
      .toBuffer();
    const input = pngSamples(bytes);
    expect(input.depth).toBe(depth);
    const { raster, metadata } = await decodeImage(bytes);
    expect(raster.depth).toBe(depth);
    expect(Array.from(raster.data)).toEqual(input.values);
    const out = tmp('out.png');
    await writeImage(out, raster, metadata);
    const bytesOut = await fs.readFile(out);
    expect((await meta(bytesOut)).icc?.equals(metadata.icc!)).toBe(true);
    expect(pngSamples(bytesOut)).toMatchObject({ depth, values: input.values });
  });

  it('tiff: the written file stores exactly the input values', async () => {
    const bytes = await source('tiff');
    const { raster, metadata } = await decodeImage(bytes);
    const out = tmp('out.tiff');
    await writeImage(out, raster, metadata);
    expect((await storedValues(await fs.readFile(out))).equals(await storedValues(bytes))).toBe(true);
  });

  it.each(['jpeg', 'webp'] as const)('%s: the written (lossy) file stays close to the input values, not shifted to or from sRGB', async (format) => {
    const bytes = await source(format);
    const { raster, metadata } = await decodeImage(bytes);
    const out = tmp(`out.${format}`);
    await writeImage(out, raster, metadata);
    const written = await storedValues(await fs.readFile(out));
    // The codec's own loss: the same pixels encoded with no profile at all.
    const plain = await storedValues((await encodeImage(raster, format)).bytes);
    const codecLoss = meanAbsDiff(plain, raster.data);
    const srgbShift = meanAbsDiff(await sharp(bytes).raw().toBuffer(), raster.data); // what a P3→sRGB conversion moves
    expect(srgbShift).toBeGreaterThan(codecLoss + 2);
    expect(meanAbsDiff(written, raster.data)).toBeLessThanOrEqual(codecLoss + 0.5);
  });

  it.each([
    ['png', 300],
    ['jpeg', 300],
    ['tiff', 300],
    // WebP has no resolution field: libwebp/libvips store no density (sharp reads none back even
    // when asked to write 300 dpi), so none is read and none is written.
    ['webp', undefined],
  ] as const)('%s: density is %p dpi after the round trip', async (format, dpi) => {
    const bytes = await source(format);
    const { raster, metadata } = await decodeImage(bytes);
    expect(metadata.density).toBe(dpi);
    const out = tmp(`out.${format}`);
    await writeImage(out, raster, metadata);
    const m = await meta(out);
    if (dpi === undefined) expect(m.density).toBeUndefined();
    else {
      expect(m.density).toBeCloseTo(dpi, 0);
      expect(m.resolutionUnit).toBe('inch');
    }
  });

  it('webp: even an explicit density is not stored by sharp (no DPI in WebP)', async () => {
    const raster: Raster = { width: 4, height: 4, channels: 3, depth: 8, data: new Uint8Array(pattern8(4, 4, 3)) };
    const { bytes } = await encodeImage(raster, 'webp', { density: 300 });
    expect((await meta(bytes)).density).toBeUndefined();
  });

  it.each(['png', 'jpeg', 'webp', 'tiff'] as const)('%s: XMP is kept', async (format) => {
    const bytes = await source(format);
    const { raster, metadata } = await decodeImage(bytes);
    expect(metadata.xmp).toContain(XMP_MARK);
    const out = tmp(`out.${format}`);
    await writeImage(out, raster, metadata);
    const m = await meta(out);
    expect(m.xmp).toBeDefined();
    expect(m.xmp!.toString('utf8')).toContain(XMP_MARK);
  });

  it.each(['png', 'jpeg', 'webp'] as const)('%s: EXIF (Make) is kept and exifKept is true', async (format) => {
    const bytes = await source(format);
    const { raster, metadata } = await decodeImage(bytes);
    expect(metadata.exif?.includes('TestCam')).toBe(true);
    const out = tmp(`out.${format}`);
    const { exifKept } = await writeImage(out, raster, metadata);
    expect(exifKept).toBe(true);
    const m = await meta(out);
    expect(m.exif?.includes('TestCam')).toBe(true);
    expect(m.exif?.includes('X1')).toBe(true);
    // Everything else survived the splice too.
    expect(m.icc?.equals(p3Icc)).toBe(true);
    expect(m.xmp?.toString('utf8')).toContain(XMP_MARK);
  });

  it('tiff: EXIF is not carried and exifKept says so', async () => {
    // libvips does not write (or read) an EXIF IFD in TIFF, and exif-embed leaves TIFF alone.
    // Use a JPEG input so there is EXIF to carry.
    const { raster, metadata } = await decodeImage(await source('jpeg'));
    expect(metadata.exif).toBeDefined();
    const out = tmp('out.tiff');
    const { exifKept } = await writeImage(out, raster, metadata);
    expect(exifKept).toBe(false);
    const m = await meta(out);
    expect(m.exif?.includes('TestCam') ?? false).toBe(false);
    expect(m.icc?.equals(p3Icc)).toBe(true);
  });

  it('exifKept is false when there is no EXIF to keep', async () => {
    const raster: Raster = { width: 4, height: 4, channels: 3, depth: 8, data: new Uint8Array(pattern8(4, 4, 3)) };
    expect((await writeImage(tmp('plain.png'), raster)).exifKept).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Orientation
// ---------------------------------------------------------------------------------------------

describe('EXIF orientation', () => {
  // Stored 20×10: left half red, right half blue. Orientation 6 = rotate 90° clockwise to view,
  // so the upright image is 10×20 with red on top and blue at the bottom.
  const W = 20;
  const H = 10;
  function stored(): Buffer {
    const b = Buffer.alloc(W * H * 3);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) b.set(x < W / 2 ? [220, 30, 40] : [30, 40, 220], (y * W + x) * 3);
    }
    return b;
  }

  it.each(['png', 'jpeg'] as const)('%s input with orientation 6 decodes upright and is written with orientation 1', async (format) => {
    let s = sharp(stored(), { raw: { width: W, height: H, channels: 3 } })
      .withExif({ IFD0: { Make: 'TestCam' } })
      .withMetadata({ orientation: 6 });
    s = format === 'png' ? s.png() : s.jpeg({ quality: 95, chromaSubsampling: '4:4:4' });
    const bytes = await s.toBuffer();
    const m0 = await meta(bytes);
    expect(m0).toMatchObject({ width: W, height: H, orientation: 6 });

    const { raster, metadata } = await decodeImage(bytes);
    expect(raster).toMatchObject({ width: H, height: W, channels: 3 });
    const px = (x: number, y: number) => Array.from(raster.data.subarray((y * raster.width + x) * 3, (y * raster.width + x) * 3 + 3));
    const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) <= 6);
    for (let x = 0; x < raster.width; x++) {
      for (const y of [0, 4, 8]) expect(near(px(x, y), [220, 30, 40])).toBe(true);
      for (const y of [11, 15, 19]) expect(near(px(x, y), [30, 40, 220])).toBe(true);
    }

    for (const outFormat of ['png', 'jpeg', 'webp', 'tiff'] as const) {
      const out = tmp(`upright.${outFormat}`);
      await writeImage(out, raster, metadata);
      const m = await meta(out);
      expect(m).toMatchObject({ width: H, height: W });
      expect([1, undefined]).toContain(m.orientation);
      // A viewer that honours orientation shows it as decoded: red on top.
      const { data, info } = await sharp(out).autoOrient().raw().toBuffer({ resolveWithObject: true });
      expect(info).toMatchObject({ width: H, height: W });
      expect(data[0]).toBeGreaterThan(150);
      expect(data[2]).toBeLessThan(100);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 16-bit
// ---------------------------------------------------------------------------------------------

describe('16-bit', () => {
  const W = 7;
  const H = 5;

  it.each([
    ['png', 3],
    ['png', 4],
    ['tiff', 3],
    ['tiff', 4],
  ] as const)('%s with %i channels decodes to depth 16 with identical values and writes them back identical', async (format, channels) => {
    const values = pattern16(W, H, channels, channels === 4);
    const src = sharp(values, { raw: { width: W, height: H, channels } }).toColourspace('rgb16');
    // sharp's default TIFF compression is JPEG, which is 8-bit only: ask for deflate.
    const bytes = await (format === 'png' ? src.png() : src.tiff({ compression: 'deflate' })).toBuffer();
    const m0 = await meta(bytes);
    expect(m0.depth).toBe('ushort');
    expect(m0.channels).toBe(channels);

    const { raster, metadata } = await decodeImage(bytes);
    expect(raster).toMatchObject({ width: W, height: H, channels, depth: 16 });
    expect(raster.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(raster.data)).toEqual(Array.from(values));
    if (format === 'png') expect(pngSamples(bytes).values).toEqual(Array.from(values));

    for (const outFormat of ['png', 'tiff'] as const) {
      const out = tmp(`out16.${outFormat}`);
      await writeImage(out, raster, metadata);
      const m = await meta(out);
      expect(m.depth).toBe('ushort');
      expect(m.channels).toBe(channels);
      const back = await rgb16(await fs.readFile(out));
      expect(back.info.channels).toBe(channels);
      expect(u16(back.data)).toEqual(Array.from(values));
      if (outFormat === 'png') expect(pngSamples(await fs.readFile(out)).values).toEqual(Array.from(values));
    }
  });

  it('a 16-bit raster written as JPEG/WebP (8-bit formats) looks like its 8-bit version (v/257)', async () => {
    const w = 16;
    const h = 12;
    const eight = smoothRgb8(w, h);
    const values = new Uint16Array(eight.length);
    for (let i = 0; i < eight.length; i++) values[i] = eight[i] * 257 + ((i * 53) % 200) - 100; // off the 257 grid
    const raster16: Raster = { width: w, height: h, channels: 3, depth: 16, data: values };
    const raster8: Raster = { width: w, height: h, channels: 3, depth: 8, data: new Uint8Array(eight) };
    for (const format of ['jpeg', 'webp'] as const) {
      const from16 = await sharp((await encodeImage(raster16, format)).bytes).raw().toBuffer({ resolveWithObject: true });
      const from8 = await sharp((await encodeImage(raster8, format)).bytes).raw().toBuffer();
      expect(from16.info).toMatchObject({ width: w, height: h, channels: 3, depth: 'uchar' });
      expect(meanAbsDiff(from16.data, from8)).toBeLessThan(1.5);
      expect(meanAbsDiff(from16.data, eight)).toBeLessThan(3);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Grey
// ---------------------------------------------------------------------------------------------

describe('grey', () => {
  const W = 6;
  const H = 4;

  it('8-bit grey PNG decodes to 1 channel and writes back as grey', async () => {
    const values = pattern8(W, H, 1);
    const bytes = await sharp(values, { raw: { width: W, height: H, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    expect((await meta(bytes)).channels).toBe(1);
    const { raster, metadata } = await decodeImage(bytes);
    expect(raster).toMatchObject({ width: W, height: H, channels: 1, depth: 8 });
    expect(Array.from(raster.data)).toEqual(Array.from(values));
    for (const format of ['png', 'tiff', 'jpeg', 'webp'] as const) {
      const out = tmp(`grey.${format}`);
      await writeImage(out, raster, metadata);
      const m = await meta(out);
      // libwebp has no grey mode: WebP is always stored as RGB(A).
      expect(m.channels).toBe(format === 'webp' ? 3 : 1);
      // (sharp's raw() turns grey into RGB unless asked for 'b-w'.)
      if (format === 'png' || format === 'tiff') expect(Array.from(await sharp(out).toColourspace('b-w').raw().toBuffer())).toEqual(Array.from(values));
      if (format === 'png') expect(pngSamples(await fs.readFile(out))).toMatchObject({ channels: 1, depth: 8, values: Array.from(values) });
    }
  });

  it('16-bit grey PNG decodes to 1 channel, depth 16, identical values, and writes back as 16-bit grey', async () => {
    const values = pattern16(W, H, 1);
    const bytes = await sharp(values, { raw: { width: W, height: H, channels: 1 } }).toColourspace('grey16').png().toBuffer();
    const m0 = await meta(bytes);
    expect(m0).toMatchObject({ channels: 1, depth: 'ushort' });
    const { raster, metadata } = await decodeImage(bytes);
    expect(raster).toMatchObject({ width: W, height: H, channels: 1, depth: 16 });
    expect(Array.from(raster.data)).toEqual(Array.from(values));
    for (const format of ['png', 'tiff'] as const) {
      const out = tmp(`grey16.${format}`);
      await writeImage(out, raster, metadata);
      const m = await meta(out);
      expect(m).toMatchObject({ channels: 1, depth: 'ushort' });
      const back = await sharp(out).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer();
      expect(u16(back)).toEqual(Array.from(values));
    }
    expect(pngSamples(await fs.readFile(tmp('grey16.png')))).toMatchObject({ channels: 1, depth: 16, values: Array.from(values) });
  });

  it('a grey + alpha raster (8- and 16-bit) is written as grey + alpha', async () => {
    for (const depth of [8, 16] as const) {
      const data = depth === 8 ? new Uint8Array(pattern8(W, H, 2)) : pattern16(W, H, 2, true);
      const out = tmp(`ga${depth}.png`);
      await writeImage(out, { width: W, height: H, channels: 2, depth, data });
      expect(pngSamples(await fs.readFile(out))).toMatchObject({ channels: 2, depth, values: Array.from(data) });
    }
  });

  it('16-bit grey + alpha PNG decodes to 2 channels, depth 16', async () => {
    const values = pattern16(W, H, 2, true);
    const bytes = await sharp(values, { raw: { width: W, height: H, channels: 2 } }).toColourspace('grey16').png().toBuffer();
    expect(await meta(bytes)).toMatchObject({ channels: 2, depth: 'ushort', hasAlpha: true });
    const { raster } = await decodeImage(bytes);
    expect(raster).toMatchObject({ width: W, height: H, channels: 2, depth: 16 });
    expect(Array.from(raster.data)).toEqual(Array.from(values));
  });

  it('8-bit grey + alpha PNG decodes to 2 channels and writes back as grey + alpha', async () => {
    const values = pattern8(W, H, 2);
    const bytes = await sharp(values, { raw: { width: W, height: H, channels: 2 } }).toColourspace('b-w').png().toBuffer();
    expect((await meta(bytes)).channels).toBe(2);
    const { raster, metadata } = await decodeImage(bytes);
    expect(raster).toMatchObject({ width: W, height: H, channels: 2, depth: 8 });
    expect(Array.from(raster.data)).toEqual(Array.from(values));
    const out = tmp('ga.png');
    await writeImage(out, raster, metadata);
    expect(pngSamples(await fs.readFile(out))).toMatchObject({ channels: 2, depth: 8, values: Array.from(values) });
  });
});

// ---------------------------------------------------------------------------------------------
// Alpha
// ---------------------------------------------------------------------------------------------

describe('alpha', () => {
  it('JPEG output of an RGBA raster is flattened onto white', async () => {
    // Pixel 0 fully transparent (black), pixel 1 opaque mid-grey, pixel 2 half-transparent black.
    const data = new Uint8Array([0, 0, 0, 0, 100, 100, 100, 255, 0, 0, 0, 128, 10, 200, 30, 255]);
    const raster: Raster = { width: 4, height: 1, channels: 4, depth: 8, data };
    const out = tmp('flat.jpg');
    await writeImage(out, raster);
    const m = await meta(out);
    expect(m).toMatchObject({ format: 'jpeg', channels: 3, hasAlpha: false });
    const px = await sharp(out).raw().toBuffer();
    for (const v of px.subarray(0, 3)) expect(v).toBeGreaterThanOrEqual(250);
    for (const v of px.subarray(3, 6)) expect(Math.abs(v - 100)).toBeLessThanOrEqual(6);
    for (const v of px.subarray(6, 9)) expect(Math.abs(v - 127)).toBeLessThanOrEqual(8);
  });

  it.each(['png', 'webp', 'tiff'] as const)('%s keeps the alpha channel', async (format) => {
    const values = pattern8(5, 3, 4);
    const raster: Raster = { width: 5, height: 3, channels: 4, depth: 8, data: new Uint8Array(values) };
    const out = tmp(`alpha.${format}`);
    await writeImage(out, raster);
    const { raster: back } = await readImage(out);
    expect(back).toMatchObject({ width: 5, height: 3, channels: 4, depth: 8 });
    if (format !== 'webp') expect(Array.from(back.data)).toEqual(Array.from(values));
  });
});

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

describe('errors', () => {
  it('a text buffer is UPB_INPUT_NOT_IMAGE', async () => {
    await expectCode(decodeImage(Buffer.from('hello, this is not an image\n')), 'UPB_INPUT_NOT_IMAGE');
    const file = tmp('notes.png');
    await fs.writeFile(file, 'hello, this is not an image\n');
    const e = await expectCode(readImage(file), 'UPB_INPUT_NOT_IMAGE');
    expect(e.message).toContain('notes.png');
    expect(e.isUserError).toBe(true);
  });

  it('an empty file is UPB_INPUT_NOT_IMAGE', async () => {
    const file = tmp('empty.png');
    await fs.writeFile(file, '');
    await expectCode(readImage(file), 'UPB_INPUT_NOT_IMAGE');
  });

  it('a truncated PNG is UPB_INPUT_NOT_IMAGE', async () => {
    const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#123456' } }).png().toBuffer();
    const file = tmp('cut.png');
    await fs.writeFile(file, png.subarray(0, 40));
    await expectCode(readImage(file), 'UPB_INPUT_NOT_IMAGE');
  });

  it('a missing file is UPB_INPUT_NOT_FOUND', async () => {
    const e = await expectCode(readImage(tmp('nope.png')), 'UPB_INPUT_NOT_FOUND');
    expect(e.message).toContain('nope.png');
  });

  it('a folder is UPB_INPUT_NOT_IMAGE', async () => {
    const folder = tmp('folder.png');
    await fs.mkdir(folder);
    await expectCode(readImage(folder), 'UPB_INPUT_NOT_IMAGE');
  });

  it('formatFromPath maps extensions, case-insensitively', () => {
    expect(formatFromPath('a.png')).toBe('png');
    expect(formatFromPath('a.JPG')).toBe('jpeg');
    expect(formatFromPath('/x/y/a.jpeg')).toBe('jpeg');
    expect(formatFromPath('a.webp')).toBe('webp');
    expect(formatFromPath('a.tif')).toBe('tiff');
    expect(formatFromPath('a.TIFF')).toBe('tiff');
  });

  it.each(['x.gif', 'x', 'x.png.bak'])('formatFromPath(%p) is UPB_INVALID_OPTION listing the allowed extensions', (file) => {
    let caught: unknown;
    try {
      formatFromPath(file);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UpbridgeError);
    const e = caught as UpbridgeError;
    expect(e.code).toBe('UPB_INVALID_OPTION');
    for (const ext of ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff']) expect(e.message).toContain(ext);
    expect(e.details).toEqual({ option: 'output' });
  });

  it('writeImage to an unknown extension is UPB_INVALID_OPTION and writes nothing', async () => {
    const raster: Raster = { width: 2, height: 2, channels: 3, depth: 8, data: new Uint8Array(12) };
    await expectCode(writeImage(tmp('out.gif'), raster), 'UPB_INVALID_OPTION');
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('checkWritable accepts a new file in an existing folder and an existing file', async () => {
    await expect(checkWritable(tmp('new.png'))).resolves.toBeUndefined();
    await fs.writeFile(tmp('old.png'), 'x');
    await expect(checkWritable(tmp('old.png'))).resolves.toBeUndefined();
    expect(await fs.readdir(dir)).toEqual(['old.png']); // checking writes nothing
  });

  it('checkWritable on a missing folder is UPB_OUTPUT_UNWRITABLE', async () => {
    const e = await expectCode(checkWritable(path.join(dir, 'missing', 'out.png')), 'UPB_OUTPUT_UNWRITABLE');
    expect(e.message).toContain('does not exist');
  });

  it('checkWritable when the parent "folder" is a file is UPB_OUTPUT_UNWRITABLE', async () => {
    await fs.writeFile(tmp('file'), 'x');
    await expectCode(checkWritable(path.join(dir, 'file', 'out.png')), 'UPB_OUTPUT_UNWRITABLE');
  });

  it('checkWritable on a path that is a folder is UPB_OUTPUT_UNWRITABLE', async () => {
    await fs.mkdir(tmp('out.png'));
    const e = await expectCode(checkWritable(tmp('out.png')), 'UPB_OUTPUT_UNWRITABLE');
    expect(e.message).toContain('folder');
  });
});

// ---------------------------------------------------------------------------------------------
// Atomic write
// ---------------------------------------------------------------------------------------------

describe('atomic write', () => {
  const raster: Raster = { width: 8, height: 6, channels: 3, depth: 8, data: new Uint8Array(pattern8(8, 6, 3)) };

  it.each(['png', 'jpg', 'webp', 'tif'])('writing .%s leaves exactly one file, no temp files', async (ext) => {
    await writeImage(tmp(`out.${ext}`), raster);
    expect(await fs.readdir(dir)).toEqual([`out.${ext}`]);
    expect((await meta(tmp(`out.${ext}`))).width).toBe(8);
  });

  it('overwrites an existing file in place, leaving one file', async () => {
    await fs.writeFile(tmp('out.png'), 'old contents');
    await writeImage(tmp('out.png'), raster);
    expect(await fs.readdir(dir)).toEqual(['out.png']);
    expect((await meta(tmp('out.png'))).format).toBe('png');
  });

  it('an explicit format wins over the extension', async () => {
    await writeImage(tmp('out.png'), raster, {}, 'jpeg');
    expect((await meta(tmp('out.png'))).format).toBe('jpeg');
  });

  it('destination is an existing folder: UPB_OUTPUT_UNWRITABLE, folder untouched, no temp file', async () => {
    const dest = tmp('out.png');
    await fs.mkdir(dest);
    await fs.writeFile(path.join(dest, 'keep.txt'), 'keep');
    await expectCode(writeImage(dest, raster), 'UPB_OUTPUT_UNWRITABLE');
    expect((await fs.stat(dest)).isDirectory()).toBe(true);
    expect(await fs.readdir(dest)).toEqual(['keep.txt']);
    expect(await fs.readdir(dir)).toEqual(['out.png']);
  });

  it('destination folder removed: UPB_OUTPUT_UNWRITABLE, nothing written anywhere', async () => {
    const sub = tmp('gone');
    await fs.mkdir(sub);
    await fs.rm(sub, { recursive: true });
    const dest = path.join(sub, 'out.png');
    await expectCode(writeImage(dest, raster), 'UPB_OUTPUT_UNWRITABLE');
    await expect(fs.stat(dest)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await fs.readdir(dir)).toEqual([]);
  });

});

// ---------------------------------------------------------------------------------------------
// sharpResampler
// ---------------------------------------------------------------------------------------------

describe('sharpResampler.resize', () => {
  const cases: [ChannelCount, BitDepth][] = [];
  for (const c of [1, 2, 3, 4] as ChannelCount[]) for (const d of [8, 16] as BitDepth[]) cases.push([c, d]);

  it.each(cases)('%i channels, %i-bit: keeps channels and depth, gives the requested size', async (channels, depth) => {
    const w = 9;
    const h = 7;
    const n = w * h * channels;
    const data = depth === 16 ? new Uint16Array(n) : new Uint8Array(n);
    // A flat colour (not a multiple of 257 at 16 bits) and a partial, flat alpha: any resample of a
    // constant must give the same constant, whatever premultiplication does.
    const colour = depth === 16 ? 12345 : 123;
    const alpha = depth === 16 ? 40001 : 200;
    for (let i = 0; i < n; i++) data[i] = (channels === 2 || channels === 4) && i % channels === channels - 1 ? alpha : colour;
    const raster: Raster = { width: w, height: h, channels, depth, data };

    for (const [W, H] of [
      [36, 28],
      [5, 3],
      [13, 30],
    ]) {
      const out = await sharpResampler.resize(raster, W, H);
      expect(out).toMatchObject({ width: W, height: H, channels, depth });
      expect(out.data).toBeInstanceOf(depth === 16 ? Uint16Array : Uint8Array);
      expect(out.data.length).toBe(W * H * channels);
      // libvips reduces 16-bit images with fixed-point coefficients: downsizing a flat 16-bit image
      // moves it by up to ~60/65535 (a quarter of one 8-bit step; alpha, premultiplied, moves most).
      // Upsizing, what upscaling uses, is exact.
      const tol = depth === 16 ? (W < w ? 128 : 2) : 1;
      for (let i = 0; i < out.data.length; i++) {
        const want = (channels === 2 || channels === 4) && i % channels === channels - 1 ? alpha : colour;
        if (Math.abs(out.data[i] - want) > tol) throw new Error(`sample ${i} is ${out.data[i]}, expected ${want}`);
      }
    }
  });

  it('keeps 16-bit precision on a gradient (no round trip through 8 bits)', async () => {
    const w = 64;
    const data = new Uint16Array(w);
    for (let x = 0; x < w; x++) data[x] = 10000 + x * 3; // steps far below 257
    const out = await sharpResampler.resize({ width: w, height: 1, channels: 1, depth: 16, data }, w * 2, 1);
    const distinct = new Set(Array.from(out.data));
    expect(distinct.size).toBeGreaterThan(w);
    expect(Math.min(...out.data)).toBeGreaterThan(9990);
    expect(Math.max(...out.data)).toBeLessThan(10000 + w * 3 + 10);
  });
});
