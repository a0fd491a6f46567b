import { thrown } from '../../helpers';
import { halfToFloat, NcnnWeightReader } from '../../../core/convert/ncnn-bin';
import { convertNcnnToOnnx } from '../../../core/convert/ncnn-to-onnx';
import { at, BinWriter, conv, expectClose, floatToHalf, halfExactValues, leaky, map, nearest, param, randomTensor, run as runOn, Tensor, tensor, values, zip } from './ncnn-kit';

/**
 * Tiny ncnn models built here (param text + a .bin written with DataView), converted, run with
 * ONNX Runtime and compared with plain-JS references of each ncnn layer (the layers the
 * Real-ESRGAN models use; the Real-CUGAN/waifu2x layers are in ncnn-layers.test.ts). The
 * tolerance is explained in ncnn-kit.ts.
 */

// The converter declares a 3-channel input, as the Real-ESRGAN models have.
const C = 3;
const H = 3;
const W = 5;
const INPUT: Tensor = randomTensor(C, H, W, 7);
const INPUT_LINE = `Input input 0 1 data 0=${W} 1=${H} 2=${C}`;

function prelu(t: Tensor, slopes: ArrayLike<number>): Tensor {
  return tensor(t.c, t.h, t.w, (c, y, x) => {
    const v = at(t, c, y, x);
    return v < 0 ? v * slopes[slopes.length === 1 ? 0 : c] : v;
  });
}

function concatChannels(a: Tensor, b: Tensor): Tensor {
  return tensor(a.c + b.c, a.h, a.w, (c, y, x) => (c < a.c ? at(a, c, y, x) : at(b, c - a.c, y, x)));
}

/** ncnn PixelShuffle: mode 0 takes channel c*r*r + i*r + j, mode 1 takes (i*r + j)*outc + c. */
function pixelShuffle(t: Tensor, r: number, mode: 0 | 1): Tensor {
  const outC = t.c / (r * r);
  return tensor(outC, t.h * r, t.w * r, (c, y, x) => {
    const i = y % r;
    const j = x % r;
    const src = mode === 0 ? c * r * r + i * r + j : (i * r + j) * outC + c;
    return at(t, src, Math.floor(y / r), Math.floor(x / r));
  });
}

// ---- running ----

const run = (onnx: Uint8Array, input: Tensor = INPUT) => runOn(onnx, input);

async function convertAndRun(paramText: string, bin: Uint8Array): Promise<Tensor> {
  return run(convertNcnnToOnnx(paramText, bin, 'test-model').onnx);
}

// ---- tests ----

describe('halfToFloat', () => {
  test.each([
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14],
    [0x3555, 0.333251953125],
    [0x0000, 0],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
  ].map(([bits, expected]) => [bits.toString(16).padStart(4, '0'), bits, expected] as const))('0x%s decodes to %p', (_hex, bits, expected) => {
    expect(halfToFloat(bits)).toBe(expected);
  });

  test('a negative zero and NaN decode as such', () => {
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(halfToFloat(0x7e00)).toBeNaN();
  });

  test('the test fp16 encoder round-trips through halfToFloat', () => {
    for (const v of halfExactValues(200, 3)) expect(halfToFloat(floatToHalf(v))).toBe(v);
  });
});

