import sharp from 'sharp';
import { syntheticRaster } from '../../helpers';
import { encodePng, RawPixels } from '../../../plugins/figma/src/ui/png-encode';
import { crop, cutIntoPngTiles, tileGrid } from '../../../plugins/figma/src/ui/tiles';
import { imageKind, pngSize } from '../../../plugins/figma/src/common/image-header';
import { decodeImage } from '../../../core/node/image-io';
import { encode } from './plugin-harness';

/** The UI's pure pixel code: the PNG encoder (checked by decoding with libvips) and the tile grid. */

function bytesOf(data: Uint8Array | Uint16Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

describe('encodePng', () => {
  for (const channels of [1, 2, 3, 4] as const) {
    for (const depth of [8, 16] as const) {
      test(`${channels} channel(s) at ${depth} bits decode to the same samples`, async () => {
        const raster = syntheticRaster(37, 23, channels, depth, channels * depth);
        const pixels: RawPixels = { width: 37, height: 23, channels, depth, data: bytesOf(raster.data) };
        // The project's own decoder (libvips): it keeps grey as grey and 16 bits as 16.
        const { raster: decoded } = await decodeImage(Buffer.from(encodePng(pixels)));
        expect([decoded.width, decoded.height, decoded.channels, decoded.depth]).toEqual([37, 23, channels, depth]);
        expect(Buffer.compare(Buffer.from(bytesOf(decoded.data)), Buffer.from(pixels.data))).toBe(0);
      });
    }
  }

  test('refuses pixels that do not match their size', () => {
    expect(() => encodePng({ width: 4, height: 4, channels: 3, depth: 8, data: new Uint8Array(47) })).toThrow('4×4×3 at 8 bits is 48 bytes; got 47');
  });
});

describe('tileGrid', () => {
  test('covers the image exactly with balanced tiles of at most maxSide, row by row', () => {
    const tiles = tileGrid(9000, 5000, 4096);
    // 9000 → 3 columns of 3000; 5000 → 2 rows of 2500.
    expect(tiles).toEqual([
      { x: 0, y: 0, width: 3000, height: 2500 },
      { x: 3000, y: 0, width: 3000, height: 2500 },
      { x: 6000, y: 0, width: 3000, height: 2500 },
      { x: 0, y: 2500, width: 3000, height: 2500 },
      { x: 3000, y: 2500, width: 3000, height: 2500 },
      { x: 6000, y: 2500, width: 3000, height: 2500 },
    ]);
  });

  test('spreads a remainder one pixel at a time and leaves a fitting image whole', () => {
    expect(tileGrid(8195, 10, 4096).map((t) => t.width)).toEqual([2732, 2732, 2731]);
    expect(tileGrid(4096, 4096, 4096)).toEqual([{ x: 0, y: 0, width: 4096, height: 4096 }]);
    expect(tileGrid(4097, 1, 4096).map((t) => t.width)).toEqual([2049, 2048]);
  });
});

test('tiles cut from a raster and stitched back give the raster', async () => {
  const raster = syntheticRaster(50, 31, 4, 8, 5);
  const pixels: RawPixels = { width: 50, height: 31, channels: 4, depth: 8, data: bytesOf(raster.data) };
  const pieces = cutIntoPngTiles(pixels, 16);
  expect(pieces).toHaveLength(4 * 2);
  const canvas = Buffer.alloc(50 * 31 * 4);
  for (const piece of pieces) {
    const { data, info } = await sharp(piece.bytes).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([piece.width, piece.height]);
    expect(Buffer.compare(data, Buffer.from(crop(pixels, piece).data))).toBe(0);
    for (let y = 0; y < piece.height; y++) data.copy(canvas, ((piece.y + y) * 50 + piece.x) * 4, y * piece.width * 4, (y + 1) * piece.width * 4);
  }
  expect(Buffer.compare(canvas, Buffer.from(pixels.data))).toBe(0);
});

test('image headers: the kind of PNG, JPEG and GIF bytes, and a PNG\'s size', async () => {
  const raster = syntheticRaster(21, 13, 3, 8, 1);
  expect(imageKind(await encode(raster, 'png'))).toBe('png');
  expect(imageKind(await encode(raster, 'jpeg'))).toBe('jpeg');
  expect(imageKind(await encode(raster, 'gif'))).toBe('gif');
  expect(imageKind(new TextEncoder().encode('<svg></svg>'))).toBeUndefined();
  expect(pngSize(await encode(raster, 'png'))).toEqual({ width: 21, height: 13 });
  const jpeg = await encode(raster, 'jpeg');
  expect(() => pngSize(jpeg)).toThrow(/expected a PNG from Figma's export, got \d+ bytes starting ff d8 ff/);
});
