import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { INPUT_NAME, OUTPUT_NAME } from '../../../core/convert/ncnn-to-onnx';
import { convertTfjsToOnnx } from '../../../core/convert/tfjs-to-onnx';
import { psnr } from '../../../core/metrics';
import { readImage } from '../../../core/node/image-io';
import { Raster } from '../../../core/raster';
import manifest from '../../fixtures/tfjs-reference/manifest.json';
import { loadTfjsSource, TFJS_FAMILIES, TFJS_SCALES, TfjsFamily } from './tfjs-sources';

/**
 * The 12 UpscalerJS models (esrgan-slim/-medium RDN, esrgan-thick RRDN; 2x/3x/4x/8x), converted
 * and run with ONNX Runtime, against the original: @tensorflow/tfjs 4.11.0 (pure JS) running each
 * model.json with UpscalerJS' pre/post-processing, on a 28×20 crop of photo-161x121.png.
 * The reference outputs were made once by scripts/make-tfjs-reference.mjs (see the fixture
 * README), because tfjs needs ~7 s per thick model; the ONNX side runs the model on exactly the
 * crop (no tiler: UpscalerJS does not pad, the pipeline mirrors 10 px) and rounds
 * clip(y, 0, 1) · 255 as the pipeline does.
 *
 * Bars: the issue's PSNR ≥ 40 dB, and at most 1 LSB anywhere. Any wrong weight layout, padding,
 * channel order or range moves outputs by many LSB; float32 rounding (tfjs and ORT sum in
 * different orders) moves them by ~1e-6 of full scale, which can flip a rounding by 1 and no more.
 */
const FIXTURES = path.join(__dirname, '..', '..', 'fixtures', 'tfjs-reference');
const CASES: [TfjsFamily, number][] = TFJS_FAMILIES.flatMap((f) => TFJS_SCALES.map((s): [TfjsFamily, number] => [f, s]));

/** Interleaved 8-bit RGB → NCHW float 0..1, as the pipeline feeds a tile. */
function toTensor(image: Raster): ort.Tensor {
  const { width, height } = image;
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) data[c * plane + i] = image.data[i * image.channels + c] / 255;
  return new ort.Tensor('float32', data, [1, 3, height, width]);
}

async function runOnnx(bytes: Uint8Array, image: Raster): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    expect(session.inputNames).toEqual([INPUT_NAME]);
    expect(session.outputNames).toEqual([OUTPUT_NAME]);
    const out = (await session.run({ [INPUT_NAME]: toTensor(image) }))[OUTPUT_NAME];
    return { data: out.data as Float32Array, dims: out.dims };
  } finally {
    await session.release();
  }
}