describe('NcnnWeightReader', () => {
  test('fp16 data is padded to 4 bytes, so the next read starts after the padding', () => {
    const bytes = new BinWriter().fp16([1, -2, 0.5]).raw([7]).bytes();
    const reader = new NcnnWeightReader(bytes);
    expect(Array.from(reader.readTagged(3, 'w'))).toEqual([1, -2, 0.5]);
    expect(reader.position).toBe(4 + 8);
    expect(Array.from(reader.readRaw(1, 'b'))).toEqual([7]);
    expect(reader.remaining).toBe(0);
  });

  test('tag 0 and the scaled-fp32 tag 0x0002C056 read float32 data', () => {
    const dv = new DataView(new ArrayBuffer(12));
    dv.setUint32(0, 0x0002c056, true);
    dv.setFloat32(4, 1.5, true);
    dv.setFloat32(8, -0.25, true);
    expect(Array.from(new NcnnWeightReader(new Uint8Array(dv.buffer)).readTagged(2, 'w'))).toEqual([1.5, -0.25]);
    expect(Array.from(new NcnnWeightReader(new BinWriter().fp32([3, 4]).bytes()).readTagged(2, 'w'))).toEqual([3, 4]);
  });

  test('any other non-zero tag reads a 256-entry table and uint8 indices padded to 4 bytes', () => {
    const table = Array.from({ length: 256 }, (_, i) => i / 4 - 32);
    const reader = new NcnnWeightReader(new BinWriter().quantised(0x00000001, table, [0, 255, 130, 7, 8]).raw([9]).bytes());
    expect(Array.from(reader.readTagged(5, 'w'))).toEqual([-32, 31.75, 0.5, -30.25, -30]);
    expect(Array.from(reader.readRaw(1, 'b'))).toEqual([9]);
    expect(reader.remaining).toBe(0);
  });

  test('int8-quantised weights are rejected with UPB_NCNN_FORMAT', () => {
    const dv = new DataView(new ArrayBuffer(8));
    dv.setUint32(0, 0x000d4b38, true);
    const e = thrown(() => new NcnnWeightReader(new Uint8Array(dv.buffer)).readTagged(4, 'conv weights'));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toContain('int8');
  });

  test('reading past the end throws UPB_NCNN_FORMAT naming what was being read', () => {
    const e = thrown(() => new NcnnWeightReader(new BinWriter().raw([1, 2]).bytes()).readRaw(3, 'prelu slopes'));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toContain('prelu slopes');
    expect(e.message).toContain('file ends at byte 8');
  });
});

describe('convertNcnnToOnnx: Convolution', () => {
  test('3×3 pad 1 with bias and fused LeakyReLU, fp32 weights, 3→4 channels', async () => {
    const weights = values(4 * 3 * 9, 11);
    const bias = values(4, 12);
    const p = param(INPUT_LINE, 'Convolution conv0 1 1 data out 0=4 1=3 4=1 5=1 6=108 9=2 -23310=1,1.000000e-01');
    const out = await convertAndRun(p, new BinWriter().fp32(weights).raw(bias).bytes());
    const expected = leaky(conv(INPUT, weights, 4, 3, 1, bias), 0.1);
    // The activation must actually bite: some pre-activation values are negative.
    expect(conv(INPUT, weights, 4, 3, 1, bias).d.some((v) => v < -0.05)).toBe(true);
    expectClose(out, expected);
  });

  test('3×3 pad 1 with bias and fused LeakyReLU, fp16 weights (81 halves, padded), 3→3 channels', async () => {
    const weights = halfExactValues(3 * 3 * 9, 21);
    const bias = values(3, 22);
    const p = param(INPUT_LINE, 'Convolution conv0 1 1 data out 0=3 1=3 4=1 5=1 6=81 9=2 -23310=1,1.000000e-01');
    const out = await convertAndRun(p, new BinWriter().fp16(weights).raw(bias).bytes());
    expectClose(out, leaky(conv(INPUT, weights, 3, 3, 1, bias), 0.1));
  });

  test('3×3 pad 1 with quantisation-table weights (27 indices, padded) and bias, 3→1 channel', async () => {
    const table = Array.from(values(256, 31));
    const indices = Array.from({ length: 27 }, (_, i) => (i * 37 + 11) % 256);
    const bias = values(1, 32);
    const p = param(INPUT_LINE, 'Convolution conv0 1 1 data out 0=1 1=3 4=1 5=1 6=27');
    const out = await convertAndRun(p, new BinWriter().quantised(0x00000101, table, indices).raw(bias).bytes());
    expectClose(out, conv(INPUT, indices.map((i) => table[i]), 1, 3, 1, bias));
  });

  test('1×1 without padding, with bias, 3→2 channels', async () => {
    const weights = values(2 * 3, 41);
    const bias = values(2, 42);
    const p = param(INPUT_LINE, 'Convolution conv0 1 1 data out 0=2 1=1 5=1 6=6');
    const out = await convertAndRun(p, new BinWriter().fp32(weights).raw(bias).bytes());
    expectClose(out, conv(INPUT, weights, 2, 1, 0, bias));
  });

  test('3×3 without padding or bias shrinks the output to 1×3', async () => {
    const weights = values(3 * 3 * 9, 51);
    const p = param(INPUT_LINE, 'Convolution conv0 1 1 data out 0=3 1=3 5=0 6=81');
    const out = await convertAndRun(p, new BinWriter().fp32(weights).bytes());
    expectClose(out, conv(INPUT, weights, 3, 3, 0));
  });
});

