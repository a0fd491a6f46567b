import * as path from 'node:path';
import * as vm from 'node:vm';
import { build } from 'esbuild';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { INPUT_NAME, OUTPUT_NAME } from '../../../core/convert/ncnn-to-onnx';
import { parseTfjsModel, tfjsShardPaths, TfjsWeightSpec } from '../../../core/convert/tfjs-model';
import { convertTfjsToOnnx, TfjsConvertResult } from '../../../core/convert/tfjs-to-onnx';
import { decodeTfjsWeights } from '../../../core/convert/tfjs-weights';
import { thrown } from '../../helpers';
import { registerUpscalerJsLayers } from './tfjs-sources';

/**
 * Tiny hand-written TF.js layers models (model.json + weight bytes), each run twice: converted
 * and run by ONNX Runtime, and loaded from the very same model.json and bytes by
 * @tensorflow/tfjs 4.11.0 (tfjs-layers, pure JS CPU backend), the implementation the models were
 * written for. UpscalerJS' custom layers are registered by its own setup(tf).
 *
 * Tolerance: inputs are in [0, 1), weights in [−0.5, 0.5), so values stay below ~10 and every
 * output sums at most a few hundred products. tfjs and ORT both compute in float32 but sum in
 * different orders; that costs a few float32 ulps (ulp(8) ≈ 1e-6), so 1e-5 absolute holds them,
 * while a wrong tap, channel order, padding side or weight layout moves outputs by ≥ 1e-2.
 */
const TOLERANCE = 1e-5;

// ---- deterministic values ----

function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
}

const floats = (count: number, seed: number, lo: number, hi: number) => {
  const next = random(seed);
  return Float32Array.from({ length: count }, () => lo + (hi - lo) * next());
};

// ---- tiny model.json builder ----

interface Layer {
  class_name: string;
  name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

interface Weight {
  spec: TfjsWeightSpec;
  /** Stored bytes (float32 little-endian unless quantised). */
  bytes: Uint8Array;
}

interface TinyModel {
  modelJson: { format: string; modelTopology: Record<string, unknown>; weightsManifest: { paths: string[]; weights: TfjsWeightSpec[] }[] };
  weightData: Uint8Array;
}

let seedCounter = 1;

function f32Bytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytes;
}

const inputLayer = (name = 'in'): Layer => ({
  class_name: 'InputLayer',
  name,
  config: { batch_input_shape: [null, null, null, 3], dtype: 'float32', sparse: false, ragged: false, name },
  inbound_nodes: [],
});

function layer(className: string, name: string, inputs: string[], config: Record<string, unknown> = {}): Layer {
  return { class_name: className, name, config: { name, trainable: true, dtype: 'float32', ...config }, inbound_nodes: [inputs.map((i) => [i, 0, 0, {}])] };
}

interface ConvOptions {
  kernel?: [number, number];
  strides?: [number, number];
  dilation?: [number, number];
  padding?: 'same' | 'valid';
  activation?: string;
  bias?: boolean;
}

/** A Conv2D layer and its float32 kernel (HWIO) and bias, with fresh random values. */
function conv(name: string, input: string, cin: number, filters: number, o: ConvOptions = {}): { layer: Layer; weights: Weight[] } {
  const [kh, kw] = o.kernel ?? [3, 3];
  const useBias = o.bias ?? true;
  const l = layer('Conv2D', name, [input], {
    filters,
    kernel_size: [kh, kw],
    strides: o.strides ?? [1, 1],
    padding: o.padding ?? 'same',
    data_format: 'channels_last',
    dilation_rate: o.dilation ?? [1, 1],
    groups: 1,
    activation: o.activation ?? 'linear',
    use_bias: useBias,
  });
  const kernelShape = [kh, kw, cin, filters];
  const weights: Weight[] = [{ spec: { name: `${name}/kernel`, shape: kernelShape, dtype: 'float32' }, bytes: f32Bytes(floats(kh * kw * cin * filters, seedCounter++, -0.5, 0.5)) }];
  if (useBias) weights.push({ spec: { name: `${name}/bias`, shape: [filters], dtype: 'float32' }, bytes: f32Bytes(floats(filters, seedCounter++, -0.5, 0.5)) });
  return { layer: l, weights };
}

