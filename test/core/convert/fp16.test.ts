import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { findModel } from '../../../core/catalogue';
import { convertModelToFp16, convertOnnxToFp16, float16BitsToFloat32, float32ToFloat16Bits } from '../../../core/convert/fp16';
import { OnnxGraphBuilder } from '../../../core/convert/onnx-builder';
import { psnr } from '../../../core/metrics';
import { sharpResampler } from '../../../core/node/image-io';
import { ModelStore } from '../../../core/node/model-store';
import { Raster } from '../../../core/raster';
import { InferenceRunner } from '../../../core/session';
import { upscaleRaster, windowConventions } from '../../../core/upscale';

const { FLOAT, FLOAT16, INT64 } = onnx.TensorProto.DataType;

describe('float32 → float16 bits', () => {
  test.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [0.1, 0x2e66], // 0.0999755859375, the nearest
    [1 / 3, 0x3555],
    [65504, 0x7bff],
    [2 ** -14, 0x0400], // smallest normal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [1.5 * 2 ** -24, 0x0002], // a tie between subnormals 1 and 2: to even
    [2 ** -25, 0x0000], // a tie between 0 and 2^-24: to even, so zero
    [1.0001 * 2 ** -25, 0x0001],
    [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: to even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // halfway between 0x3c01 and 0x3c02: to even (up)
    [2047.5, 0x67ff + 1], // halfway, rounds up into the next binade exactly
    [0, 0x0000],
    [-0, 0x8000],
  ])('%p → %p', (value, bits) => {
    expect(float32ToFloat16Bits(value)).toBe(bits);
  });

  test('finite values beyond ±65504 clamp to the largest finite half; infinities and NaN keep their meaning', () => {
    expect(float32ToFloat16Bits(65519)).toBe(0x7bff); // rounds to 65504 anyway
    expect(float32ToFloat16Bits(65520)).toBe(0x7bff); // would round to infinity
    expect(float32ToFloat16Bits(1e6)).toBe(0x7bff);
    expect(float32ToFloat16Bits(-3.4e38)).toBe(0xfbff);
    expect(float32ToFloat16Bits(Infinity)).toBe(0x7c00);
    expect(float32ToFloat16Bits(-Infinity)).toBe(0xfc00);
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
  });

  test('every half value survives the round trip through float32 bit for bit', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00 && bits & 0x3ff) continue; // NaN payloads are not kept
      if (float32ToFloat16Bits(float16BitsToFloat32(bits)) !== bits) throw new Error(`0x${bits.toString(16)} does not round-trip`);
    }
  });

  test('a value between two halves goes to the nearer one (checked against every adjacent pair)', () => {
    for (let bits = 0x0000; bits < 0x7bff; bits += 7) {
      const lo = float16BitsToFloat32(bits);
      const hi = float16BitsToFloat32(bits + 1);
      expect(float32ToFloat16Bits(lo + (hi - lo) * 0.25)).toBe(bits);
      expect(float32ToFloat16Bits(lo + (hi - lo) * 0.75)).toBe(bits + 1);
    }
  });
});

/**
 * A small graph with every kind of tensor the converters make: the image path (Pad, Conv, PRelu,
 * Mul by a constant), a nearest Resize with float32 scales, Interp's size path computed in float
 * from Shape, a squeeze-excitation branch (GlobalAveragePool, Sigmoid) and a constant read both by
 * a float16 and a float32 node.
 */
function smallGraph(): onnx.ModelProto {
  const b = new OnnxGraphBuilder();
  b.addInput('input', [1, 3, 'height', 'width']);
  b.addNode('Pad', ['input', b.addInt64Initializer('pads', [8], [0, 0, 1, 1, 0, 0, 1, 1])], ['padded'], { mode: 'edge' });
  const weights = Float32Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => Math.sin(i) * 0.3);
  b.addNode('Conv', ['padded', b.addFloatInitializer('W', [4, 3, 3, 3], weights), b.addFloatInitializer('B', [4], [0.1, -0.1, 0.2, 1e-9])], ['conv'], { kernel_shape: [3, 3] });
  b.addNode('PRelu', ['conv', b.addFloatInitializer('slope', [4, 1, 1], [0.1, 0.2, 0.3, 100000])], ['act']);
  b.addNode('GlobalAveragePool', ['act'], ['pooled']);
  b.addNode('Sigmoid', ['pooled'], ['gate']);
  b.addNode('Mul', ['act', 'gate'], ['gated']);
  // Interp-style sizes: float arithmetic on the shape, which must stay float32.
  b.addNode('Shape', ['gated'], ['hw'], { start: 2 });
  b.addNode('Cast', ['hw'], ['hw_float'], { to: FLOAT });
  const shared = b.addFloatInitializer('two', [], [2]);
  b.addNode('Mul', ['hw_float', shared], ['hw_scaled']);
  b.addNode('Floor', ['hw_scaled'], ['hw_floor']);
  b.addNode('Cast', ['hw_floor'], ['out_hw'], { to: INT64 });
  b.addNode('Shape', ['gated'], ['nc'], { end: 2 });
  b.addNode('Concat', ['nc', 'out_hw'], ['sizes'], { axis: 0 });
  b.addNode('Resize', ['gated', '', '', 'sizes'], ['big'], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  b.addNode('Mul', ['big', shared], ['doubled']);
  b.addNode('Resize', ['doubled', '', b.addFloatInitializer('scales', [4], [1, 1, 0.5, 0.5])], ['output'], { mode: 'nearest' });
  b.addOutput('output', [1, 4, 'h', 'w']);
  return onnx.ModelProto.decode(b.encode('fp16-test').bytes);
}

