import { thrown } from '../../helpers';
import { convertNcnnToOnnx } from '../../../core/convert/ncnn-to-onnx';
import { at, BinWriter, convertAndRun, expectClose, halfExactValues, map, maxDiff, param, randomTensor, Tensor, tensor, values } from './ncnn-kit';

/**
 * The layers Real-CUGAN and waifu2x add to the Real-ESRGAN set (manifest/RESEARCH.md §6.1):
 * Deconvolution, Crop, Pooling, InnerProduct, Scale, 1-D broadcasting in BinaryOp, and Interp
 * bicubic (and bilinear). Each tiny model is converted, run in a real ONNX Runtime session and
 * compared with a plain-JS port of the ncnn layer written here from its source
 * (Tencent/ncnn@a4d2ea1d src/layer/*.cpp). Tolerance: see ncnn-kit.ts.
 */

const C = 3;
const H = 6;
const W = 7;
const INPUT = randomTensor(C, H, W, 101);
const INPUT_LINE = `Input input 0 1 data 0=${W} 1=${H} 2=${C}`;
const NO_WEIGHTS = new Uint8Array(0);

const convert = (p: string, bin: Uint8Array = NO_WEIGHTS) => convertAndRun(p, bin, INPUT);

/** A ncnn 1-D blob as the converter returns it: [1, C, 1, 1]. */
const vector = (v: ArrayLike<number>): Tensor => tensor(v.length, 1, 1, (c) => v[c]);

// ---- references, from ncnn's source ----

interface DeconvSpec {
  outC: number;
  kw: number;
  kh: number;
  stride: [number, number]; // [h, w]
  dilation?: [number, number];
  pads: [number, number, number, number]; // top, left, bottom, right
  outputPad?: [number, number]; // bottom, right
  bias?: ArrayLike<number>;
  leaky?: number;
}

/**
 * deconvolution.cpp: the map is (w−1)·s + dil·(k−1) + 1 + output_pad wide, filled with the bias;
 * each input pixel (i, j) adds val·W[p][q][ky][kx] at (i·s + ky·dil, j·s + kx·dil), weights
 * [out][in][kh][kw], no flip; then the activation; then cut_padding removes the pads.
 */
function deconv(input: Tensor, weights: ArrayLike<number>, s: DeconvSpec): Tensor {
  const [sh, sw] = s.stride;
  const [dh, dw] = s.dilation ?? [1, 1];
  const [opb, opr] = s.outputPad ?? [0, 0];
  const outW = (input.w - 1) * sw + dw * (s.kw - 1) + 1 + opr;
  const outH = (input.h - 1) * sh + dh * (s.kh - 1) + 1 + opb;
  const bordered = tensor(s.outC, outH, outW, (p) => (s.bias ? s.bias[p] : 0));
  for (let p = 0; p < s.outC; p++) {
    for (let i = 0; i < input.h; i++) {
      for (let j = 0; j < input.w; j++) {
        for (let q = 0; q < input.c; q++) {
          const val = at(input, q, i, j);
          for (let ky = 0; ky < s.kh; ky++) {
            for (let kx = 0; kx < s.kw; kx++) {
              const w = weights[((p * input.c + q) * s.kh + ky) * s.kw + kx];
              bordered.d[(p * outH + i * sh + ky * dh) * outW + j * sw + kx * dw] += val * w;
            }
          }
        }
      }
    }
  }
  const activated = s.leaky === undefined ? bordered : map(bordered, (v) => (v < 0 ? v * s.leaky! : v));
  const [top, left, bottom, right] = s.pads;
  return tensor(s.outC, outH - top - bottom, outW - left - right, (c, y, x) => at(activated, c, y + top, x + left));
}

/** crop.cpp numpy-style: offset = start ≥ 0 ? start : dim + start; out = min(dim, end > 0 ? end : dim + end) − offset; −233 = whole axis. */
function numpyRoi(dim: number, start: number, end: number): [number, number] {
  const s = start === -233 ? 0 : start;
  const e = end === -233 ? dim : end;
  const offset = s >= 0 ? s : dim + s;
  return [offset, Math.min(dim, e > 0 ? e : dim + e) - offset];
}

/** The [offset, size] per axis (c, h, w) applied to a tensor. */
function cropTo(t: Tensor, c: [number, number], h: [number, number], w: [number, number]): Tensor {
  return tensor(c[1], h[1], w[1], (k, y, x) => at(t, k + c[0], y + h[0], x + w[0]));
}