/** A Functional model.json: `layers` after an InputLayer "in", the last one the output; `groups` splits the weights into manifest groups. */
function tinyModel(layers: Layer[], weights: Weight[], groups: number[] = [weights.length]): TinyModel {
  const all = [inputLayer(), ...layers];
  const manifest: TinyModel['modelJson']['weightsManifest'] = [];
  let next = 0;
  groups.forEach((count, g) => {
    manifest.push({ paths: [`group${g + 1}-shard1of1.bin`], weights: weights.slice(next, next + count).map((w) => w.spec) });
    next += count;
  });
  const size = weights.reduce((n, w) => n + w.bytes.length, 0);
  const weightData = new Uint8Array(size);
  let offset = 0;
  for (const w of weights) {
    weightData.set(w.bytes, offset);
    offset += w.bytes.length;
  }
  return {
    modelJson: {
      format: 'layers-model',
      modelTopology: {
        keras_version: '2.10.0',
        backend: 'tensorflow',
        model_config: {
          class_name: 'Functional',
          config: { name: 'tiny', layers: all, input_layers: [['in', 0, 0]], output_layers: [[all[all.length - 1].name, 0, 0]] },
        },
      },
      weightsManifest: manifest,
    },
    weightData,
  };
}

/** Layers and weights of several conv() results plus extra layers, flattened. */
function parts(...items: ({ layer: Layer; weights: Weight[] } | Layer)[]): [Layer[], Weight[]] {
  const layers: Layer[] = [];
  const weights: Weight[] = [];
  for (const item of items) {
    if ('class_name' in item) layers.push(item);
    else {
      layers.push(item.layer);
      weights.push(...item.weights);
    }
  }
  return [layers, weights];
}

// ---- the two runtimes ----

beforeAll(async () => {
  tf.enableProdMode(); // only silences the "install tfjs-node" banner
  await tf.setBackend('cpu');
});

async function runTfjs(model: TinyModel, nhwc: Float32Array, h: number, w: number): Promise<{ data: Float32Array; shape: number[] }> {
  const copy = model.weightData.slice();
  const loaded = await tf.loadLayersModel({
    load: async () => ({
      modelTopology: model.modelJson.modelTopology,
      weightSpecs: model.modelJson.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[],
      weightData: copy.buffer,
    }),
  });
  const x = tf.tensor4d(nhwc, [1, h, w, 3]);
  const y = loaded.predict(x) as tf.Tensor;
  const result = { data: y.dataSync() as Float32Array, shape: y.shape };
  tf.dispose([x, y]);
  loaded.dispose();
  return result;
}

async function runOnnx(bytes: Uint8Array, nchw: Float32Array, h: number, w: number): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const out = (await session.run({ [INPUT_NAME]: new ort.Tensor('float32', nchw, [1, 3, h, w]) }))[OUTPUT_NAME];
    return { data: out.data as Float32Array, dims: out.dims };
  } finally {
    await session.release();
  }
}

/**
 * Converts `model`, runs both on the same random h×w image and returns the conversion result and
 * the largest difference (0..1 scale). For inputRange 255 tfjs gets the image ×255 and its output
 * is compared ÷255: what the graph is meant to do around the original network.
 */
async function agreement(model: TinyModel, h: number, w: number, inputRange: 1 | 255 = 1): Promise<{ result: TfjsConvertResult; worst: number }> {
  const result = convertTfjsToOnnx(model.modelJson, model.weightData, { modelName: 'tiny', inputRange });
  const nchw = floats(3 * h * w, seedCounter++, 0, 1);
  const nhwc = new Float32Array(nchw.length);
  for (let c = 0; c < 3; c++) for (let i = 0; i < h * w; i++) nhwc[i * 3 + c] = nchw[c * h * w + i] * inputRange;
  const expected = await runTfjs(model, nhwc, h, w);
  const ours = await runOnnx(result.onnx, nchw, h, w);
  const [, oh, ow, oc] = expected.shape;
  expect(ours.dims).toEqual([1, oc, oh, ow]);
  let worst = 0;
  for (let c = 0; c < oc; c++) {
    for (let i = 0; i < oh * ow; i++) worst = Math.max(worst, Math.abs(ours.data[c * oh * ow + i] - expected.data[i * oc + c] / inputRange));
  }
  return { result, worst };
}