describe('convertNcnnToOnnx: activations and blob plumbing', () => {
  test('PReLU applies one slope per channel (slopes raw fp32, no tag)', async () => {
    const slopes = [0.25, -0.5, 2];
    const out = await convertAndRun(param(INPUT_LINE, 'PReLU prelu0 1 1 data out 0=3'), new BinWriter().raw(slopes).bytes());
    expectClose(out, prelu(INPUT, slopes));
    expect(INPUT.d.some((v) => v < 0)).toBe(true);
  });

  test('PReLU with a single slope applies it to every channel', async () => {
    const out = await convertAndRun(param(INPUT_LINE, 'PReLU prelu0 1 1 data out 0=1'), new BinWriter().raw([0.125]).bytes());
    expectClose(out, prelu(INPUT, [0.125]));
  });

  test('Split feeds both branches and Concat joins them along channels in listed order', async () => {
    const slopes = [0.5, -1, 0.25];
    const p = param(INPUT_LINE, 'Split split0 1 2 data a b', 'PReLU prelu0 1 1 b pb 0=3', 'Concat cat0 2 1 pb a out 0=0');
    const out = await convertAndRun(p, new BinWriter().raw(slopes).bytes());
    expectClose(out, concatChannels(prelu(INPUT, slopes), INPUT));
  });

  test('a trailing Split still yields a graph output named "output"', async () => {
    const p = param(INPUT_LINE, 'PReLU prelu0 1 1 data p 0=1', 'Split split0 1 1 p out');
    expectClose(await convertAndRun(p, new BinWriter().raw([0.5]).bytes()), prelu(INPUT, [0.5]));
  });
});

describe('convertNcnnToOnnx: Eltwise', () => {
  // a = input, c = 1×1 conv of the input: two different operands of the same shape.
  const convWeights = values(9, 61);
  const convBias = values(3, 62);
  const c = conv(INPUT, convWeights, 3, 1, 0, convBias);
  const eltwiseModel = (params: string) =>
    param(INPUT_LINE, 'Split split0 1 2 data a b', 'Convolution conv0 1 1 b c 0=3 1=1 5=1 6=9', `Eltwise elt0 2 1 a c out ${params}`);
  const bin = () => new BinWriter().fp32(convWeights).raw(convBias).bytes();

  test('sum with coefficients 0.2 and 1 gives 0.2·a + c', async () => {
    const out = await convertAndRun(eltwiseModel('0=1 -23301=2,2.000000e-01,1.000000e+00'), bin());
    expectClose(out, zip(INPUT, c, (x, y) => Math.fround(0.2) * x + y));
  });

  test('sum without coefficients gives a + c', async () => {
    expectClose(await convertAndRun(eltwiseModel('0=1'), bin()), zip(INPUT, c, (x, y) => x + y));
  });

  test('product gives a · c', async () => {
    expectClose(await convertAndRun(eltwiseModel('0=0'), bin()), zip(INPUT, c, (x, y) => x * y));
  });

  test('max gives the element-wise maximum', async () => {
    const expected = zip(INPUT, c, Math.max);
    // Both operands win somewhere, so a wrong op (or an operand dropped) would show.
    expect(expected.d.some((v, i) => v === INPUT.d[i] && v !== c.d[i])).toBe(true);
    expect(expected.d.some((v, i) => v === c.d[i] && v !== INPUT.d[i])).toBe(true);
    expectClose(await convertAndRun(eltwiseModel('0=2'), bin()), expected);
  });
});

