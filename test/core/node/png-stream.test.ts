import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../../../core/node/image-io';
import { PngRowWriter, readPngRows, readPngShape } from '../../../core/node/png-stream';
import { Raster } from '../../../core/raster';
import { syntheticRaster } from '../../helpers';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-png-stream-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

/** Rows y0 … y0 + height − 1 of a raster, as their own raster. */
function rowsOf(r: Raster, y0: number, height: number): Raster {
  const n = r.width * r.channels;
  return { ...r, height, data: r.data.slice(y0 * n, (y0 + height) * n) };
}

/** Writes `raster` in batches of the given heights (repeated), then finishes. */
async function writeInBatches(file: string, raster: Raster, batches: number[], options = {}): Promise<void> {
  const writer = await PngRowWriter.open(file, raster, options);
  for (let y = 0, k = 0; y < raster.height; k++) {
    const h = Math.min(batches[k % batches.length], raster.height - y);
    await writer.write(rowsOf(raster, y, h));
    y += h;
  }
  await writer.finish();
}

const leftovers = async () => (await fs.readdir(dir)).filter((f) => f.endsWith('.tmp'));

describe('PngRowWriter writes a PNG that decodes to the rows given', () => {
  test.each([
    ['RGB 8-bit', 37, 23, 3, 8],
    ['RGBA 8-bit', 19, 31, 4, 8],
    ['grey 8-bit', 33, 17, 1, 8],
    ['grey+alpha 8-bit', 21, 13, 2, 8],
    ['RGB 16-bit', 29, 11, 3, 16],
    ['RGBA 16-bit', 17, 9, 4, 16],
    ['grey 16-bit', 23, 15, 1, 16],
    ['grey+alpha 16-bit', 13, 7, 2, 16],
    ['a single pixel', 1, 1, 3, 8],
    ['a 1-pixel column', 1, 40, 4, 16],
  ] as const)('%s (%i×%i), rows in uneven batches', async (_name, width, height, channels, depth) => {
    const raster = syntheticRaster(width, height, channels, depth, width * height);
    // Saturated and extreme values too: a filter or byte-order slip shows there first.
    raster.data[0] = depth === 16 ? 65535 : 255;
    raster.data[raster.data.length - 1] = 0;
    raster.data[Math.floor(raster.data.length / 2)] = depth === 16 ? 0x1234 : 0x7f;
    const file = path.join(dir, `out-${width}x${height}-${channels}-${depth}.png`);
    await writeInBatches(file, raster, [1, 5, 2, 7]);
    const bytes = await fs.readFile(file);
    const m = await sharp(bytes).metadata();
    expect(m).toMatchObject({ format: 'png', width, height, channels, depth: depth === 16 ? 'ushort' : 'uchar' });
    const decoded = (await decodeImage(bytes)).raster;
    expect(decoded).toMatchObject({ width, height, channels, depth });
    expect(Buffer.from(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength).equals(Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength))).toBe(true);
    expect(await leftovers()).toEqual([]);
  });

  test('compresses a photo-like image about as well as sharp does (adaptive filters, zlib level 6)', async () => {
    const raster = syntheticRaster(256, 192, 3, 8, 7);
    const file = path.join(dir, 'size.png');
    await writeInBatches(file, raster, [64]);
    const ours = (await fs.stat(file)).size;
    const sharps = (await sharp(raster.data, { raw: { width: 256, height: 192, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer()).length;
    expect(ours).toBeLessThan(sharps * 1.1);
  });
});

describe('metadata', () => {
  test('ICC profile, EXIF, density and XMP come back from the streamed PNG', async () => {
    const src = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#808080' } })
      .withMetadata({ density: 300 })
      .withIccProfile('p3')
      .withExif({ IFD0: { Make: 'TestCam', Model: 'X1' } })
      .png()
      .toBuffer();
    const { metadata } = await decodeImage(src);
    expect(metadata.icc).toBeDefined();
    const xmp = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>';
    const raster = syntheticRaster(12, 10, 3, 8);
    const file = path.join(dir, 'meta.png');
    await writeInBatches(file, raster, [3], { metadata: { ...metadata, xmp } });
    const m = await sharp(file).metadata();
    expect(m.icc?.equals(metadata.icc!)).toBe(true);
    expect(m.density).toBe(300);
    expect(m.exif?.includes('TestCam')).toBe(true);
    expect(m.xmp?.toString('utf8')).toBe(xmp);
  });
});

describe('atomic: no half-written file, ever', () => {
  test('abort leaves nothing, and an existing file at the destination untouched', async () => {
    const file = path.join(dir, 'kept.png');
    await fs.writeFile(file, 'previous');
    const raster = syntheticRaster(16, 16, 3, 8);
    const writer = await PngRowWriter.open(file, raster);
    await writer.write(rowsOf(raster, 0, 8));
    expect((await leftovers()).length).toBe(1); // the temporary file, beside the destination
    await writer.abort();
    expect(await fs.readFile(file, 'utf8')).toBe('previous');
    expect(await leftovers()).toEqual([]);
  });

  test('finishing with rows missing fails and writes nothing; too many rows or a wrong shape are refused', async () => {
    const file = path.join(dir, 'short.png');
    const raster = syntheticRaster(16, 16, 3, 8);
    const writer = await PngRowWriter.open(file, raster);
    await writer.write(rowsOf(raster, 0, 15));
    await expect(writer.write(rowsOf(raster, 0, 2))).rejects.toThrow(/more than 16 rows/);
    await expect(writer.write({ ...rowsOf(raster, 0, 1), channels: 4 })).rejects.toThrow(/3ch/);
    await expect(writer.finish()).rejects.toThrow(/15 of 16 rows/);
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/);
    expect(await leftovers()).toEqual([]);
  });

  test('a destination in a missing folder fails at open', async () => {
    await expect(PngRowWriter.open(path.join(dir, 'no-such-folder', 'x.png'), syntheticRaster(2, 2))).rejects.toThrow(/ENOENT/);
  });
});

describe('readPngRows reads rows back in bounded batches', () => {
  test.each([
    ['RGB 8-bit', 37, 23, 3, 8],
    ['grey+alpha 8-bit', 21, 13, 2, 8],
    ['RGBA 16-bit', 17, 9, 4, 16],
    ['grey 16-bit', 23, 15, 1, 16],
  ] as const)('%s: our own PNG, batches of a few rows', async (_name, width, height, channels, depth) => {
    const raster = syntheticRaster(width, height, channels, depth, 3);
    const file = path.join(dir, `read-${channels}-${depth}.png`);
    await writeInBatches(file, raster, [4]);
    const batches: Raster[] = [];
    for await (const rows of readPngRows(file, width * channels * (depth / 8) * 3)) batches.push({ ...rows, data: rows.data.slice() });
    expect(batches.map((b) => b.height)).toEqual([...Array(Math.floor(height / 3)).fill(3), ...(height % 3 ? [height % 3] : [])]);
    const joined = depth === 16 ? new Uint16Array(raster.data.length) : new Uint8Array(raster.data.length);
    batches.reduce((at, b) => (joined.set(b.data, at), at + b.data.length), 0);
    expect(Array.from(joined)).toEqual(Array.from(raster.data));
    expect(await readPngShape(file)).toEqual({ width, height, channels, depth });
  });

  test.each([8, 16] as const)('a %i-bit PNG written by sharp with every filter type (adaptive filtering) reads as sharp decodes it', async (depth) => {
    const raster = syntheticRaster(64, 40, 3, depth, 11);
    const bytes = await sharp(raster.data, { raw: { width: 64, height: 40, channels: 3 } }).toColourspace(depth === 16 ? 'rgb16' : 'srgb').png({ adaptiveFiltering: true }).toBuffer();
    const file = path.join(dir, `sharp-${depth}.png`);
    await fs.writeFile(file, bytes);
    const parts: number[] = [];
    for await (const rows of readPngRows(file)) parts.push(...rows.data);
    expect(parts).toEqual(Array.from((await decodeImage(bytes)).raster.data));
  });

  test('a truncated file fails instead of giving short rows', async () => {
    const raster = syntheticRaster(32, 32, 3, 8, 5);
    const file = path.join(dir, 'whole.png');
    await writeInBatches(file, raster, [32]);
    const bytes = await fs.readFile(file);
    const cut = path.join(dir, 'cut.png');
    await fs.writeFile(cut, bytes.subarray(0, bytes.length - 40));
    await expect((async () => {
      for await (const _rows of readPngRows(cut)) void _rows;
    })()).rejects.toThrow();
  });
});