const geometry = (r: TfjsConvertResult) => ({ scale: r.scale, minInputSize: r.minInputSize, sizeMultiple: r.sizeMultiple });

// ---- per layer type ----

describe('each layer type agrees with tfjs-layers on small random inputs', () => {
  test('Conv2D 3×3 same with bias, then 1×1 valid (HWIO → OIHW, non-square image)', async () => {
    const model = tinyModel(...parts(conv('a', 'in', 3, 5), conv('b', 'a', 5, 3, { kernel: [1, 1], padding: 'valid' })));
    const { result, worst } = await agreement(model, 7, 9);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
    expect(geometry(result)).toEqual({ scale: 1, minInputSize: 1, sizeMultiple: 1 });
    expect(result.parameterCount).toBe(3 * 3 * 3 * 5 + 5 + 5 * 3 + 3);
  });

  test('Conv2D 5×5 with relu activation and no bias', async () => {
    const model = tinyModel(...parts(conv('a', 'in', 3, 4, { kernel: [5, 5], activation: 'relu', bias: false }), conv('b', 'a', 4, 3)));
    const { worst } = await agreement(model, 6, 8);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });

  test('Conv2D same padding with even and non-square kernels (2×2, 4×4, 3×1, 1×5): the odd pixel goes after', async () => {
    const model = tinyModel(
      ...parts(conv('a', 'in', 3, 4, { kernel: [2, 2] }), conv('b', 'a', 4, 4, { kernel: [4, 4] }), conv('c', 'b', 4, 4, { kernel: [3, 1] }), conv('d', 'c', 4, 3, { kernel: [1, 5] })),
    );
    const { worst } = await agreement(model, 7, 6);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });

  test('Conv2D with dilation (3×3 at 2, 3×2 at 3×1)', async () => {
    const model = tinyModel(...parts(conv('a', 'in', 3, 4, { dilation: [2, 2] }), conv('b', 'a', 4, 3, { kernel: [3, 2], dilation: [3, 1] })));
    const { worst } = await agreement(model, 9, 8);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });

  test.each([
    [8, 6],
    [7, 9],
  ])('Conv2D with strides 2 (same; kernels 3, 1, 4) between ×2 upsamplings, on %i×%i', async (h, w) => {
    const up = (name: string, input: string) => layer('UpSampling2D', name, [input], { size: [2, 2], data_format: 'channels_last', interpolation: 'nearest' });
    const model = tinyModel(
      ...parts(
        conv('a', 'in', 3, 4, { strides: [2, 2] }),
        up('ua', 'a'),
        conv('b', 'ua', 4, 4, { kernel: [1, 1], strides: [2, 2] }),
        up('ub', 'b'),
        conv('c', 'ub', 4, 3, { kernel: [4, 4], strides: [2, 2] }),
        up('uc', 'c'),
      ),
    );
    const { result, worst } = await agreement(model, h, w);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
    // ceil(n/2)·2 = n only for even n: the tiler must cut even tiles.
    expect(geometry(result)).toEqual({ scale: 1, minInputSize: 2, sizeMultiple: 2 });
  });

  test('Activation layers: relu and linear', async () => {
    const model = tinyModel(...parts(conv('a', 'in', 3, 3), layer('Activation', 'r', ['a'], { activation: 'relu' }), layer('Activation', 'l', ['r'], { activation: 'linear' })));
    const { worst } = await agreement(model, 5, 5);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });

  test('Concatenate along axis 3 and -1 keeps its inputs in order (2 + 1 + 3 channels)', async () => {
    const model = tinyModel(
      ...parts(
        conv('a', 'in', 3, 2),
        conv('b', 'in', 3, 1),
        conv('c', 'in', 3, 3),
        layer('Concatenate', 'cat', ['a', 'b', 'c'], { axis: 3 }),
        layer('Concatenate', 'cat2', ['cat', 'b'], { axis: -1 }),
        conv('out', 'cat2', 7, 3, { kernel: [1, 1] }),
      ),
    );
    const { worst } = await agreement(model, 4, 6);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });

  test('Add of two and of three inputs', async () => {
    const model = tinyModel(
      ...parts(conv('a', 'in', 3, 3), conv('b', 'in', 3, 3), conv('c', 'a', 3, 3), layer('Add', 's2', ['a', 'b']), layer('Add', 's3', ['s2', 'c', 'b'])),
    );
    const { worst } = await agreement(model, 5, 4);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });

  test.each([2, 3, 8])('UpSampling2D nearest ×%i (wide image, so every column index is checked)', async (s) => {
    const model = tinyModel(...parts(conv('a', 'in', 3, 3), layer('UpSampling2D', 'up', ['a'], { size: [s, s], data_format: 'channels_last', interpolation: 'nearest' })));
    const { result, worst } = await agreement(model, 3, 61);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
    expect(geometry(result)).toEqual({ scale: s, minInputSize: 1, sizeMultiple: 1 });
  });

  test('MultiplyBeta, as UpscalerJS registers it', async () => {
    await registerUpscalerJsLayers(tf, 2);
    const model = tinyModel(...parts(conv('a', 'in', 3, 3), layer('MultiplyBeta', 'beta', ['a'], { beta: 0.2 }), layer('Add', 'res', ['beta', 'in'])));
    const { worst } = await agreement(model, 5, 6);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });

  test.each([2, 3, 4, 8])('PixelShuffle%ix, as UpscalerJS registers it (depth-to-space DCR)', async (s) => {
    await registerUpscalerJsLayers(tf, s);
    const model = tinyModel(...parts(conv('pre', 'in', 3, 3 * s * s), layer(`PixelShuffle${s}x`, 'shuffle', ['pre'], { scale: s })));
    const { result, worst } = await agreement(model, 4, 5);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
    expect(geometry(result)).toEqual({ scale: s, minInputSize: 1, sizeMultiple: 1 });
  });

  // Without the range change the graph would compute f(x) where tfjs computes f(255·x)/255; the
  // biases (±0.5) are not scaled, so that would be off by ~0.1, far beyond the tolerance.
  test('a 0..255 model gets input ×255 and output ÷255 in the graph', async () => {
    const model = tinyModel(...parts(conv('a', 'in', 3, 4, { activation: 'relu' }), conv('b', 'a', 4, 3)));
    const { worst } = await agreement(model, 6, 5, 255);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });

  test('a model that is just its input converts to an identity graph', async () => {
    const model = tinyModel([], []);
    const { result, worst } = await agreement(model, 3, 4);
    expect(worst).toBe(0);
    expect(geometry(result)).toEqual({ scale: 1, minInputSize: 1, sizeMultiple: 1 });
  });
});

