import * as ort from 'onnxruntime-node';
import { convertNcnnToOnnx, NcnnConventions } from '../../../core/convert/ncnn-to-onnx';

/**
 * Shared by the ncnn converter tests: CHW tensors in float64, deterministic test data, builders
 * for .param text and .bin bytes, and a runner that puts a converted graph through a real ONNX
 * Runtime session. References are written in the test files from ncnn's source, never from the
 * converter.
 */

export interface Tensor {
  c: number;
  h: number;
  w: number;
  d: Float64Array;
}

export function tensor(c: number, h: number, w: number, fn: (c: number, y: number, x: number) => number): Tensor {
  const d = new Float64Array(c * h * w);
  for (let k = 0; k < c; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) d[(k * h + y) * w + x] = fn(k, y, x);
  return { c, h, w, d };
}

export const at = (t: Tensor, c: number, y: number, x: number) => t.d[(c * t.h + y) * t.w + x];
export const map = (t: Tensor, fn: (v: number, i: number) => number): Tensor => ({ ...t, d: t.d.map(fn) });
export const zip = (a: Tensor, b: Tensor, fn: (x: number, y: number) => number): Tensor => map(a, (v, i) => fn(v, b.d[i]));

/** Deterministic float32 values in [-1, 1), with no symmetry across channels or axes. */
export function values(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed;
  for (let i = 0; i < count; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out[i] = (s / 0x7fffffff) * 2 - 1;
  }
  return out;
}

/** Multiples of 1/64 in [-1, 1]: exact in fp16 (and so in fp32). */
export function halfExactValues(count: number, seed: number): Float32Array {
  return values(count, seed).map((v) => Math.round(v * 64) / 64);
}

/** A c×h×w tensor of values(…, seed). */
export function randomTensor(c: number, h: number, w: number, seed: number): Tensor {
  const v = values(c * h * w, seed);
  return tensor(c, h, w, (k, y, x) => v[(k * h + y) * w + x]);
}

// ---- .param and .bin builders ----

/** A .param text from layer lines; the blob count is derived from the blobs the lines name. */
export function param(...layers: string[]): string {
  const blobs = new Set<string>();
  for (const line of layers) {
    const t = line.trim().split(/\s+/);
    const n = Number(t[2]) + Number(t[3]);
    for (const b of t.slice(4, 4 + n)) blobs.add(b);
  }
  return ['7767517', `${layers.length} ${blobs.size}`, ...layers, ''].join('\n');
}

const TAG_FP16 = 0x01306b47;

/** IEEE half bits for a value that fp16 represents exactly (asserts exactness). */
export function floatToHalf(v: number): number {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  const m = (a / 2 ** e - 1) * 1024;
  if (e < -14 || e > 15 || !Number.isInteger(m)) throw new Error(`${v} is not a normal fp16 value`);
  return sign | ((e + 15) << 10) | m;
}

export class BinWriter {
  private readonly chunks: Uint8Array[] = [];

  private push(byteLength: number, fill: (view: DataView) => void): this {
    const bytes = new Uint8Array(byteLength);
    fill(new DataView(bytes.buffer));
    this.chunks.push(bytes);
    return this;
  }

  /** ncnn load(n, 0) with tag 0: float32 data. */
  fp32(v: ArrayLike<number>): this {
    return this.push(4 + v.length * 4, (dv) => {
      dv.setUint32(0, 0, true);
      for (let i = 0; i < v.length; i++) dv.setFloat32(4 + i * 4, v[i], true);
    });
  }

  /** ncnn load(n, 0) with the fp16 tag: half data padded to 4 bytes. */
  fp16(v: ArrayLike<number>): this {
    return this.push(4 + ((v.length * 2 + 3) & ~3), (dv) => {
      dv.setUint32(0, TAG_FP16, true);
      for (let i = 0; i < v.length; i++) dv.setUint16(4 + i * 2, floatToHalf(v[i]), true);
    });
  }

  /** ncnn load(n, 0) with any other non-zero tag: a 256-entry float32 table, then uint8 indices padded to 4. */
  quantised(tag: number, table: ArrayLike<number>, indices: ArrayLike<number>): this {
    expect(table.length).toBe(256);
    return this.push(4 + 256 * 4 + ((indices.length + 3) & ~3), (dv) => {
      dv.setUint32(0, tag, true);
      for (let i = 0; i < 256; i++) dv.setFloat32(4 + i * 4, table[i], true);
      for (let i = 0; i < indices.length; i++) dv.setUint8(4 + 1024 + i, indices[i]);
    });
  }