const initializer = (m: onnx.IModelProto, name: string) => m.graph!.initializer!.find((t) => t.name === name);

describe('convertModelToFp16', () => {
  const { model: half, stats } = convertModelToFp16(smallGraph());
  const graph = half.graph!;

  test('inputs and outputs stay float32, behind a Cast to float16 and a Cast back', () => {
    expect(graph.input!.map((v) => [v.name, v.type!.tensorType!.elemType])).toEqual([['input', FLOAT]]);
    expect(graph.output!.map((v) => [v.name, v.type!.tensorType!.elemType])).toEqual([['output', FLOAT]]);
    const first = graph.node!.find((n) => n.input!.includes('input'))!;
    expect([first.opType, first.attribute![0].i]).toEqual(['Cast', FLOAT16]);
    const last = graph.node!.find((n) => n.output!.includes('output'))!;
    expect([last.opType, last.attribute![0].i]).toEqual(['Cast', FLOAT]);
  });

  test('weights become float16; Resize scales, shape arithmetic and int64 tensors keep their types', () => {
    for (const name of ['W', 'B', 'slope']) expect([name, initializer(half, name)!.dataType]).toEqual([name, FLOAT16]);
    expect(initializer(half, 'scales')!.dataType).toBe(FLOAT);
    expect(initializer(half, 'pads')!.dataType).toBe(INT64);
    // 'two' is read by the float32 size path and by a float16 Mul: both forms exist.
    expect(initializer(half, 'two')!.dataType).toBe(FLOAT);
    expect(initializer(half, 'two_fp16')!.dataType).toBe(FLOAT16);
    expect(graph.node!.find((n) => n.output!.includes('hw_scaled'))!.input).toEqual(['hw_float', 'two']);
    expect(graph.node!.find((n) => n.output!.includes('doubled'))!.input).toEqual(['big', 'two_fp16']);
    expect(stats.clamped).toBe(1); // the 100000 slope
    expect(stats.flushedToZero).toBe(1); // the 1e-9 bias
    expect(float16BitsToFloat32(new DataView(initializer(half, 'slope')!.rawData!.buffer, initializer(half, 'slope')!.rawData!.byteOffset).getUint16(6, true))).toBe(65504);
  });

  test('GlobalAveragePool runs in float32 between Casts (WebGPU sums the plane in the input type)', () => {
    const pool = graph.node!.find((n) => n.opType === 'GlobalAveragePool')!;
    const feeder = graph.node!.find((n) => n.output!.includes(pool.input![0]))!;
    expect([feeder.opType, feeder.attribute![0].i, feeder.input]).toEqual(['Cast', FLOAT, ['act']]);
    expect(stats.keptFloat32).toEqual(expect.arrayContaining(['pooled', 'gate', 'hw_float', 'hw_scaled', 'scales', 'two']));
  });

  test('the float16 graph runs in ONNX Runtime and agrees with the float32 one to float16 precision', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-fp16-'));
    try {
      const data = Float32Array.from({ length: 3 * 6 * 5 }, (_, i) => (i * 37) % 101 / 100);
      const run = async (bytes: Uint8Array) => {
        const session = await ort.InferenceSession.create(bytes);
        const out = (await session.run({ input: new ort.Tensor('float32', data, [1, 3, 6, 5]) })).output;
        await session.release();
        return out;
      };
      const reference = await run(onnx.ModelProto.encode(smallGraph()).finish());
      const converted = await run(onnx.ModelProto.encode(half).finish());
      expect(converted.type).toBe('float32');
      expect(converted.dims).toEqual(reference.dims);
      const ref = reference.data as Float32Array;
      const got = converted.data as Float32Array;
      for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i] - ref[i])).toBeLessThanOrEqual(2e-3 * Math.max(1, Math.abs(ref[i])));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('an op outside the table, or a model that is float16 already, is refused with a typed error', () => {
    const b = new OnnxGraphBuilder();
    b.addInput('input', [1, 3, 2, 2]);
    b.addNode('LpNormalization', ['input'], ['output']);
    b.addOutput('output', [1, 3, 2, 2]);
    expect(() => convertOnnxToFp16(b.encode('x').bytes)).toThrow(expect.objectContaining({ code: 'UPB_MODEL_UNSUPPORTED', message: expect.stringContaining('LpNormalization') }));
    expect(() => convertModelToFp16(half)).toThrow(expect.objectContaining({ code: 'UPB_MODEL_UNSUPPORTED', message: expect.stringContaining('already float16') }));
    expect(() => convertOnnxToFp16(new Uint8Array([1, 2, 3]))).toThrow(expect.objectContaining({ code: 'UPB_MODEL_UNSUPPORTED' }));
  });
});