// ---- weights ----

/** Every uint16 bit pattern once (all halfs: zeros, subnormals, normals, infinities, NaNs), shuffled order irrelevant. */
function allHalfPatterns(): Uint8Array {
  const bytes = new Uint8Array(65536 * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 65536; i++) view.setUint16(i * 2, i, true);
  return bytes;
}

function randomBytes(count: number, seed: number): Uint8Array {
  const next = random(seed);
  return Uint8Array.from({ length: count }, () => Math.floor(next() * 256));
}

describe('weights decode as tfjs-core decodeWeights does', () => {
  const specs: TfjsWeightSpec[] = [
    { name: 'f32', shape: [3, 5], dtype: 'float32' },
    { name: 'u8', shape: [7, 3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.0123, min: -1.7 } },
    { name: 'u16', shape: [33], dtype: 'float32', quantization: { dtype: 'uint16', scale: 3.1e-5, min: -0.9 } },
    { name: 'f16', shape: [65536], dtype: 'float32', quantization: { dtype: 'float16' } },
  ];

  test('float32, uint8 and uint16 (scale, min), and every float16 bit pattern', () => {
    const f32 = f32Bytes(floats(15, 99, -3, 3));
    const data = new Uint8Array([...f32, ...randomBytes(21, 5), ...randomBytes(66, 6), ...allHalfPatterns()]);
    const ours = decodeTfjsWeights(specs, data, 'tiny');
    const theirs = tf.io.decodeWeights(data.slice().buffer, specs as tf.io.WeightsManifestEntry[]);
    for (const spec of specs) {
      const a = ours.get(spec.name)!;
      const b = theirs[spec.name];
      expect(a.shape).toEqual(b.shape);
      const bv = b.dataSync();
      let mismatches = 0;
      for (let i = 0; i < a.values.length; i++) if (!(Object.is(a.values[i], bv[i]) || (Number.isNaN(a.values[i]) && Number.isNaN(bv[i])))) mismatches++;
      expect([spec.name, mismatches]).toEqual([spec.name, 0]);
    }
    tf.dispose(Object.values(theirs));
  });

  test('a model with quantised weights in two manifest groups converts and agrees with tfjs', async () => {
    const a = conv('a', 'in', 3, 4);
    const b = conv('b', 'a', 4, 3);
    // uint8 kernel, uint16 bias, float16 kernel, float32 bias: every stored form in one model.
    const stored = (w: Weight, quantization: TfjsWeightSpec['quantization'], bytes: Uint8Array): Weight => ({ spec: { ...w.spec, quantization }, bytes });
    const halfs = (count: number, seed: number) => {
      // Finite halfs of moderate size: sign, exponent 10..16 (0.0005..2), random mantissa.
      const next = random(seed);
      const bytes = new Uint8Array(count * 2);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < count; i++) view.setUint16(i * 2, (next() < 0.5 ? 0x8000 : 0) | ((10 + Math.floor(next() * 7)) << 10) | Math.floor(next() * 1024), true);
      return bytes;
    };
    const weights = [
      stored(a.weights[0], { dtype: 'uint8', scale: 1 / 255, min: -0.5 }, randomBytes(3 * 3 * 3 * 4, 11)),
      stored(a.weights[1], { dtype: 'uint16', scale: 1 / 65535, min: -0.5 }, randomBytes(4 * 2, 12)),
      stored(b.weights[0], { dtype: 'float16' }, halfs(3 * 3 * 4 * 3, 13)),
      b.weights[1],
    ];
    const model = tinyModel([a.layer, b.layer], weights, [2, 2]);
    expect(model.modelJson.weightsManifest.map((g) => g.weights.length)).toEqual([2, 2]);
    const { worst } = await agreement(model, 5, 7);
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
  });

  test('tfjsShardPaths lists the shards in manifest order, across groups', () => {
    const model = tinyModel(...parts(conv('a', 'in', 3, 3), conv('b', 'a', 3, 3)), [1, 3]);
    expect(tfjsShardPaths(model.modelJson)).toEqual(['group1-shard1of1.bin', 'group2-shard1of1.bin']);
  });
});

