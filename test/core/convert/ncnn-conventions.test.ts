import { thrown } from '../../helpers';
import { convertNcnnToOnnx, minimumInputSide, NcnnConventions } from '../../../core/convert/ncnn-to-onnx';
import { at, BinWriter, conv, convertAndRun, expectClose, maxDiff, nearest, param, randomTensor, Tensor, tensor, values, zip } from './ncnn-kit';

/**
 * Conventions folded into the graph (ncnn-conventions.ts): pad (reflect or edge, prepad on every
 * side plus right/bottom alignment), the network, top-left crop to scale × input, optional
 * nearest residual. Shrinking test networks stand in for Real-CUGAN/waifu2x; the references pad,
 * run and crop in plain JS following realcugan.cpp / waifu2x.cpp (RESEARCH.md §2).
 */

type Border = NcnnConventions['border'];

/** ncnn BORDER_REFLECT (padding.cpp: the edge pixel is not repeated) or BORDER_REPLICATE. */
function source(i: number, n: number, border: Border): number {
  if (border === 'edge') return Math.min(n - 1, Math.max(0, i));
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

/** realcugan.cpp: prepadding on every side, plus (align − h mod align) mod align at the bottom (and right). */
function pad(t: Tensor, prepad: number, align: number, border: Border): Tensor {
  const extra = (n: number) => (align - (n % align)) % align;
  return tensor(t.c, t.h + 2 * prepad + extra(t.h), t.w + 2 * prepad + extra(t.w), (c, y, x) => at(t, c, source(y - prepad, t.h, border), source(x - prepad, t.w, border)));
}

const cropTopLeft = (t: Tensor, h: number, w: number) => tensor(t.c, h, w, (c, y, x) => at(t, c, y, x));

const channelMeans = (t: Tensor) => Array.from({ length: t.c }, (_, c) => t.d.subarray(c * t.h * t.w, (c + 1) * t.h * t.w).reduce((a, v) => a + v, 0) / (t.h * t.w));

// Network A: a valid 3×3 convolution (eats 1 px per side), plus its global mean per channel (so
// the alignment padding changes every output value, as in Real-CUGAN's SE blocks), then ×`scale`
// nearest. Its conventions: prepad 1.
const WEIGHTS = values(3 * 3 * 9, 201);
const BIAS = values(3, 202);
const BIN = new BinWriter().fp32(WEIGHTS).raw(BIAS).bytes();
const networkA = (scale: number) =>
  param(
    'Input input 0 1 data',
    'Convolution conv0 1 1 data c 0=3 1=3 5=1 6=81',
    'Split split0 1 2 c c1 c2',
    'Pooling gap0 1 1 c2 mean 0=1 4=1',
    'BinaryOp add0 2 1 c1 mean s 0=0',
    `Interp up0 1 1 s out 0=1 1=${scale}.0 2=${scale}.0`,
  );

function referenceA(input: Tensor, c: NcnnConventions, scale: number): Tensor {
  const convolved = conv(pad(input, c.prepad, c.align, c.border), WEIGHTS, 3, 3, 0, BIAS);
  const means = channelMeans(convolved);
  const network = nearest(tensor(3, convolved.h, convolved.w, (k, y, x) => at(convolved, k, y, x) + means[k]), scale, scale);
  const out = cropTopLeft(network, scale * input.h, scale * input.w);
  return c.residual ? zip(out, nearest(input, scale, scale), (a, b) => a + b) : out;
}

describe('conventions: pad, network, crop to scale × input', () => {
  const sizes: [number, number][] = [
    [5, 7],
    [9, 6],
    [8, 8],
    [13, 11],
  ];
  for (const border of ['reflect', 'edge'] as const) {
    test.each(sizes)(`${border}, prepad 1, align 4: a %i×%i input gives exactly 2h × 2w, equal to the padded reference`, async (h, w) => {
      const c: NcnnConventions = { prepad: 1, align: 4, border };
      const input = randomTensor(3, h, w, h * 100 + w);
      const out = await convertAndRun(networkA(2), BIN, input, c);
      expect([out.c, out.h, out.w]).toEqual([3, 2 * h, 2 * w]);
      expectClose(out, referenceA(input, c, 2));
    });
  }

  test('each choice is visible: reflect ≠ edge, and the alignment padding changes the result', async () => {
    const input = randomTensor(3, 5, 7, 31);
    const reflect: NcnnConventions = { prepad: 1, align: 4, border: 'reflect' };
    const out = await convertAndRun(networkA(2), BIN, input, reflect);
    expect(maxDiff(out, referenceA(input, { ...reflect, border: 'edge' }, 2))).toBeGreaterThan(1e-3);
    expect(maxDiff(out, referenceA(input, { ...reflect, align: 1 }, 2))).toBeGreaterThan(1e-3);
    expectClose(out, referenceA(input, reflect, 2));
  });

  test('residual "nearest" adds the input enlarged by nearest neighbour (Real-CUGAN 4x), here at ×3 on 7×5', async () => {
    const c: NcnnConventions = { prepad: 1, align: 2, border: 'reflect', residual: 'nearest' };
    const input = randomTensor(3, 7, 5, 41);
    const out = await convertAndRun(networkA(3), BIN, input, c);
    expect([out.h, out.w]).toEqual([21, 15]);
    expectClose(out, referenceA(input, c, 3));
    expect(maxDiff(out, referenceA(input, { ...c, residual: undefined }, 3))).toBeGreaterThan(0.1);
  });

  test.each([
    [1, 4, 'reflect'],
    [3, 2, 'reflect'],
    [2, 3, 'reflect'],
    [2, 4, 'edge'],
  ] as const)('prepad %i, align %i, %s: runs at the documented minimum side (and one more)', async (prepad, align, border) => {
    const c: NcnnConventions = { prepad, align, border };
    const min = minimumInputSide(c);
    expect(min).toBe(border === 'reflect' ? prepad + align : 1);
    // A network that eats `prepad` px per side: a valid (2·prepad+1)² box-sum convolution.
    const k = 2 * prepad + 1;
    const weights = values(3 * 3 * k * k, 51);
    const p = param('Input input 0 1 data', `Convolution conv0 1 1 data out 0=3 1=${k} 5=0 6=${weights.length}`);
    for (const [h, w] of [
      [min, min],
      [min + 1, min],
    ]) {
      const input = randomTensor(3, h, w, 61);
      const out = await convertAndRun(p, new BinWriter().fp32(weights).bytes(), input, c);
      expectClose(out, cropTopLeft(conv(pad(input, prepad, align, border), weights, 3, k, 0), h, w));
    }
  });
});

describe('conventions: padding values, hand-computed', () => {
  // Input pixel (c, y, x) = 100c + 10y + x on a 5×5 image; prepad 2, scale 1. A 5×5 valid
  // convolution with a single 1 at kernel (ky, kx), per channel, outputs padded[y + ky][x + kx]:
  // kernel (0, 0) shows the top and left padding, kernel (4, 4) the bottom and right padding.
  const input = tensor(3, 5, 5, (c, y, x) => 100 * c + 10 * y + x);
  const picker = (ky: number, kx: number) => {
    const weights = new Float32Array(3 * 3 * 25);
    for (let c = 0; c < 3; c++) weights[(c * 3 + c) * 25 + ky * 5 + kx] = 1;
    return weights;
  };
  const p = param('Input input 0 1 data', 'Convolution conv0 1 1 data out 0=3 1=5 5=0 6=225');
  const row = (t: Tensor, c: number, y: number) => Array.from({ length: t.w }, (_, x) => at(t, c, y, x));

  test('reflect (edge pixel not repeated): top-left rows read rows 2,1 and columns 2,1,0,1,2', async () => {
    const out = await convertAndRun(p, new BinWriter().fp32(picker(0, 0)).bytes(), input, { prepad: 2, align: 1, border: 'reflect' });
    expect([out.h, out.w]).toEqual([5, 5]);
    expect(row(out, 0, 0)).toEqual([22, 21, 20, 21, 22]);
    expect(row(out, 0, 1)).toEqual([12, 11, 10, 11, 12]);
    expect(row(out, 2, 2)).toEqual([202, 201, 200, 201, 202]);
  });

  test('reflect: bottom-right rows read rows …4,3,2 and columns 2,3,4,3,2', async () => {
    const out = await convertAndRun(p, new BinWriter().fp32(picker(4, 4)).bytes(), input, { prepad: 2, align: 1, border: 'reflect' });
    expect(row(out, 0, 4)).toEqual([22, 23, 24, 23, 22]);
    expect(row(out, 1, 3)).toEqual([132, 133, 134, 133, 132]);
  });

  test('edge (replicate): top-left repeats row 0 and column 0; bottom-right repeats row 4 and column 4', async () => {
    const topLeft = await convertAndRun(p, new BinWriter().fp32(picker(0, 0)).bytes(), input, { prepad: 2, align: 1, border: 'edge' });
    expect(row(topLeft, 0, 0)).toEqual([0, 0, 0, 1, 2]);
    expect(row(topLeft, 0, 2)).toEqual([0, 0, 0, 1, 2]);
    expect(row(topLeft, 0, 3)).toEqual([10, 10, 10, 11, 12]);
    const bottomRight = await convertAndRun(p, new BinWriter().fp32(picker(4, 4)).bytes(), input, { prepad: 2, align: 1, border: 'edge' });
    expect(row(bottomRight, 0, 4)).toEqual([42, 43, 44, 44, 44]);
    expect(row(bottomRight, 2, 2)).toEqual([242, 243, 244, 244, 244]);
  });
});

describe('conventions: errors', () => {
  test.each([
    [{ prepad: -1, align: 2, border: 'reflect' }, 'prepad'],
    [{ prepad: 1.5, align: 2, border: 'reflect' }, 'prepad'],
    [{ prepad: 1, align: 0, border: 'reflect' }, 'align'],
    [{ prepad: 1, align: 2, border: 'zero' }, 'border'],
    [{ prepad: 1, align: 2, border: 'edge', residual: 'bilinear' }, 'residual'],
  ])('%j is refused with UPB_INVALID_OPTION naming %s', (conventions, field) => {
    const e = thrown(() => convertNcnnToOnnx(networkA(2), BIN, 'm', conventions as unknown as NcnnConventions));
    expect(e.code).toBe('UPB_INVALID_OPTION');
    expect(e.message).toContain(field);
  });

  test('a network whose output is a 1-D blob cannot be cropped to an image', () => {
    const p = param('Input input 0 1 data', 'Pooling gap0 1 1 data out 0=1 4=1');
    const e = thrown(() => convertNcnnToOnnx(p, new Uint8Array(0), 'm', { prepad: 0, align: 1, border: 'edge' }));
    expect(e.code).toBe('UPB_NCNN_FORMAT');
    expect(e.message).toContain('1-D');
  });
});