describe('convertNcnnToOnnx: Interp', () => {
  test('nearest ×2 repeats each pixel as ncnn does: src = floor(dst / scale)', async () => {
    const out = await convertAndRun(param(INPUT_LINE, 'Interp up0 1 1 data out 0=1 1=2.000000e+00 2=2.000000e+00'), new Uint8Array(0));
    expectClose(out, nearest(INPUT, 2, 2));
  });

  test('nearest with different height and width scales (×3 tall, ×2 wide)', async () => {
    const out = await convertAndRun(param(INPUT_LINE, 'Interp up0 1 1 data out 0=1 1=3.000000e+00 2=2.000000e+00'), new Uint8Array(0));
    expectClose(out, nearest(INPUT, 3, 2));
  });
});

describe('convertNcnnToOnnx: BinaryOp', () => {
  const convWeights = values(9, 71);
  const convBias = values(3, 72);
  const c = conv(INPUT, convWeights, 3, 1, 0, convBias);
  const twoBlobModel = (op: number) =>
    param(INPUT_LINE, 'Split split0 1 2 data a b', 'Convolution conv0 1 1 b c 0=3 1=1 5=1 6=9', `BinaryOp bin0 2 1 a c out 0=${op}`);
  const bin = () => new BinWriter().fp32(convWeights).raw(convBias).bytes();

  test('add of two blobs gives a + c', async () => {
    expectClose(await convertAndRun(twoBlobModel(0), bin()), zip(INPUT, c, (x, y) => x + y));
  });

  test('sub of two blobs gives a − c', async () => {
    expectClose(await convertAndRun(twoBlobModel(1), bin()), zip(INPUT, c, (x, y) => x - y));
  });

  test('rsub (op 7) of two blobs gives c − a', async () => {
    expectClose(await convertAndRun(twoBlobModel(7), bin()), zip(INPUT, c, (x, y) => y - x));
  });

  test('mul with a scalar (1=1 2=3.0) multiplies by 3', async () => {
    const out = await convertAndRun(param(INPUT_LINE, 'BinaryOp bin0 1 1 data out 0=2 1=1 2=3.000000e+00'), new Uint8Array(0));
    expectClose(out, map(INPUT, (v) => 3 * v));
  });

  test('rsub with a scalar gives 3 − a', async () => {
    const out = await convertAndRun(param(INPUT_LINE, 'BinaryOp bin0 1 1 data out 0=7 1=1 2=3.000000e+00'), new Uint8Array(0));
    expectClose(out, map(INPUT, (v) => 3 - v));
  });
});

describe('convertNcnnToOnnx: PixelShuffle', () => {
  // A 1×1 conv to 12 channels gives PixelShuffle 12 distinct planes to rearrange into 3.
  const convWeights = values(12 * 3, 81);
  const convBias = values(12, 82);
  const planes = conv(INPUT, convWeights, 12, 1, 0, convBias);
  const shuffleModel = (params: string) =>
    param(INPUT_LINE, 'Convolution conv0 1 1 data c 0=12 1=1 5=1 6=36', `PixelShuffle ps0 1 1 c out ${params}`);
  const bin = () => new BinWriter().fp32(convWeights).raw(convBias).bytes();

  test('mode 0 (PyTorch order): out[c][h·r+i][w·r+j] = in[c·r·r + i·r + j][h][w]', async () => {
    const out = await convertAndRun(shuffleModel('0=2'), bin());
    expectClose(out, pixelShuffle(planes, 2, 0));
  });

  test('mode 1: out[c][h·r+i][w·r+j] = in[(i·r + j)·outc + c][h][w]', async () => {
    const out = await convertAndRun(shuffleModel('0=2 1=1'), bin());
    expectClose(out, pixelShuffle(planes, 2, 1));
    // The two modes really differ on this data.
    const diff = pixelShuffle(planes, 2, 0).d.some((v, i) => Math.abs(v - pixelShuffle(planes, 2, 1).d[i]) > 0.01);
    expect(diff).toBe(true);
  });
});