const globalMean = (t: Tensor) => Array.from({ length: t.c }, (_, c) => {
  let sum = 0;
  for (let i = 0; i < t.h * t.w; i++) sum += t.d[c * t.h * t.w + i];
  return sum / (t.h * t.w);
});

/** innerproduct.cpp on a 1-D blob: out[p] = act(bias[p] + Σ W[p·I + i]·in[i]). */
function innerProduct(v: ArrayLike<number>, weights: ArrayLike<number>, outN: number, bias: ArrayLike<number> | undefined, act: (x: number) => number): number[] {
  return Array.from({ length: outN }, (_, p) => {
    let sum = bias ? bias[p] : 0;
    for (let i = 0; i < v.length; i++) sum += weights[p * v.length + i] * v[i];
    return act(sum);
  });
}

const relu = (x: number) => Math.max(0, x);
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const perChannel = (t: Tensor, v: ArrayLike<number>, fn: (x: number, s: number, c: number) => number) => tensor(t.c, t.h, t.w, (c, y, x) => fn(at(t, c, y, x), v[c], c));

/** interp.cpp interpolate_cubic: Keys' kernel with A = −0.75 at the four taps around fx. */
function cubicWeights(fx: number): [number, number, number, number] {
  const A = -0.75;
  const fx0 = fx + 1;
  const fx1 = fx;
  const fx2 = 1 - fx;
  const c0 = A * fx0 * fx0 * fx0 - 5 * A * fx0 * fx0 + 8 * A * fx0 - 4 * A;
  const c1 = (A + 2) * fx1 * fx1 * fx1 - (A + 3) * fx1 * fx1 + 1;
  const c2 = (A + 2) * fx2 * fx2 * fx2 - (A + 3) * fx2 * fx2 + 1;
  return [c0, c1, c2, 1 - c0 - c1 - c2];
}

/**
 * interp.cpp cubic_coeffs: per output index dx, the tap sx (taps sx−1 … sx+2) and 4 weights,
 * edge taps folded in. `coordinateScale` replaces ncnn's w / outw, to show what it changes.
 */
function cubicCoeffs(w: number, outw: number, alignCorner: boolean, coordinateScale = w / outw): { sx: number; a: number[] }[] {
  const scale = alignCorner ? (w - 1) / (outw - 1) : coordinateScale;
  return Array.from({ length: outw }, (_, dx) => {
    let fx = Math.fround(alignCorner ? dx * scale : (dx + 0.5) * scale - 0.5);
    let sx = Math.floor(fx);
    fx -= sx;
    let a = cubicWeights(fx);
    if (sx <= -1) {
      sx = 1;
      a = [1 - a[3], a[3], 0, 0];
    }
    if (sx === 0) {
      sx = 1;
      a = [a[0] + a[1], a[2], a[3], 0];
    }
    if (sx === w - 2) {
      sx = w - 3;
      a = [0, a[0], a[1], a[2] + a[3]];
    }
    if (sx >= w - 1) {
      sx = w - 3;
      a = [0, 0, a[0], 1 - a[0]];
    }
    return { sx, a };
  });
}

/** interp.cpp linear_coeffs: two taps, clamped at the edges. */
function linearCoeffs(w: number, outw: number): { sx: number; a: number[] }[] {
  const scale = w / outw;
  return Array.from({ length: outw }, (_, dx) => {
    let fx = Math.fround((dx + 0.5) * scale - 0.5);
    let sx = Math.floor(fx);
    fx -= sx;
    if (sx < 0) {
      sx = 0;
      fx = 0;
    }
    if (sx >= w - 1) {
      sx = w - 2;
      fx = 1;
    }
    return { sx, a: [1 - fx, fx] };
  });
}

/**
 * interp.cpp resize_bicubic_image / resize_bilinear_image: out size (int)(dim · scale), then
 * separable taps: rows at yofs + (−1..2) (cubic) or (0..1) (linear), columns likewise.
 */
