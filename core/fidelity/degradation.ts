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
  if (colourChannels(result.channels) !== colourChannels(input.channels)) {
    throw new UpbridgeError('UPB_INTERNAL', `lrPsnr: ${colourChannels(result.channels)} vs ${colourChannels(input.channels)} colour channels`);
  }
  // One row pass at a time, straight from the interleaved levels: the result may be a 16384²
  // output, and a float copy of it (3.2 GB) is what this avoids.
  const sums = new LrPsnrAccumulator(input, result);
  sums.add(result, 0);
  return sums.psnr();
}

/**
 * LR-PSNR computed from rows as they pass (a streamed result is never whole; lrPsnr above feeds
 * it the whole result at once): each output row is area-averaged along x at once, then added
 * into the input-sized sums of the input rows its footprint covers, in increasing output row
 * order, as a column pass would. Holds the input-sized sums only (3 floats per input pixel).
 */
export class LrPsnrAccumulator {
  private readonly colours: number;
  private readonly xs;
  private readonly contributions: Array<Array<[number, number]>>;
  private readonly down: Float32Array[];
  private readonly narrow: Float32Array;
  private rowsSeen = 0;

  constructor(
    private readonly input: Raster,
    private readonly output: { width: number; height: number; channels: Raster['channels']; depth: Raster['depth'] },
  ) {
    this.colours = colourChannels(input.channels);
    this.xs = areaAxis(output.width, input.width);
    const ys = areaAxis(output.height, input.height);
    this.contributions = Array.from({ length: output.height }, () => []);
    for (let i = 0; i < input.height; i++) for (let k = ys.start[i]; k < ys.start[i + 1]; k++) this.contributions[ys.index[k]].push([i, ys.weight[k]]);
    this.down = Array.from({ length: this.colours }, () => new Float32Array(input.width * input.height));
    this.narrow = new Float32Array(input.width);
  }

  add(rows: Raster, y: number): void {
    if (y !== this.rowsSeen) throw new Error(`LrPsnrAccumulator: row ${y}, expected ${this.rowsSeen}`);
    const { start, index, weight } = this.xs;
    const width = this.input.width;
    for (let r = 0; r < rows.height; r++) {
      const rowBase = r * rows.width * rows.channels;
      for (let c = 0; c < this.colours; c++) {
        for (let i = 0; i < width; i++) {
          let s = 0;
          for (let k = start[i]; k < start[i + 1]; k++) s += weight[k] * rows.data[rowBase + c + index[k] * rows.channels];
          this.narrow[i] = s;
        }
        const down = this.down[c];
        for (const [i, w] of this.contributions[y + r]) {
          const dst = i * width;
          for (let x = 0; x < width; x++) down[dst + x] += w * this.narrow[x];
        }
      }
    }
    this.rowsSeen += rows.height;
  }

  /** dB, as lrPsnr: Infinity when identical. */
  psnr(): number {
    if (this.rowsSeen !== this.output.height) throw new Error(`LrPsnrAccumulator: ${this.rowsSeen} of ${this.output.height} rows seen`);
    const { input } = this;
    const max = maxValue(input.depth);
    const toInput = max / maxValue(this.output.depth);
    const n = input.width * input.height;
    let squared = 0;
    for (let c = 0; c < this.colours; c++) {
      const down = this.down[c];
      for (let i = 0; i < n; i++) squared += (down[i] * toInput - input.data[i * input.channels + c]) ** 2;
    }
    const mse = squared / (n * this.colours);
    return mse === 0 ? Infinity : 10 * Math.log10((max * max) / mse);
  }
}

