import sharp from 'sharp';
import { contentFeatures, detectContent } from '../../../core/fidelity/content';
import { convertDepth, Raster } from '../../../core/raster';
import { fixture, random, rasterFrom } from './kit';

/**
 * A flat-colour drawing with anti-aliased edges, as a vector tool renders one: shapes filled with
 * flat colours, each output pixel the mean of 4×4 sub-samples (so edges get in-between values).
 */
function drawing(width: number, height: number): Raster {
  const palette = [
    [250, 246, 236], // paper
    [232, 72, 60], // red disc
    [40, 90, 170], // blue bar
    [250, 200, 40], // yellow triangle
    [30, 30, 30], // outline
  ];
  const colourAt = (u: number, v: number): number[] => {
    const disc = (u - 0.3 * width) ** 2 + (v - 0.45 * height) ** 2;
    if (Math.abs(Math.sqrt(disc) - 0.22 * height) < 1.2) return palette[4];
    if (disc < (0.22 * height) ** 2) return palette[1];
    if (u > 0.55 * width && u < 0.9 * width && v > 0.15 * height && v < 0.35 * height) return palette[2];
    if (v > 0.55 * height && v < 0.9 * height && u > 0.5 * width && u - 0.5 * width < (v - 0.55 * height) * 1.3) return palette[3];
    return palette[0];
  };
  return rasterFrom(width, height, 3, (x, y, c) => {
    let s = 0;
    for (let j = 0; j < 4; j++) for (let i = 0; i < 4; i++) s += colourAt(x + (i + 0.5) / 4, y + (j + 0.5) / 4)[c];
    return Math.round(s / 16);
  });
}

async function viaJpeg(r: Raster, quality: number): Promise<Raster> {
  const { data, info } = await sharp(Buffer.from(r.data), { raw: { width: r.width, height: r.height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer()
    .then((jpeg) => sharp(jpeg).raw().toBuffer({ resolveWithObject: true }));
  return { width: info.width, height: info.height, channels: 3, depth: 8, data: new Uint8Array(data) };
}

/** The same image out of focus: a Gaussian blur, σ 2.4 (sharp's). */
async function blurred(r: Raster): Promise<Raster> {
  const { data, info } = await sharp(Buffer.from(r.data), { raw: { width: r.width, height: r.height, channels: 3 } })
    .blur(2.4)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: 3, depth: 8, data: new Uint8Array(data) };
}

describe('detectContent', () => {
  test('real photos are photos (the foliage fixture, the photo strip, the cliffs)', async () => {
    for (const name of ['photo-161x121.png', 'photo-strip-256x24.png', 'ncnn-reference/input-c.png', 'ncnn-reference/input-a.png']) {
      expect([name, detectContent(await fixture(name))]).toEqual([name, 'photo']);
    }
  });

  test('a flat-colour drawing with anti-aliased edges is an illustration', () => {
    const art = drawing(160, 120);
    const f = contentFeatures(art);
    expect(f.flatShare).toBeGreaterThan(0.8);
    expect(detectContent(art)).toBe('illustration');
  });

  test('it stays an illustration as a JPEG (quality 75) and at half size', async () => {
    expect(detectContent(await viaJpeg(drawing(160, 120), 75))).toBe('illustration');
    expect(detectContent(drawing(80, 60))).toBe('illustration');
  });

  test('grey and 16-bit copies of the drawing read the same', () => {
    const art = drawing(120, 90);
    const grey = rasterFrom(120, 90, 1, (x, y) => art.data[(y * 120 + x) * 3 + 1]);
    expect(detectContent(grey)).toBe('illustration');
    expect(detectContent(convertDepth(art, 16))).toBe('illustration');
    expect(contentFeatures(convertDepth(art, 16))).toEqual(contentFeatures(art));
  });

  test('flat regions alone are not enough: the drawing out of focus (soft edges) is a photo', async () => {
    const soft = await blurred(drawing(160, 120));
    const f = contentFeatures(soft);
    // Still mostly flat, but its transitions are gradients, not edges.
    expect(f.flatShare).toBeGreaterThan(0.35);
    expect(f.hardEdgeShare).toBeLessThan(0.2);
    expect(detectContent(soft)).toBe('photo');
  });

  test('the drawing under sensor noise (±6 levels) reads as a photo: the documented limit', () => {
    const next = random(4);
    const art = drawing(160, 120);
    const noisy = rasterFrom(160, 120, 3, (x, y, c) => Math.min(255, Math.max(0, art.data[(y * 160 + x) * 3 + c] + Math.round((next() - 0.5) * 12))));
    expect(detectContent(noisy)).toBe('photo');
  });

  test('transparent pixels are no evidence: a photo on a transparent flat fill stays a photo', async () => {
    const photo = await fixture('photo-161x121.png');
    const w = 300;
    const h = 121;
    const cut = rasterFrom(w, h, 4, (x, y, c) => (x < 161 ? (c === 3 ? 255 : photo.data[(y * 161 + x) * 3 + c]) : c === 3 ? 0 : 255));
    expect(detectContent(cut)).toBe('photo');
    // The same canvas opaque: now the white half is real flat colour next to hard edges.
    const opaque = rasterFrom(w, h, 4, (x, y, c) => (c === 3 ? 255 : cut.data[(y * w + x) * 4 + c]));
    expect(contentFeatures(opaque).flatShare).toBeGreaterThan(contentFeatures(cut).flatShare + 0.3);
  });

  test('images too small to judge default to photo', () => {
    expect(detectContent(rasterFrom(2, 2, 3, () => 255))).toBe('photo');
    expect(contentFeatures(rasterFrom(2, 2, 3, () => 255)).samples).toBe(0);
  });
});