// ---- refusals ----

describe('what the converter refuses, with a typed error that names the problem', () => {
  const base = () => tinyModel(...parts(conv('a', 'in', 3, 3)));
  const convert = (m: TinyModel, inputRange: 1 | 255 = 1) => () => convertTfjsToOnnx(m.modelJson, m.weightData, { modelName: 'tiny', inputRange });
  const layers = (m: TinyModel) => (m.modelJson.modelTopology.model_config as { config: { layers: Layer[] } }).config.layers;

  test('unsupported layer classes: all of them listed, with the first layer and the supported list', () => {
    const m = tinyModel(...parts(conv('a', 'in', 3, 3), layer('BatchNormalization', 'bn', ['a']), layer('Dense', 'fc', ['bn']), layer('BatchNormalization', 'bn2', ['fc'])));
    const e = thrown(convert(m));
    expect(e.code).toBe('UPB_TFJS_UNSUPPORTED_LAYER');
    expect(e.message).toContain('BatchNormalization, Dense');
    expect(e.message).toContain('(first: "bn")');
    expect(e.message).toContain('PixelShuffle<N>x');
    expect(e.details).toEqual({ layerClasses: ['BatchNormalization', 'Dense'] });
  });

  test('a class name that is an Object.prototype member is still unknown', () => {
    const m = tinyModel(...parts(conv('a', 'in', 3, 3), layer('constructor', 'odd', ['a'])));
    expect(thrown(convert(m)).code).toBe('UPB_TFJS_UNSUPPORTED_LAYER');
  });

  test.each<[string, (ls: Layer[]) => void, string]>([
    ['a Conv2D activation other than linear/relu', (ls) => (ls[1].config.activation = 'sigmoid'), 'activation "sigmoid"'],
    ['an Activation layer other than linear/relu', (ls) => ls.push(layer('Activation', 'act', ['a'], { activation: 'tanh' })), 'activation "tanh"'],
    ['channels_first', (ls) => (ls[1].config.data_format = 'channels_first'), 'data_format channels_first'],
    ['grouped convolution', (ls) => (ls[1].config.groups = 3), 'groups 3'],
    ['causal padding', (ls) => (ls[1].config.padding = 'causal'), 'padding "causal"'],
    ['strides with dilation', (ls) => Object.assign(ls[1].config, { strides: [2, 2], dilation_rate: [2, 2] }), 'strides > 1 together with dilation_rate > 1'],
    ['bilinear upsampling', (ls) => ls.push(layer('UpSampling2D', 'up', ['a'], { size: [2, 2], interpolation: 'bilinear' })), 'interpolation "bilinear"'],
    ['concatenation along width', (ls) => ls.push(layer('Concatenate', 'cat', ['a', 'in'], { axis: 2 })), 'axis 2'],
    ['a MultiplyBeta beta other than UpscalerJS’ 0.2', (ls) => ls.push(layer('MultiplyBeta', 'b', ['a'], { beta: 0.3 })), 'beta 0.3'],
    ['a PixelShuffle whose config scale differs from its class name', (ls) => ls.push(layer('PixelShuffle2x', 'ps', ['a'], { scale: 3 })), 'config scale 3 in a PixelShuffle2x'],
  ])('UPB_TFJS_UNSUPPORTED_LAYER: %s', (_what, edit, fragment) => {
    const m = base();
    edit(layers(m));
    const e = thrown(convert(m));
    expect(e.code).toBe('UPB_TFJS_UNSUPPORTED_LAYER');
    expect(e.message).toContain(fragment);
    expect(e.message).toMatch(/TF\.js layer \w+ "\w+"/);
  });

  test.each<[string, (m: TinyModel) => void, string]>([
    ['a graph model', (m) => (m.modelJson.format = 'graph-model'), 'only layers models'],
    ['a Sequential model', (m) => ((m.modelJson.modelTopology.model_config as { class_name: string }).class_name = 'Sequential'), '"Sequential"'],
    ['a one-channel input', (m) => (layers(m)[0].config.batch_input_shape = [null, null, null, 1]), '[null,null,null,1]'],
    ['a fixed input size', (m) => (layers(m)[0].config.batch_input_shape = [null, 64, 64, 3]), '[null,64,64,3]'],
    ['a four-channel output', (m) => Object.assign(m, tinyModel(...parts(conv('a', 'in', 3, 4)))), 'has 4 channels'],
    ['two outputs', (m) => (m.modelJson.modelTopology.model_config as { config: { output_layers: unknown[] } }).config.output_layers.push(['in', 0, 0]), '2 outputs'],
    ['a shared layer (two inbound nodes)', (m) => layers(m)[1].inbound_nodes.push([['in', 0, 0, {}]]), 'called 2 times'],
    ['a valid 3×3 convolution (output = input − 2)', (m) => (layers(m)[1].config.padding = 'valid'), 'output height is not a whole multiple of the input height (16 → 14, 17 → 15, 64 → 62)'],
    ['different scales across axes', (m) => layers(m).push(layer('UpSampling2D', 'up', ['a'], { size: [2, 3] })), 'scales 2 (height) and 3 (width) differ'],
  ])('UPB_TFJS_UNSUPPORTED_MODEL: %s', (_what, edit, fragment) => {
    const m = base();
    edit(m);
    // An added last layer becomes the output.
    const cfg = (m.modelJson.modelTopology.model_config as { config: { layers: Layer[]; output_layers: unknown[][] } }).config;
    if (cfg.output_layers.length === 1) cfg.output_layers[0][0] = cfg.layers[cfg.layers.length - 1].name;
    const e = thrown(convert(m));
    expect(e.code).toBe('UPB_TFJS_UNSUPPORTED_MODEL');
    expect(e.message).toContain(fragment);
  });

  test.each<[string, (m: TinyModel) => void, string]>([
    ['not an object', (m) => Object.assign(m, { modelJson: [] }), 'not a JSON object'],
    ['no layers array', (m) => ((m.modelJson.modelTopology.model_config as { config: { layers: unknown } }).config.layers = {}), 'layers should be an array'],
    ['a layer that reads an unknown layer', (m) => (layers(m)[1].inbound_nodes = [[['ghost', 0, 0, {}]]]), 'takes "ghost", which no earlier layer produces'],
    ['Keras 3 node format', (m) => (layers(m)[1].inbound_nodes = [{ args: [], kwargs: {} }]), 'not a Keras 2 node list'],
    ['two layers with one name', (m) => layers(m).push({ ...layers(m)[1] }), 'two layers are named "a"'],
    ['weight data one float short', (m) => (m.weightData = m.weightData.slice(0, -4)), 'the shards do not match the manifest'],
    ['weight data one float too long', (m) => (m.weightData = new Uint8Array([...m.weightData, 0, 0, 0, 0])), 'the manifest describes 336 bytes of weights, the shards hold 340'],
    ['a kernel of the wrong shape', (m) => (m.modelJson.weightsManifest[0].weights[0].shape = [3, 3, 1, 9]), 'has shape [3,3,1,9], the layer needs [3,3,3,3]'],
    ['a missing bias', (m) => (m.modelJson.weightsManifest[0].weights[1].name = 'other/bias'), 'weight "a/bias" is missing'],
    ['an int32 weight', (m) => (m.modelJson.weightsManifest[0].weights[1].dtype = 'int32'), 'dtype int32'],
    ['uint8 quantisation without scale', (m) => (m.modelJson.weightsManifest[0].weights[1].quantization = { dtype: 'uint8' } as TfjsWeightSpec['quantization']), 'needs numeric scale and min'],
    ['an unknown quantisation dtype', (m) => (m.modelJson.weightsManifest[0].weights[1].quantization = { dtype: 'int8' } as unknown as TfjsWeightSpec['quantization']), 'quantization.dtype "int8"'],
    ['a negative dimension', (m) => (m.modelJson.weightsManifest[0].weights[1].shape = [-3]), 'shape should be an array of non-negative integers'],
  ])('UPB_TFJS_FORMAT: %s', (_what, edit, fragment) => {
    const m = base();
    edit(m);
    const e = thrown(convert(m));
    expect(e.code).toBe('UPB_TFJS_FORMAT');
    expect(e.message).toContain(fragment);
  });

  test('an unused weight is reported by name (the manifest does not match the topology)', () => {
    const m = base();
    const extra = conv('ghost', 'in', 3, 3);
    m.modelJson.weightsManifest[0].weights.push(extra.weights[1].spec);
    m.weightData = new Uint8Array([...m.weightData, ...extra.weights[1].bytes]);
    const e = thrown(convert(m));
    expect(e.code).toBe('UPB_TFJS_FORMAT');
    expect(e.message).toContain('1 weight(s) not used by any layer (ghost/bias)');
  });

  test('inputRange other than 1 or 255', () => {
    const m = base();
    expect(thrown(() => convertTfjsToOnnx(m.modelJson, m.weightData, { modelName: 'tiny', inputRange: 100 as 255 })).code).toBe('UPB_INVALID_OPTION');
  });

  test('the base model of these cases converts (each refusal comes from its edit)', () => {
    expect(() => convert(base())()).not.toThrow();
    expect(parseTfjsModel(base().modelJson, 'tiny').layers.map((l) => l.name)).toEqual(['in', 'a']);
  });
});

// ---- purity ----

test('the converter runs without Node: bundled for the browser, it converts in a bare VM context to the same bytes', async () => {
  const bundle = await build({
    entryPoints: [path.join(__dirname, '../../../core/convert/tfjs-to-onnx.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'converter',
    write: false,
    logLevel: 'silent',
  });
  const model = tinyModel(...parts(conv('a', 'in', 3, 12), layer('UpSampling2D', 'up', ['a'], { size: [2, 2] }), conv('b', 'up', 12, 3)));
  const expected = convertTfjsToOnnx(model.modelJson, model.weightData, { modelName: 'tiny', inputRange: 255 }).onnx;
  // No require, process, Buffer or module: only what a browser also has (TextEncoder).
  const context = vm.createContext({ TextEncoder, modelText: JSON.stringify(model.modelJson), weights: Array.from(model.weightData) });
  vm.runInContext(bundle.outputFiles[0].text, context);
  const bytes = vm.runInContext(
    `Array.from(converter.convertTfjsToOnnx(JSON.parse(modelText), Uint8Array.from(weights), { modelName: 'tiny', inputRange: 255 }).onnx)`,
    context,
  ) as number[];
  expect(Buffer.compare(Buffer.from(bytes), Buffer.from(expected))).toBe(0);
});