  /** ncnn load(n, 1): raw float32, no tag. */
  raw(v: ArrayLike<number>): this {
    return this.push(v.length * 4, (dv) => {
      for (let i = 0; i < v.length; i++) dv.setFloat32(i * 4, v[i], true);
    });
  }

  extra(byteCount: number): this {
    return this.push(byteCount, () => undefined);
  }

  bytes(): Uint8Array {
    const total = this.chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

// ---- references shared by several files ----

/** ncnn Convolution (stride 1, dilation 1, zero padding), weights laid out [out][in][kh][kw]. */
export function conv(input: Tensor, weights: ArrayLike<number>, outC: number, k: number, pad: number, bias?: ArrayLike<number>): Tensor {
  const h = input.h + 2 * pad - k + 1;
  const w = input.w + 2 * pad - k + 1;
  return tensor(outC, h, w, (o, y, x) => {
    let sum = bias ? bias[o] : 0;
    for (let i = 0; i < input.c; i++) {
      for (let ky = 0; ky < k; ky++) {
        for (let kx = 0; kx < k; kx++) {
          const sy = y + ky - pad;
          const sx = x + kx - pad;
          if (sy < 0 || sy >= input.h || sx < 0 || sx >= input.w) continue;
          sum += weights[((o * input.c + i) * k + ky) * k + kx] * at(input, i, sy, sx);
        }
      }
    }
    return sum;
  });
}

export const leaky = (t: Tensor, slope: number) => map(t, (v) => (v < 0 ? v * slope : v));

/** ncnn Interp nearest with integer scale: src = floor(dst / scale). */
export function nearest(t: Tensor, scaleY: number, scaleX: number): Tensor {
  return tensor(t.c, t.h * scaleY, t.w * scaleX, (c, y, x) => at(t, c, Math.floor(y / scaleY), Math.floor(x / scaleX)));
}

// ---- running ----

/** Runs a converted graph in ONNX Runtime on one input; the output comes back as a CHW tensor. */
export async function run(onnx: Uint8Array, input: Tensor): Promise<Tensor> {
  // Severity 3: errors only. The converter declares a 3-channel output; some graphs here output
  // other channel counts on purpose, which ONNX Runtime only warns about.
  const session = await ort.InferenceSession.create(onnx, { logSeverityLevel: 3 });
  try {
    expect(session.inputNames).toEqual(['input']);
    expect(session.outputNames).toEqual(['output']);
    const feed = new ort.Tensor('float32', Float32Array.from(input.d), [1, input.c, input.h, input.w]);
    const result = await session.run({ input: feed });
    const out = result.output;
    const [n, c, h, w] = out.dims as number[];
    expect(n).toBe(1);
    return { c, h, w, d: Float64Array.from(out.data as Float32Array) };
  } finally {
    await session.release();
  }
}

export async function convertAndRun(paramText: string, bin: Uint8Array, input: Tensor, conventions?: NcnnConventions): Promise<Tensor> {
  return run(convertNcnnToOnnx(paramText, bin, 'test-model', conventions).onnx, input);
}

/** Largest |actual − expected| after checking the shapes agree. */
export function maxDiff(actual: Tensor, expected: Tensor): number {
  expect([actual.c, actual.h, actual.w]).toEqual([expected.c, expected.h, expected.w]);
  let worst = 0;
  for (let i = 0; i < expected.d.length; i++) worst = Math.max(worst, Math.abs(actual.d[i] - expected.d[i]));
  return worst;
}

/**
 * Tolerance: every input, weight and coefficient is an exact float32 value, and the references
 * compute in float64 from those same values. ONNX Runtime computes in float32; with |values| ≲ 4
 * and at most a few hundred products per output, the accumulated rounding error is a few float32
 * ulps of values ≲ 8 (ulp ≈ 1e-6 at 8), so 1e-5 absolute is tight enough to catch any wrong
 * index, weight or ordering (those move values by ≥ 1e-2 here) and loose enough for float32 sums.
 */
export const TOLERANCE = 1e-5;

export function expectClose(actual: Tensor, expected: Tensor): void {
  expect(maxDiff(actual, expected)).toBeLessThanOrEqual(TOLERANCE);
}