/** NCHW float → interleaved 8-bit RGB: round(clip(v, 0, 1) · 255), the pipeline's quantisation. */
function toBytes(data: Float32Array, width: number, height: number): Uint8Array {
  const plane = width * height;
  const out = new Uint8Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(Math.min(1, Math.max(0, data[c * plane + i])) * 255);
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

async function fixture(family: TfjsFamily, scale: number) {
  const input = (await readImage(path.join(FIXTURES, manifest.input.file))).raster;
  const entry = manifest.outputs.find((o) => o.file === `esrgan-${family}-x${scale}.png`)!;
  const reference = (await readImage(path.join(FIXTURES, entry.file))).raster;
  return { input, reference, entry };
}

describe('UpscalerJS models converted to ONNX agree with @tensorflow/tfjs on the original model.json', () => {
  test('the fixtures are the ones the manifest describes (input crop and 12 outputs, by sha256)', async () => {
    const input = (await readImage(path.join(FIXTURES, manifest.input.file))).raster;
    expect([input.width, input.height, input.channels]).toEqual([manifest.input.width, manifest.input.height, 3]);
    expect(manifest.outputs.map((o) => o.file).sort()).toEqual(CASES.map(([f, s]) => `esrgan-${f}-x${s}.png`).sort());
    for (const { file, sha256 } of [manifest.input, ...manifest.outputs]) {
      expect([file, createHash('sha256').update(await fs.readFile(path.join(FIXTURES, file))).digest('hex')]).toEqual([file, sha256]);
    }
  });

  test.each(CASES)('esrgan-%s x%d: scale, shape, PSNR ≥ 40 dB and ≤ 1 LSB against the tfjs reference', async (family, scale) => {
    const source = await loadTfjsSource(family, scale);
    const result = convertTfjsToOnnx(source.modelJson, source.weightData, { modelName: source.id, inputRange: source.inputRange });
    expect(result.scale).toBe(scale);
    expect(result.minInputSize).toBe(1);
    expect(result.sizeMultiple).toBe(1);

    const { input, reference, entry } = await fixture(family, scale);
    expect(entry.scale).toBe(scale);
    const out = await runOnnx(result.onnx, input);
    expect(out.dims).toEqual([1, 3, input.height * scale, input.width * scale]);
    const ours = toBytes(out.data, input.width * scale, input.height * scale);
    const agreement = psnr(ours, reference.data, 255);
    const worst = maxDiff(ours, reference.data);
    let differing = 0;
    for (let i = 0; i < ours.length; i++) if (ours[i] !== reference.data[i]) differing++;
    process.stdout.write(
      `${source.id}: ${agreement.db.toFixed(2)} dB, max ${worst} LSB, ${differing}/${ours.length} samples differ; ` +
        `${result.onnx.byteLength} bytes, ${result.nodeCount} nodes, ${result.parameterCount} parameters\n`,
    );
    expect(agreement.db).toBeGreaterThanOrEqual(40);
    expect(worst).toBeLessThanOrEqual(1);
  });

  test('conversion is deterministic: the same bytes twice (slim x4, thick x4)', async () => {
    for (const family of ['slim', 'thick'] as const) {
      const source = await loadTfjsSource(family, 4);
      const options = { modelName: source.id, inputRange: source.inputRange };
      const a = convertTfjsToOnnx(source.modelJson, source.weightData, options).onnx;
      const b = convertTfjsToOnnx(source.modelJson, source.weightData, options).onnx;
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    }
  });
});

describe('the comparison would catch a wrong conversion', () => {
  /** The converted graph with one edit, to stand in for a converter bug. */
  function mutate(bytes: Uint8Array, edit: (graph: onnx.IGraphProto) => void): Uint8Array {
    const model = onnx.ModelProto.decode(bytes);
    edit(model.graph!);
    return onnx.ModelProto.encode(model).finish();
  }

  test('thick x4 with PyTorch-order pixel shuffle (DepthToSpace CRD instead of DCR) is far from the reference', async () => {
    const source = await loadTfjsSource('thick', 4);
    const { onnx: bytes } = convertTfjsToOnnx(source.modelJson, source.weightData, { modelName: source.id, inputRange: 1 });
    const wrong = mutate(bytes, (g) => {
      const node = g.node!.find((n) => n.opType === 'DepthToSpace')!;
      node.attribute!.find((a) => a.name === 'mode')!.s = new TextEncoder().encode('CRD');
    });
    const { input, reference } = await fixture('thick', 4);
    const out = await runOnnx(wrong, input);
    const db = psnr(toBytes(out.data, input.width * 4, input.height * 4), reference.data, 255).db;
    process.stdout.write(`thick x4 with CRD: ${db.toFixed(2)} dB\n`);
    expect(db).toBeLessThan(30);
  });

  // RDN is nearly scale-equivariant (ReLU, small biases), so a range error costs little PSNR:
  // it lands near 40 dB. The 1 LSB bar is what catches it.
  test('slim x4 fed 0..1 instead of its declared 0..255 (no range change in the graph) fails the 1 LSB bar', async () => {
    const source = await loadTfjsSource('slim', 4);
    const { onnx: bytes } = convertTfjsToOnnx(source.modelJson, source.weightData, { modelName: source.id, inputRange: 1 });
    const { input, reference } = await fixture('slim', 4);
    const out = await runOnnx(bytes, input);
    const ours = toBytes(out.data, input.width * 4, input.height * 4);
    const worst = maxDiff(ours, reference.data);
    process.stdout.write(`slim x4 on 0..1: ${psnr(ours, reference.data, 255).db.toFixed(2)} dB, max ${worst} LSB\n`);
    expect(worst).toBeGreaterThan(1);
  });
});

describe('float agreement with tfjs running the original model in this process (RDN models, fast in pure JS)', () => {
  beforeAll(async () => {
    tf.enableProdMode(); // only silences the "install tfjs-node" banner
    await tf.setBackend('cpu');
  });

  test.each([
    ['slim', 4],
    ['medium', 2],
  ] as [TfjsFamily, number][])('esrgan-%s x%d: max |ONNX − tfjs| ≤ 1e-5 of full scale on the reference crop', async (family, scale) => {
    const source = await loadTfjsSource(family, scale);
    const { onnx: bytes } = convertTfjsToOnnx(source.modelJson, source.weightData, { modelName: source.id, inputRange: source.inputRange });
    const { input } = await fixture(family, scale);
    const out = await runOnnx(bytes, input);

    const data = source.weightData.slice();
    const model = await tf.loadLayersModel({
      load: async () => ({
        modelTopology: (source.modelJson as { modelTopology: object }).modelTopology,
        weightSpecs: (source.modelJson as { weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] }).weightsManifest.flatMap((g) => g.weights),
        weightData: data.buffer,
      }),
    });
    const nhwc = tf.tensor4d(Float32Array.from(input.data), [1, input.height, input.width, 3]);
    const y = model.predict(nhwc) as tf.Tensor;
    const expected = y.dataSync();
    tf.dispose([nhwc, y]);
    model.dispose();

    const [w, h] = [input.width * scale, input.height * scale];
    const plane = w * h;
    let worst = 0;
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(out.data[c * plane + i] - expected[i * 3 + c] / 255));
    process.stdout.write(`${source.id}: max |ONNX − tfjs| = ${worst.toExponential(2)} (0..1 scale)\n`);
    expect(worst).toBeLessThanOrEqual(1e-5);
  });
});