describe('convertNcnnToOnnx: a small network chaining the layers', () => {
  test('conv → PReLU → Split → conv + Eltwise residual → PixelShuffle matches the reference', async () => {
    const w0 = values(12 * 3 * 9, 91);
    const b0 = values(12, 92);
    const slopes = values(12, 93);
    const w1 = halfExactValues(12 * 12, 94);
    const b1 = values(12, 95);
    const p = param(
      INPUT_LINE,
      'Convolution conv0 1 1 data c0 0=12 1=3 4=1 5=1 6=324',
      'PReLU prelu0 1 1 c0 p0 0=12',
      'Split split0 1 2 p0 s0 s1',
      'Convolution conv1 1 1 s1 c1 0=12 1=1 5=1 6=144 9=1',
      'Eltwise sum0 2 1 s0 c1 e0 0=1',
      'PixelShuffle ps0 1 1 e0 out 0=2',
    );
    const bin = new BinWriter().fp32(w0).raw(b0).raw(slopes).fp16(w1).raw(b1).bytes();
    const p0 = prelu(conv(INPUT, w0, 12, 3, 1, b0), slopes);
    const c1 = map(conv(p0, w1, 12, 1, 0, b1), (v) => Math.max(0, v));
    const result = convertNcnnToOnnx(p, bin, 'chain');
    expect(result.layerCount).toBe(7);
    expectClose(await run(result.onnx), pixelShuffle(zip(p0, c1, (x, y) => x + y), 2, 0));
  });
});

describe('convertNcnnToOnnx: errors', () => {
  test('an unsupported layer type throws UPB_NCNN_UNSUPPORTED_LAYER naming the type', () => {
    const e = thrown(() => convertNcnnToOnnx(param(INPUT_LINE, 'Softmax softmax0 1 1 data out 0=0'), new Uint8Array(0), 'm'));
    expect(e.code).toBe('UPB_NCNN_UNSUPPORTED_LAYER');
    expect(e.message).toContain('Softmax');
    expect(e.message).toContain('softmax0');
  });

  test('an unsupported option of a supported layer throws UPB_NCNN_UNSUPPORTED_LAYER', () => {
    const e = thrown(() => convertNcnnToOnnx(param(INPUT_LINE, 'Interp up0 1 1 data out 0=4'), new Uint8Array(0), 'm'));
    expect(e.code).toBe('UPB_NCNN_UNSUPPORTED_LAYER');
    expect(e.message).toContain('resize type 4');
  });

  test('a .bin with bytes left over throws UPB_NCNN_FORMAT', () => {
    const bin = new BinWriter().raw([0.25, 0.5, 0.75]).extra(4).bytes();
    const e = thrown(() => convertNcnnToOnnx(param(INPUT_LINE, 'PReLU prelu0 1 1 data out 0=3'), bin, 'm'));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toContain('4 bytes of the .bin were not consumed');
  });

  test('a .bin one float too short throws UPB_NCNN_FORMAT', () => {
    const bin = new BinWriter().raw([0.25, 0.5]).bytes();
    const e = thrown(() => convertNcnnToOnnx(param(INPUT_LINE, 'PReLU prelu0 1 1 data out 0=3'), bin, 'm'));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toContain('prelu0');
  });

  test('a convolution .bin cut inside the weights throws UPB_NCNN_FORMAT', () => {
    const full = new BinWriter().fp32(values(6, 1)).raw(values(2, 2)).bytes();
    const p = param(INPUT_LINE, 'Convolution conv0 1 1 data out 0=2 1=1 5=1 6=6');
    expect(() => convertNcnnToOnnx(p, full, 'm')).not.toThrow();
    expect(thrown(() => convertNcnnToOnnx(p, full.subarray(0, 12), 'm')).code).toBe('UPB_NCNN_FORMAT');
    expect(thrown(() => convertNcnnToOnnx(p, full.subarray(0, full.length - 1), 'm')).code).toBe('UPB_NCNN_FORMAT');
  });
});
