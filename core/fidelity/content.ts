/**
 * `content: auto`: is this a photo or an illustration (drawing, cartoon, slide, screenshot)? The
 * catalogue has models for each; a wrong guess only costs a less suited model, so a cheap
 * heuristic is enough.
 *
 * Illustrations are made of flat colour regions with hard edges between them; photos have noise,
 * texture and optical blur almost everywhere. Two figures, on the colour channels, in 8-bit levels:
 * - flat share: pixels whose 3×3 neighbourhood spans at most FLAT_RANGE levels in every channel;
 * - hard-edge share: of the other pixels that sit on an edge (their 7×7 neighbourhood spans at
 *   least EDGE_RANGE levels), those whose 3×3 neighbourhood already spans HARD_SHARE of that: the
 *   step happens within a pixel or two, as a drawn, anti-aliased edge does. A lens or a blur
 *   spreads the same step over several pixels.
 * Illustration when both reach CONTENT_THRESHOLDS.
 *
 * Measured (flat share, hard-edge share): the synthetic flat drawing of the tests 0.91, 0.83, and
 * out of focus 0.66, 0.001; CSet14 ppt3 (a slide) 0.54, 0.37, as a JPEG at quality 70 0.47, 0.33,
 * at half size 0.44, 0.44; the 14 Set5/Set14 photos at most 0.15 flat; Real-ESRGAN's real inputs
 * at most 0.26 flat (a tree cut out on a flat background), and a blurry grey portrait 0.17, 0.10.
 * Known misses: a painted illustration with shading (CSet14 comic: 0.02 flat) and a noisy or
 * JPEG-heavy cartoon (Real-ESRGAN's 0014.jpg: 0.03) read as photos; grain hides flat colour from
 * any test this cheap.
 */
import { colourChannels, hasAlpha, maxValue, Raster } from '../raster';

export type DetectedContent = 'photo' | 'illustration';

const FLAT_RANGE = 2;
const EDGE_RANGE = 48;
const HARD_SHARE = 0.6;

export const CONTENT_THRESHOLDS = { flatShare: 0.35, hardEdgeShare: 0.2 } as const;

/** Neighbourhoods looked at, at most: large images are sampled on a grid (cost stays that of ~0.25 Mpx). */
const MAX_SAMPLES = 1 << 18;

export interface ContentFeatures {
  flatShare: number;
  hardEdgeShare: number;
  /** Neighbourhoods measured (opaque pixels, away from the border, on the sampling grid). */
  samples: number;
}

export function contentFeatures(raster: Raster): ContentFeatures {
  const { width, height, channels } = raster;
  const colours = colourChannels(channels);
  const levels = maxValue(raster.depth) / 255;
  const flatRange = FLAT_RANGE * levels;
  const edgeRange = EDGE_RANGE * levels;
  const alpha = hasAlpha(channels) ? channels - 1 : -1;
  const step = Math.max(1, Math.ceil(Math.sqrt(((width - 2) * (height - 2)) / MAX_SAMPLES)));
  /** Largest range over the colour channels in the (2r+1)² window around (x, y), clipped at the border. */
  const rangeAround = (x: number, y: number, r: number): number => {
    let range = 0;
    const y0 = Math.max(0, y - r);
    const y1 = Math.min(height - 1, y + r);
    const x0 = Math.max(0, x - r);
    const x1 = Math.min(width - 1, x + r);
    for (let c = 0; c < colours; c++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let yy = y0; yy <= y1; yy++) {
        for (let xx = x0; xx <= x1; xx++) {
          const v = raster.data[(yy * width + xx) * channels + c];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
      range = Math.max(range, hi - lo);
    }
    return range;
  };
  let samples = 0;
  let flat = 0;
  let edges = 0;
  let hard = 0;
  for (let y = 1; y < height - 1; y += step) {
    for (let x = 1; x < width - 1; x += step) {
      // The colour under a transparent pixel is arbitrary (often a flat fill): not evidence.
      if (alpha >= 0 && raster.data[(y * width + x) * channels + alpha] === 0) continue;
      samples++;
      const near = rangeAround(x, y, 1);
      if (near <= flatRange) {
        flat++;
        continue;
      }
      const wide = rangeAround(x, y, 3);
      if (wide < edgeRange) continue;
      edges++;
      if (near >= HARD_SHARE * wide) hard++;
    }
  }
  return { flatShare: samples ? flat / samples : 0, hardEdgeShare: edges ? hard / edges : 0, samples };
}

/** 'illustration' for flat colour with hard edges, else 'photo' (also for images under 3×3). */
export function detectContent(raster: Raster): DetectedContent {
  const f = contentFeatures(raster);
  return f.flatShare >= CONTENT_THRESHOLDS.flatShare && f.hardEdgeShare >= CONTENT_THRESHOLDS.hardEdgeShare ? 'illustration' : 'photo';
}