/**
 * The real models, float16 against float32, through the real pipeline on ORT's CPU provider.
 * On the CPU this measures the weights' rounding only: ORT has no float16 kernels for most of
 * these ops on x86, so it casts the weights back to float32 and computes in float32 (asserted
 * below); the GPU providers compute in float16 and need their own check.
 */
describe('fp16 variants of the catalogue models', () => {
  jest.setTimeout(600_000);
  const PHOTO = path.join(__dirname, '..', '..', 'fixtures', 'photo-161x121.png');
  const store = new ModelStore();
  let input: Raster;

  beforeAll(async () => {
    const { data, info } = await sharp(PHOTO).extract({ left: 60, top: 40, width: 32, height: 24 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    input = { width: info.width, height: info.height, channels: 3, depth: 8, data: new Uint8Array(data) };
  });

  async function upscaleWith(id: string, onnxPath: string, optimizedModelFilePath?: string): Promise<Raster> {
    const model = findModel(id);
    const session = await ort.InferenceSession.create(onnxPath, { executionProviders: ['cpu'], intraOpNumThreads: os.availableParallelism(), ...(optimizedModelFilePath ? { optimizedModelFilePath } : {}) });
    const runner: InferenceRunner = {
      provider: 'cpu',
      async run(tile) {
        const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', tile.data, [1, tile.channels, tile.height, tile.width]) });
        const output = result[session.outputNames[0]];
        expect(output.type).toBe('float32');
        const [, channels, height, width] = output.dims as number[];
        return { data: output.data as Float32Array, channels, height, width };
      },
    };
    try {
      return (await upscaleRaster(input, runner, model.scale, sharpResampler, { scale: model.scale, tile: model.tile, overlap: model.overlap, alpha: 'model', ...windowConventions(model) })).raster;
    } finally {
      await session.release();
    }
  }

  // Measured on the CPU with scripts/fp16-check.ts (40×32 crop): x4v3 identical, x4plus 60.0,
  // realcugan 88.2, cunet 65.3, esrgan-slim 70.1 dB.
  test.each(['realesr-general-x4v3', 'realesrgan-x4plus', 'realcugan-4x-conservative', 'waifu2x-cunet-2x', 'esrgan-slim-x4'])(
    '%s: the fp16 variant is half the size and within 40 dB PSNR of float32 on 8-bit output',
    async (id) => {
      const base = (await store.ensureOne(id)).onnxPath;
      const variant = await store.ensureVariant(id, 'fp16');
      const [size32, size16] = await Promise.all([fs.stat(base), fs.stat(variant.onnxPath)]).then((s) => s.map((x) => x.size));
      expect(size16 / size32).toBeGreaterThan(0.49);
      expect(size16 / size32).toBeLessThan(0.52);
      const model = onnx.ModelProto.decode(await fs.readFile(variant.onnxPath));
      expect([...model.graph!.input!, ...model.graph!.output!].map((v) => v.type!.tensorType!.elemType)).toEqual([FLOAT, FLOAT]);
      const fp32 = await upscaleWith(id, base);
      const fp16 = await upscaleWith(id, variant.onnxPath);
      expect([fp16.width, fp16.height]).toEqual([fp32.width, fp32.height]);
      const db = psnr(fp16.data, fp32.data, 255).db;
      expect([id, db]).toEqual([id, expect.any(Number)]);
      expect(db).toBeGreaterThanOrEqual(40);
    },
  );

  test("ORT's CPU provider computes the fp16 graph in float32: the graph it optimised keeps no float16 weight", async () => {
    const id = 'realesr-general-x4v3';
    const variant = await store.ensureVariant(id, 'fp16');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'upbridge-fp16-ort-'));
    try {
      const saved = path.join(dir, 'optimized.onnx');
      await upscaleWith(id, variant.onnxPath, saved);
      const optimized = onnx.ModelProto.decode(await fs.readFile(saved));
      const types = new Set(optimized.graph!.initializer!.map((t) => t.dataType));
      // ORT's InsertCastTransformer wraps nodes without a float16 CPU kernel in Casts, then folds
      // the weight Casts into float32 initializers and drops the input's float32→float16→float32 pair.
      expect([...types]).not.toContain(FLOAT16);
      expect(optimized.graph!.node!.filter((n) => n.opType === 'Cast').length).toBeLessThanOrEqual(1);
      expect(optimized.graph!.node!.some((n) => n.name?.startsWith('InsertedPrecisionFreeCast') || n.input!.some((i) => i.startsWith('InsertedPrecisionFreeCast')))).toBe(true);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