function resize(t: Tensor, hScale: number, wScale: number, kind: 'cubic' | 'linear', alignCorner = false, scaleCoordinates = false): Tensor {
  const outH = Math.trunc(Math.fround(t.h * Math.fround(hScale)));
  const outW = Math.trunc(Math.fround(t.w * Math.fround(wScale)));
  const xs = kind === 'cubic' ? cubicCoeffs(t.w, outW, alignCorner, scaleCoordinates ? 1 / wScale : t.w / outW) : linearCoeffs(t.w, outW);
  const ys = kind === 'cubic' ? cubicCoeffs(t.h, outH, alignCorner, scaleCoordinates ? 1 / hScale : t.h / outH) : linearCoeffs(t.h, outH);
  const first = kind === 'cubic' ? -1 : 0;
  return tensor(t.c, outH, outW, (c, y, x) => {
    let sum = 0;
    ys[y].a.forEach((wy, i) => {
      xs[x].a.forEach((wx, j) => {
        if (wy !== 0 && wx !== 0) sum += wy * wx * at(t, c, ys[y].sx + first + i, xs[x].sx + first + j);
      });
    });
    return sum;
  });
}

// ---- tests ----

describe('Deconvolution → ConvTranspose', () => {
  test('k4 s2 pad 3 with bias, fp16 weights (waifu2x/Real-CUGAN final upsampler)', async () => {
    const spec: DeconvSpec = { outC: 3, kw: 4, kh: 4, stride: [2, 2], pads: [3, 3, 3, 3], bias: values(3, 2) };
    const weights = halfExactValues(3 * 3 * 16, 1);
    const p = param(INPUT_LINE, 'Deconvolution deconv0 1 1 data out 0=3 1=4 3=2 4=3 5=1 6=144');
    const out = await convert(p, new BinWriter().fp16(weights).raw(spec.bias!).bytes());
    const expected = deconv(INPUT, weights, spec);
    expect([expected.h, expected.w]).toEqual([2 * H - 4, 2 * W - 4]);
    expectClose(out, expected);
  });

  test('k2 s2 pad 0 with bias and fused LeakyReLU 0.1, 3→4 channels', async () => {
    const spec: DeconvSpec = { outC: 4, kw: 2, kh: 2, stride: [2, 2], pads: [0, 0, 0, 0], bias: values(4, 4), leaky: 0.1 };
    const weights = values(4 * 3 * 4, 3);
    const p = param(INPUT_LINE, 'Deconvolution deconv0 1 1 data out 0=4 1=2 3=2 5=1 6=48 9=2 -23310=1,1.000000e-01');
    const out = await convert(p, new BinWriter().fp32(weights).raw(spec.bias!).bytes());
    const expected = deconv(INPUT, weights, spec);
    expect(expected.d.some((v) => v < -0.01)).toBe(true);
    expectClose(out, expected);
  });

  test('k5 s3 pad 2 without bias, 3→2 channels (Real-CUGAN 3x)', async () => {
    const weights = values(2 * 3 * 25, 5);
    const p = param(INPUT_LINE, 'Deconvolution deconv0 1 1 data out 0=2 1=5 3=3 4=2 5=0 6=150');
    const out = await convert(p, new BinWriter().fp32(weights).bytes());
    expectClose(out, deconv(INPUT, weights, { outC: 2, kw: 5, kh: 5, stride: [3, 3], pads: [2, 2, 2, 2] }));
  });

  test('non-square kernel, unequal strides and pads, dilation 2 and output padding', async () => {
    const spec: DeconvSpec = { outC: 2, kw: 3, kh: 2, stride: [2, 3], dilation: [2, 2], pads: [2, 1, 1, 0], outputPad: [1, 1], bias: values(2, 8) };
    const weights = values(2 * 3 * 6, 7);
    const p = param(INPUT_LINE, 'Deconvolution deconv0 1 1 data out 0=2 1=3 11=2 2=2 3=3 13=2 4=1 15=0 14=2 16=1 18=1 5=1 6=36');
    const out = await convert(p, new BinWriter().fp32(weights).raw(spec.bias!).bytes());
    expectClose(out, deconv(INPUT, weights, spec));
  });

  test('"SAME" padding markers and explicit output sizes are refused with UPB_NCNN_UNSUPPORTED_LAYER', () => {
    const bin = new BinWriter().fp32(values(36, 1)).bytes();
    for (const extra of ['4=-233', '20=8 21=8']) {
      const e = thrown(() => convertNcnnToOnnx(param(INPUT_LINE, `Deconvolution deconv0 1 1 data out 0=3 1=2 3=2 6=36 ${extra}`), bin, 'm'));
      expect(e.code).toBe('UPB_NCNN_UNSUPPORTED_LAYER');
      expect(e.message).toContain('deconv0');
    }
  });
});

