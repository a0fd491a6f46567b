/**
 * The one degradation operator D of the fidelity tools: the LR-consistency projection enforces
 * D(result) = input, and `lrPsnr` measures how far D(result) is from the input, so the number a
 * user sees is exactly the one the projection drives up.
 *
 * D is area averaging: each input pixel is the mean of the output pixels under its footprint
 * (areaAxis: an r×r box for an integer scale r, exact fractional coverage otherwise), separable,
 * per colour channel. The scale per axis is the actual size ratio (output width ÷ input width),
 * so the rounding in outputSize() is part of D rather than an error in it.
 *
 * Area averaging is the camera-sensor model (a pixel integrates the light on its area), and it
 * conserves every block mean, so a consistent result keeps the input's colours at the input's
 * resolution. It is not the bicubic kernel that benchmark ground truth is made with; the benchmark
 * reports LR-PSNR under this D, whatever made its inputs.
 */
import { UpbridgeError } from '../errors';
import { colourChannels, maxValue, Raster } from '../raster';
import { outputSize } from '../scale';
import { invalidOption } from '../validate';
import { applyColumns, applyRows, areaAfterLinear, areaAxis, linearAxis } from './axis';
import { FloatImage } from './image';

/** D: the image at `width`×`height` (the input's size), by area averaging. */
export function degrade(image: FloatImage, width: number, height: number): FloatImage {
  const xs = areaAxis(image.width, width);
  const ys = areaAxis(image.height, height);
  return { width, height, planes: image.planes.map((p) => applyColumns(applyRows(p, image.width, image.height, xs), width, image.height, ys)) };
}

/**
 * U: a right inverse of D, D(U(r)) = r up to float rounding, whose output is smooth. U = S·(D·S)⁻¹,
 * with S linear interpolation to `width`×`height`: the LR correction is first pre-compensated by the
 * tridiagonal D·S per axis (so that what S smears across footprints is given back), then
 * interpolated. D's own pseudo-inverse (replicating each LR pixel over its footprint) is also a
 * right inverse, but it paints r×r blocks; this one is continuous (piecewise linear).
 */
export function lift(lr: FloatImage, width: number, height: number): FloatImage {
  const xUp = linearAxis(lr.width, width);
  const yUp = linearAxis(lr.height, height);
  const xSolve = areaAfterLinear(areaAxis(width, lr.width), xUp);
  const ySolve = areaAfterLinear(areaAxis(height, lr.height), yUp);
  const planes = lr.planes.map((plane) => {
    const z = plane.slice();
    for (let y = 0; y < lr.height; y++) xSolve.solve(z, y * lr.width, 1);
    for (let x = 0; x < lr.width; x++) ySolve.solve(z, x, lr.width);
    return applyColumns(applyRows(z, lr.width, lr.height, xUp), width, lr.height, yUp);
  });
  return { width, height, planes };
}

/** Checks that `result` is `input` enlarged by `scale` as the pipeline sizes it (outputSize). */
export function checkScale(result: { width: number; height: number }, input: { width: number; height: number }, scale: number): void {
  const expected = outputSize(input.width, input.height, scale);
  if (expected.width !== result.width || expected.height !== result.height) {
    throw invalidOption('scale', `the ratio of the result (${result.width}×${result.height}) to the input (${input.width}×${input.height})`, scale);
  }
}

/**
 * LR-PSNR in dB: PSNR between D(result) and the input, over the colour channels, on the input's
 * 0..max scale (255 for 8-bit). D(result) is not rounded: rounding it would add up to ½ level of
 * error that belongs to the measurement, not to the result. D runs on the raw levels, so a result
 * consistent to the last bit gives Infinity at power-of-two scales (and above 140 dB at others).
 * `scale`, when given, is checked against the sizes (D itself takes the exact size ratio).
 */
export function lrPsnr(result: Raster, input: Raster, scale?: number): number {
  if (scale !== undefined) checkScale(result, input, scale);
  const colours = colourChannels(result.channels);
  if (colours !== colourChannels(input.channels)) throw new UpbridgeError('UPB_INTERNAL', `lrPsnr: ${colours} vs ${colourChannels(input.channels)} colour channels`);
  const max = maxValue(input.depth);
  const toInput = max / maxValue(result.depth);
  const xs = areaAxis(result.width, input.width);
  const ys = areaAxis(result.height, input.height);
  const n = input.width * input.height;
  let squared = 0;
  // One channel at a time, rows straight from the interleaved levels: the result may be a
  // 16384² output, and a float copy of it (3.2 GB) is what this avoids.
  for (let c = 0; c < colours; c++) {
    const narrow = new Float32Array(input.width * result.height);
    for (let y = 0; y < result.height; y++) {
      const src = y * result.width * result.channels + c;
      const dst = y * input.width;
      for (let i = 0; i < input.width; i++) {
        let s = 0;
        for (let k = xs.start[i]; k < xs.start[i + 1]; k++) s += xs.weight[k] * result.data[src + xs.index[k] * result.channels];
        narrow[dst + i] = s;
      }
    }
    const down = applyColumns(narrow, input.width, result.height, ys);
    for (let i = 0; i < n; i++) squared += (down[i] * toInput - input.data[i * input.channels + c]) ** 2;
  }
  const mse = squared / (n * colours);
  return mse === 0 ? Infinity : 10 * Math.log10((max * max) / mse);
}
