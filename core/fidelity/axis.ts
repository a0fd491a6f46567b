import { UpbridgeError } from '../errors';

/**
 * One axis of a separable linear operator, as sparse rows: output sample i is
 * Σ weight[k] · input[index[k]] for k in [start[i], start[i + 1]). Every operator of the fidelity
 * tools (the degradation, its smooth right inverse, blurs) is a product of two of these, so an
 * H×W image costs O(H·W·taps), never a dense matrix.
 */
export interface AxisOperator {
  inLength: number;
  outLength: number;
  start: Int32Array;
  index: Int32Array;
  weight: Float64Array;
}

function build(inLength: number, outLength: number, rows: Array<Array<[number, number]>>): AxisOperator {
  const start = new Int32Array(outLength + 1);
  for (let i = 0; i < outLength; i++) start[i + 1] = start[i] + rows[i].length;
  const index = new Int32Array(start[outLength]);
  const weight = new Float64Array(start[outLength]);
  rows.forEach((row, i) => row.forEach(([j, w], k) => ((index[start[i] + k] = j), (weight[start[i] + k] = w))));
  return { inLength, outLength, start, index, weight };
}

/**
 * Area averaging from `hrLength` samples to `lrLength` (hrLength ≥ lrLength): LR sample i is the
 * mean of the HR line over its footprint [i·r, (i+1)·r) with r = hrLength / lrLength, HR samples
 * that straddle a footprint edge counted by the fraction inside it. For an integer r this is the
 * plain box mean of r samples; for a fractional one (scale 2.5, or the rounding of the output size)
 * it is still exact, because the overlaps are computed in units of 1/lrLength, in integers.
 */
export function areaAxis(hrLength: number, lrLength: number): AxisOperator {
  if (!(lrLength >= 1 && hrLength >= lrLength)) throw new UpbridgeError('UPB_INTERNAL', `areaAxis: ${hrLength} → ${lrLength}`);
  const rows: Array<Array<[number, number]>> = [];
  for (let i = 0; i < lrLength; i++) {
    // Footprint [i·H, (i+1)·H) and HR sample X spanning [X·L, (X+1)·L), both in units of 1/L.
    const lo = i * hrLength;
    const hi = lo + hrLength;
    const row: Array<[number, number]> = [];
    for (let X = Math.floor(lo / lrLength); X * lrLength < hi; X++) {
      const overlap = Math.min(hi, (X + 1) * lrLength) - Math.max(lo, X * lrLength);
      if (overlap > 0) row.push([X, overlap / hrLength]);
    }
    rows.push(row);
  }
  return build(hrLength, lrLength, rows);
}

/**
 * Linear interpolation from `lrLength` samples to `hrLength`, sample centres aligned (HR sample X
 * sits at LR coordinate (X + ½)·L/H − ½) and the edge sample held beyond the ends. Continuous, so a
 * correction lifted through it has no steps at LR pixel edges.
 */
export function linearAxis(lrLength: number, hrLength: number): AxisOperator {
  const rows: Array<Array<[number, number]>> = [];
  for (let X = 0; X < hrLength; X++) {
    const u = Math.min(lrLength - 1, Math.max(0, ((X + 0.5) * lrLength) / hrLength - 0.5));
    const j = Math.floor(u);
    const t = u - j;
    rows.push(t > 0 ? [[j, 1 - t], [j + 1, t]] : [[j, 1]]);
  }
  return build(lrLength, hrLength, rows);
}

/** Applies `op` along x to every row of a width×height plane. */
export function applyRows(plane: Float32Array, width: number, height: number, op: AxisOperator): Float32Array {
  checkLength(op, width);
  const out = new Float32Array(op.outLength * height);
  for (let y = 0; y < height; y++) {
    const src = y * width;
    const dst = y * op.outLength;
    for (let i = 0; i < op.outLength; i++) {
      let s = 0;
      for (let k = op.start[i]; k < op.start[i + 1]; k++) s += op.weight[k] * plane[src + op.index[k]];
      out[dst + i] = s;
    }
  }
  return out;
}

/** Applies `op` along y to every column of a width×height plane. */
export function applyColumns(plane: Float32Array, width: number, height: number, op: AxisOperator): Float32Array {
  checkLength(op, height);
  const out = new Float32Array(width * op.outLength);
  for (let i = 0; i < op.outLength; i++) {
    const dst = i * width;
    for (let k = op.start[i]; k < op.start[i + 1]; k++) {
      const w = op.weight[k];
      const src = op.index[k] * width;
      for (let x = 0; x < width; x++) out[dst + x] += w * plane[src + x];
    }
  }
  return out;
}

function checkLength(op: AxisOperator, length: number): void {
  if (op.inLength !== length) throw new UpbridgeError('UPB_INTERNAL', `axis operator takes ${op.inLength} samples, got ${length}`);
}

/**
 * The tridiagonal matrix D·S (LR → LR) of an area average D after a linear interpolation S, with
 * its Thomas factorisation, so that D·S·z = r is solved in O(L) per line.
 *
 * Why it is tridiagonal: an HR sample inside footprint i has its centre within (i − 1, i + 1) in LR
 * coordinates (footprints are at least one HR sample wide), so its interpolation reads only
 * LR samples i − 1, i and i + 1. Why it is safe to factor without pivoting: the HR centres of
 * footprint i lie within about ½ of i, where the interpolation weight on i is at least ½, so the
 * diagonal holds about ¾ of each row (sum 1): strictly diagonally dominant (checked below).
 */
export interface TridiagonalSolver {
  length: number;
  /** Solves in place along a line of `length` samples starting at `offset`, `stride` apart. */
  solve(values: Float32Array, offset: number, stride: number): void;
}

export function areaAfterLinear(down: AxisOperator, up: AxisOperator): TridiagonalSolver {
  const n = down.outLength;
  if (up.outLength !== down.inLength || up.inLength !== n) throw new UpbridgeError('UPB_INTERNAL', 'areaAfterLinear: operators do not compose');
  const sub = new Float64Array(n);
  const diag = new Float64Array(n);
  const sup = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let k = down.start[i]; k < down.start[i + 1]; k++) {
      const X = down.index[k];
      for (let m = up.start[X]; m < up.start[X + 1]; m++) {
        const j = up.index[m];
        const w = down.weight[k] * up.weight[m];
        if (j === i) diag[i] += w;
        else if (j === i - 1) sub[i] += w;
        else if (j === i + 1) sup[i] += w;
        else throw new UpbridgeError('UPB_INTERNAL', `areaAfterLinear: row ${i} reaches ${j}`);
      }
    }
    if (!(diag[i] > sub[i] + sup[i])) throw new UpbridgeError('UPB_INTERNAL', `areaAfterLinear: row ${i} of ${n} is not diagonally dominant`);
  }
  // Thomas: forward elimination coefficients, computed once per axis and reused for every line.
  const upper = new Float64Array(n);
  const pivot = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    pivot[i] = diag[i] - (i > 0 ? sub[i] * upper[i - 1] : 0);
    upper[i] = sup[i] / pivot[i];
  }
  const work = new Float64Array(n);
  return {
    length: n,
    solve(values, offset, stride) {
      for (let i = 0; i < n; i++) work[i] = (values[offset + i * stride] - (i > 0 ? sub[i] * work[i - 1] : 0)) / pivot[i];
      for (let i = n - 2; i >= 0; i--) work[i] -= upper[i] * work[i + 1];
      for (let i = 0; i < n; i++) values[offset + i * stride] = work[i];
    },
  };
}