describe('Crop → Slice', () => {
  test('numpy-style, negative ends on the last two axes (Real-CUGAN: -23309=2,1,2 -23310=2,-1,-2 -23311=2,-2,-1)', async () => {
    const out = await convert(param(INPUT_LINE, 'Crop crop0 1 1 data out -23309=2,1,2 -23310=2,-1,-2 -23311=2,-2,-1'));
    expectClose(out, cropTo(INPUT, [0, C], numpyRoi(H, 1, -1), numpyRoi(W, 2, -2)));
    expect([out.h, out.w]).toEqual([H - 2, W - 4]);
  });

  test('numpy-style: end 0 runs to the end, start -233 is 0, axis 0 crops channels', async () => {
    const out = await convert(param(INPUT_LINE, 'Crop crop0 1 1 data out -23309=3,1,-233,2 -23310=3,0,3,-233 -23311=3,0,1,2'));
    expectClose(out, cropTo(INPUT, numpyRoi(C, 1, 0), numpyRoi(H, -233, 3), numpyRoi(W, 2, -233)));
    expect([out.c, out.h, out.w]).toEqual([C - 1, 3, W - 2]);
  });

  test('reference blob (waifu2x cunet Crop 2 inputs 0=w 1=h): offsets from the params, size and channels of the second blob', async () => {
    // The reference is a 3×3 valid convolution to 2 channels: 2×(H−2)×(W−2).
    const weights = values(2 * 3 * 9, 11);
    const p = param(
      INPUT_LINE,
      'Split split0 1 2 data a b',
      'Convolution conv0 1 1 b ref 0=2 1=3 5=0 6=54',
      'Crop crop0 2 1 a ref out 0=2 1=1',
    );
    const out = await convert(p, new BinWriter().fp32(weights).bytes());
    expectClose(out, cropTo(INPUT, [0, 2], [1, H - 2], [2, W - 2]));
  });

  test('offsets and sizes: 0=woffset 1=hoffset 3=outw 4=outh 5=-233 (all channels)', async () => {
    const out = await convert(param(INPUT_LINE, 'Crop crop0 1 1 data out 0=1 1=2 3=4 4=3 5=-233'));
    expectClose(out, cropTo(INPUT, [0, C], [2, 3], [1, 4]));
  });

  test('offsets from both ends: 6=woffset2 7=hoffset2 with -233 sizes', async () => {
    const out = await convert(param(INPUT_LINE, 'Crop crop0 1 1 data out 0=1 6=2 7=1 3=-233 4=-233 5=-233'));
    // crop.cpp: out = dim − offset − offset2.
    expectClose(out, cropTo(INPUT, [0, C], [0, H - 1], [1, W - 1 - 2]));
  });

  test('a crop region read from the reference blob, or a zero size in the one-blob form, is refused', () => {
    const twoInputs = param(INPUT_LINE, 'Split split0 1 2 data a b', 'Crop crop0 2 1 a b out 0=-233');
    expect(thrown(() => convertNcnnToOnnx(twoInputs, NO_WEIGHTS, 'm')).code).toBe('UPB_NCNN_UNSUPPORTED_LAYER');
    const e = thrown(() => convertNcnnToOnnx(param(INPUT_LINE, 'Crop crop0 1 1 data out 0=1 3=4'), NO_WEIGHTS, 'm'));
    expect(e.code).toBe('UPB_NCNN_UNSUPPORTED_LAYER');
    expect(e.message).toContain('empty');
  });
});

