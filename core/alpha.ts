import { colourChannels, Raster } from './raster';

/**
 * Fully transparent pixels carry arbitrary colour (usually black). A model would smear it into the
 * visible edge, and the upscaled edge would show a dark fringe. Before upscaling, fill the colour
 * of every alpha = 0 pixel from its visible neighbours by push-pull: an alpha-weighted image
 * pyramid, each empty pixel taking the weighted mean of the nearest coarser level that has any
 * visible pixel. Pixels with alpha > 0 keep their colour exactly.
 */
export function fillTransparentColour(raster: Raster): Raster {
  const { width, height, channels } = raster;
  const alphaIndex = channels - 1;
  const colours = colourChannels(channels);
  const n = width * height;
  let transparent = 0;
  for (let i = 0; i < n; i++) if (raster.data[i * channels + alphaIndex] === 0) transparent++;
  if (transparent === 0 || transparent === n) return raster;

  // Level 0: premultiplied colour and alpha weight.
  const levels: { w: number; h: number; colour: Float64Array; weight: Float64Array }[] = [];
  let w = width;
  let h = height;
  let colour = new Float64Array(n * colours);
  let weight = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = raster.data[i * channels + alphaIndex];
    weight[i] = a;
    for (let c = 0; c < colours; c++) colour[i * colours + c] = raster.data[i * channels + c] * a;
  }
  levels.push({ w, h, colour, weight });
  while (w > 1 || h > 1) {
    const cw = Math.ceil(w / 2);
    const ch = Math.ceil(h / 2);
    const cColour = new Float64Array(cw * ch * colours);
    const cWeight = new Float64Array(cw * ch);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = y * w + x;
        const dst = (y >> 1) * cw + (x >> 1);
        cWeight[dst] += weight[src];
        for (let c = 0; c < colours; c++) cColour[dst * colours + c] += colour[src * colours + c];
      }
    }
    w = cw;
    h = ch;
    colour = cColour;
    weight = cWeight;
    levels.push({ w, h, colour, weight });
  }

  // Pull: from the top down, a pixel's mean colour is its own where it saw any alpha, else its
  // parent's (already resolved) mean.
  let parentMean = new Float64Array(colours);
  const top = levels[levels.length - 1];
  for (let c = 0; c < colours; c++) parentMean[c] = top.colour[c] / top.weight[0];
  for (let l = levels.length - 2; l >= 0; l--) {
    const fine = levels[l];
    const coarseW = levels[l + 1].w;
    const mean = new Float64Array(fine.w * fine.h * colours);
    for (let y = 0; y < fine.h; y++) {
      for (let x = 0; x < fine.w; x++) {
        const i = y * fine.w + x;
        const p = (y >> 1) * coarseW + (x >> 1);
        for (let c = 0; c < colours; c++) {
          mean[i * colours + c] = fine.weight[i] > 0 ? fine.colour[i * colours + c] / fine.weight[i] : parentMean[p * colours + c];
        }
      }
    }
    parentMean = mean;
  }

  const out: Raster = { ...raster, data: raster.data.slice() };
  for (let i = 0; i < n; i++) {
    if (raster.data[i * channels + alphaIndex] !== 0) continue;
    for (let c = 0; c < colours; c++) out.data[i * channels + c] = Math.round(parentMean[i * colours + c]);
  }
  return out;
}