describe('Pooling (global), InnerProduct and 1-D blobs', () => {
  test('global average pooling gives the per-channel mean as a 1-D blob [1,C,1,1]', async () => {
    const out = await convert(param(INPUT_LINE, 'Pooling pool0 1 1 data out 0=1 4=1'));
    expectClose(out, vector(globalMean(INPUT)));
  });

  test('global max pooling gives the per-channel maximum', async () => {
    const out = await convert(param(INPUT_LINE, 'Pooling pool0 1 1 data out 0=0 4=1'));
    const max = Array.from({ length: C }, (_, c) => Math.max(...INPUT.d.subarray(c * H * W, (c + 1) * H * W)));
    expectClose(out, vector(max));
  });

  test('InnerProduct chain as in an SE block: 3 → 5 (bias, ReLU) → 3 (fp16 weights, bias, sigmoid)', async () => {
    const w1 = values(5 * 3, 21);
    const b1 = values(5, 22);
    const w2 = halfExactValues(3 * 5, 23);
    const b2 = values(3, 24);
    const p = param(
      INPUT_LINE,
      'Pooling pool0 1 1 data gap 0=1 4=1',
      'InnerProduct fc0 1 1 gap h 0=5 1=1 2=15 9=1',
      'InnerProduct fc1 1 1 h out 0=3 1=1 2=15 9=4',
    );
    const out = await convert(p, new BinWriter().fp32(w1).raw(b1).fp16(w2).raw(b2).bytes());
    const hidden = innerProduct(globalMean(INPUT), w1, 5, b1, relu);
    // The ReLU must bite for the test to cover it.
    expect(innerProduct(globalMean(INPUT), w1, 5, b1, (x) => x).some((v) => v < 0)).toBe(true);
    expectClose(out, vector(innerProduct(hidden, w2, 3, b2, sigmoid)));
  });

  test('InnerProduct without bias or activation', async () => {
    const w = values(4 * 3, 25);
    const out = await convert(param(INPUT_LINE, 'Pooling pool0 1 1 data gap 0=1 4=1', 'InnerProduct fc0 1 1 gap out 0=4 1=0 2=12'), new BinWriter().fp32(w).bytes());
    expectClose(out, vector(innerProduct(globalMean(INPUT), w, 4, undefined, (x) => x)));
  });

  test('BinaryOp mul of a feature map by a 1-D blob scales each channel (Real-CUGAN SE block)', async () => {
    const w = values(3 * 3, 31);
    const b = values(3, 32);
    const p = param(
      INPUT_LINE,
      'Split split0 1 2 data a b',
      'Pooling pool0 1 1 b gap 0=1 4=1',
      'InnerProduct fc0 1 1 gap s 0=3 1=1 2=9 9=4',
      'BinaryOp mul0 2 1 a s out 0=2',
    );
    const out = await convert(p, new BinWriter().fp32(w).raw(b).bytes());
    expectClose(out, perChannel(INPUT, innerProduct(globalMean(INPUT), w, 3, b, sigmoid), (x, s) => x * s));
  });

  test('BinaryOp with the 1-D blob first keeps the operand order (sub: v[c] − a[c,y,x])', async () => {
    const p = param(INPUT_LINE, 'Split split0 1 2 data a b', 'Pooling pool0 1 1 b gap 0=1 4=1', 'BinaryOp sub0 2 1 gap a out 0=1');
    expectClose(await convert(p), perChannel(INPUT, globalMean(INPUT), (x, s) => s - x));
  });

  test('BinaryOp of two 1-D blobs stays 1-D, and broadcasts per channel downstream', async () => {
    const p = param(
      INPUT_LINE,
      'Split split0 1 3 data a b c',
      'Pooling pool0 1 1 b mean 0=1 4=1',
      'Pooling pool1 1 1 c max 0=0 4=1',
      'BinaryOp add0 2 1 mean max v 0=0',
      'BinaryOp mul0 2 1 a v out 0=2',
    );
    const max = Array.from({ length: C }, (_, c) => Math.max(...INPUT.d.subarray(c * H * W, (c + 1) * H * W)));
    const v = globalMean(INPUT).map((m, c) => m + max[c]);
    expectClose(await convert(p), perChannel(INPUT, v, (x, s) => x * s));
  });

  test('a 1-D blob where a feature map is needed is refused at conversion, naming the blob', () => {
    const p = param(INPUT_LINE, 'Pooling pool0 1 1 data gap 0=1 4=1', 'Convolution conv0 1 1 gap out 0=3 1=1 6=9');
    const e = thrown(() => convertNcnnToOnnx(p, new BinWriter().fp32(values(9, 1)).bytes(), 'm'));
    expect(e.code).toBe('UPB_NCNN_UNSUPPORTED_LAYER');
    expect(e.message).toContain('"gap"');
    expect(e.message).toContain('1-D');
  });

  test('Eltwise of a 1-D and a 3-D blob, InnerProduct on a 3-D blob and windowed pooling are refused', () => {
    const cases = [
      param(INPUT_LINE, 'Split split0 1 2 data a b', 'Pooling pool0 1 1 b gap 0=1 4=1', 'Eltwise sum0 2 1 a gap out 0=1'),
      param(INPUT_LINE, 'InnerProduct fc0 1 1 data out 0=2 2=252'),
      param(INPUT_LINE, 'Pooling pool0 1 1 data out 0=0 1=2 2=2'),
    ];
    for (const p of cases) expect(thrown(() => convertNcnnToOnnx(p, new BinWriter().fp32(values(252, 1)).bytes(), 'm')).code).toBe('UPB_NCNN_UNSUPPORTED_LAYER');
  });
});

describe('Scale', () => {
  test('two inputs (0=-233, waifu2x cunet SE block): the feature map times the 1-D blob per channel', async () => {
    const w = values(3 * 3, 41);
    const b = values(3, 42);
    const p = param(
      INPUT_LINE,
      'Split split0 1 2 data a b',
      'Pooling pool0 1 1 b gap 0=1 4=1',
      'InnerProduct fc0 1 1 gap s 0=3 1=1 2=9 9=4',
      'Scale scale0 2 1 a s out 0=-233',
    );
    const out = await convert(p, new BinWriter().fp32(w).raw(b).bytes());
    expectClose(out, perChannel(INPUT, innerProduct(globalMean(INPUT), w, 3, b, sigmoid), (x, s) => x * s));
  });

  test('one input with stored scale and bias (raw float32): x·s[c] + b[c]', async () => {
    const s = [0.5, -2, 1.25];
    const b = [0.25, 0, -1];
    const out = await convert(param(INPUT_LINE, 'Scale scale0 1 1 data out 0=3 1=1'), new BinWriter().raw(s).raw(b).bytes());
    expectClose(out, perChannel(INPUT, s, (x, k, c) => x * k + b[c]));
  });

  test('one input without bias: x·s[c]', async () => {
    const s = [3, -0.5, 0.75];
    const out = await convert(param(INPUT_LINE, 'Scale scale0 1 1 data out 0=3'), new BinWriter().raw(s).bytes());
    expectClose(out, perChannel(INPUT, s, (x, k) => x * k));
  });

  test('a scale blob that is a feature map is refused', () => {
    const p = param(INPUT_LINE, 'Split split0 1 2 data a b', 'Scale scale0 2 1 a b out 0=-233');
    expect(thrown(() => convertNcnnToOnnx(p, NO_WEIGHTS, 'm')).code).toBe('UPB_NCNN_UNSUPPORTED_LAYER');
  });
});

describe('Interp bicubic (type 3) and bilinear (type 2)', () => {
  const interp = (params: string) => convert(param(INPUT_LINE, `Interp up0 1 1 data out ${params}`));

  test('bicubic ×2: Keys A = −0.75, edge taps folded (animevideov3 alpha, and up-scaling in general)', async () => {
    const out = await interp('0=3 1=2.000000e+00 2=2.000000e+00');
    expectClose(out, resize(INPUT, 2, 2, 'cubic'));
  });

  test('bicubic ×0.5 and ×0.75 with sides that do not divide: sizes truncated, coordinates from the sizes (animevideov3-x2/x3)', async () => {
    const half = await interp('0=3 1=5.000000e-01 2=5.000000e-01');
    expect([half.h, half.w]).toEqual([3, 3]);
    expectClose(half, resize(INPUT, 0.5, 0.5, 'cubic'));
    const threeQuarters = await interp('0=3 1=7.500000e-01 2=7.500000e-01');
    expect([threeQuarters.h, threeQuarters.w]).toEqual([4, 5]);
    expectClose(threeQuarters, resize(INPUT, 0.75, 0.75, 'cubic'));
  });

  test('the coordinate scale comes from the sizes (7/5), not from the factor (1/0.75): the two differ here', async () => {
    const out = await interp('0=3 1=7.500000e-01 2=7.500000e-01');
    const fromFactor = resize(INPUT, 0.75, 0.75, 'cubic', false, true);
    expect(maxDiff(out, fromFactor)).toBeGreaterThan(0.01);
  });

  test('bicubic ×2 with align_corner (6=1)', async () => {
    expectClose(await interp('0=3 1=2.000000e+00 2=2.000000e+00 6=1'), resize(INPUT, 2, 2, 'cubic', true));
  });

  test('bilinear ×0.75 (sizes truncated, coordinates from the sizes) and ×2', async () => {
    expectClose(await interp('0=2 1=7.500000e-01 2=7.500000e-01'), resize(INPUT, 0.75, 0.75, 'linear'));
    expectClose(await interp('0=2 1=2.000000e+00 2=3.000000e+00'), resize(INPUT, 2, 3, 'linear'));
  });
});
