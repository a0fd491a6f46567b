import { UpbridgeError } from '../errors';
import { OnnxGraphBuilder } from './onnx-builder';
import { TfjsLayer } from './tfjs-model';

/**
 * One mapping per TF.js layer class, from Keras' NHWC semantics to ONNX's NCHW. Activations are
 * never transposed: the kernels are (HWIO → OIHW), and channel-axis arguments move from axis 3
 * to axis 1. Each handler also states how the layer changes the spatial size, which the
 * converter uses to find the model's scale without running it.
 */

export interface TensorInfo {
  /** ONNX tensor name. */
  name: string;
  channels: number;
}

export interface LayerContext {
  builder: OnnxGraphBuilder;
  /** The float32 values of weight `<layer>/<suffix>`, which must have `shape`; marks it used. */
  weight(layer: TfjsLayer, suffix: string, shape: number[]): Float32Array;
}

export interface LayerHandler {
  /** Adds the layer's nodes, reading `inputs` and writing `output`; returns the output's channel count. */
  emit(layer: TfjsLayer, inputs: TensorInfo[], output: string, ctx: LayerContext): number;
  /** Output length along one spatial axis (0 height, 1 width), or undefined where the layer cannot take these inputs. */
  size(layer: TfjsLayer, axis: 0 | 1, inputs: number[]): number | undefined;
}

export function unsupported(layer: TfjsLayer, what: string): UpbridgeError {
  return new UpbridgeError('UPB_TFJS_UNSUPPORTED_LAYER', `TF.js layer ${layer.className} "${layer.name}": ${what} is not supported by the converter`, {
    layerClass: layer.className,
    layer: layer.name,
  });
}

function malformed(layer: TfjsLayer, what: string): UpbridgeError {
  return new UpbridgeError('UPB_TFJS_FORMAT', `TF.js layer ${layer.className} "${layer.name}": ${what}`, { layerClass: layer.className, layer: layer.name });
}

// ---- config readers (Keras serialises tuples as lists and may write a bare int for a pair) ----

function pair(layer: TfjsLayer, key: string, fallback: number): [number, number] {
  const v = layer.config[key] ?? fallback;
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((x) => Number.isInteger(x) && x > 0)) {
    throw malformed(layer, `${key} should be a positive integer or a pair of them, found ${JSON.stringify(v)}`);
  }
  return [p[0], p[1]];
}

function positiveInt(layer: TfjsLayer, key: string, fallback?: number): number {
  const v = layer.config[key] ?? fallback;
  if (!Number.isInteger(v) || (v as number) <= 0) throw malformed(layer, `${key} should be a positive integer, found ${JSON.stringify(v)}`);
  return v as number;
}

/** A string option; `null` counts as absent (Keras writes `"activation": null` for none). */
function option(layer: TfjsLayer, key: string, fallback: string): string {
  const v = layer.config[key] ?? fallback;
  if (typeof v !== 'string') throw malformed(layer, `${key} should be a string, found ${JSON.stringify(v)}`);
  return v;
}

function requireChannelsLast(layer: TfjsLayer): void {
  const format = option(layer, 'data_format', 'channels_last');
  if (format !== 'channels_last') throw unsupported(layer, `data_format ${format}`);
}

/** Keras activation names the converter maps; each maps to one ONNX op (Identity for linear). */
const ACTIVATIONS: Record<string, string> = { linear: 'Identity', relu: 'Relu' };

function activationOp(layer: TfjsLayer): string {
  const name = option(layer, 'activation', 'linear');
  const op = ACTIVATIONS[name];
  if (!op) throw unsupported(layer, `activation "${name}" (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  return op;
}

const sameSize = (inputs: number[]): number | undefined => (inputs.every((n) => n === inputs[0]) ? inputs[0] : undefined);

// ---- handlers ----

const conv2d: LayerHandler = {
  emit(layer, [input], output, ctx) {
    requireChannelsLast(layer);
    const [kh, kw] = pair(layer, 'kernel_size', 1);
    const strides = pair(layer, 'strides', 1);
    const dilations = pair(layer, 'dilation_rate', 1);
    const padding = option(layer, 'padding', 'valid');
    const filters = positiveInt(layer, 'filters');
    const groups = positiveInt(layer, 'groups', 1);
    const act = activationOp(layer);
    // tfjs-layers has no grouped convolution, so such a model would have no reference to match.
    if (groups !== 1) throw unsupported(layer, `groups ${groups}`);
    // Keras refuses this combination as well (TF's conv2d implements only one of the two).
    if (strides.some((s) => s > 1) && dilations.some((d) => d > 1)) throw unsupported(layer, 'strides > 1 together with dilation_rate > 1');
    if (padding !== 'same' && padding !== 'valid') throw unsupported(layer, `padding "${padding}"`);
    const useBias = layer.config.use_bias ?? true;
    if (typeof useBias !== 'boolean') throw malformed(layer, `use_bias should be a boolean, found ${JSON.stringify(useBias)}`);

    const cin = input.channels;
    const hwio = ctx.weight(layer, 'kernel', [kh, kw, cin, filters]);
    // HWIO → OIHW: oihw[o][i][y][x] = hwio[y][x][i][o].
    const oihw = new Float32Array(hwio.length);
    for (let o = 0; o < filters; o++) {
      for (let i = 0; i < cin; i++) {
        for (let y = 0; y < kh; y++) {
          for (let x = 0; x < kw; x++) oihw[((o * cin + i) * kh + y) * kw + x] = hwio[((y * kw + x) * cin + i) * filters + o];
        }
      }
    }
    const b = ctx.builder;
    const inputs = [input.name, b.addFloatInitializer(`${layer.name}_kernel`, [filters, cin, kh, kw], oihw)];
    if (useBias) inputs.push(b.addFloatInitializer(`${layer.name}_bias`, [filters], ctx.weight(layer, 'bias', [filters])));

    const attributes: Record<string, number[] | string> = { kernel_shape: [kh, kw], strides, dilations };
    if (padding === 'valid') {
      attributes.pads = [0, 0, 0, 0];
    } else if (strides[0] === 1 && strides[1] === 1) {
      // TF "same" at stride 1 pads (k−1)·d in total, the odd pixel after: a fixed amount.
      const [th, tw] = [(kh - 1) * dilations[0], (kw - 1) * dilations[1]];
      attributes.pads = [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
    } else {
      // With strides the total depends on the input size; SAME_UPPER is TF's rule (extra pixel after).
      attributes.auto_pad = 'SAME_UPPER';
    }
    if (act === 'Identity') {
      b.addNode('Conv', inputs, [output], attributes, layer.name);
    } else {
      const pre = b.uniqueName(`${layer.name}_preact`);
      b.addNode('Conv', inputs, [pre], attributes, layer.name);
      b.addNode(act, [pre], [output]);
    }
    return filters;
  },
  size(layer, axis, [n]) {
    const k = pair(layer, 'kernel_size', 1)[axis];
    const s = pair(layer, 'strides', 1)[axis];
    const d = pair(layer, 'dilation_rate', 1)[axis];
    if (option(layer, 'padding', 'valid') === 'same') return Math.ceil(n / s);
    const span = (k - 1) * d + 1;
    return n >= span ? Math.floor((n - span) / s) + 1 : undefined;
  },
};

const activation: LayerHandler = {
  emit(layer, [input], output, ctx) {
    ctx.builder.addNode(activationOp(layer), [input.name], [output], {}, layer.name);
    return input.channels;
  },
  size: (_layer, _axis, [n]) => n,
};

const concatenate: LayerHandler = {
  emit(layer, inputs, output, ctx) {
    const axis = layer.config.axis ?? -1;
    // NHWC channels are axis 3 (or −1); joining along height or width has no use in an upscaler.
    if (axis !== 3 && axis !== -1) throw unsupported(layer, `axis ${JSON.stringify(axis)} (only the channel axis, 3 or -1)`);
    if (inputs.length < 2) throw malformed(layer, `${inputs.length} input(s); Concatenate needs at least 2`);
    ctx.builder.addNode('Concat', inputs.map((t) => t.name), [output], { axis: 1 }, layer.name);
    return inputs.reduce((sum, t) => sum + t.channels, 0);
  },
  size: (_layer, _axis, inputs) => sameSize(inputs),
};

const add: LayerHandler = {
  emit(layer, inputs, output, ctx) {
    if (inputs.length < 2) throw malformed(layer, `${inputs.length} input(s); Add needs at least 2`);
    if (!inputs.every((t) => t.channels === inputs[0].channels)) {
      throw malformed(layer, `inputs have ${inputs.map((t) => t.channels).join(', ')} channels; Add needs equal shapes`);
    }
    const b = ctx.builder;
    // ((a + b) + c) + …: the order tfjs-layers' Add accumulates in.
    let acc = inputs[0].name;
    for (let i = 1; i < inputs.length; i++) {
      const out = i === inputs.length - 1 ? output : b.uniqueName(`${layer.name}_sum${i}`);
      b.addNode('Add', [acc, inputs[i].name], [out], {}, i === inputs.length - 1 ? layer.name : undefined);
      acc = out;
    }
    return inputs[0].channels;
  },
  size: (_layer, _axis, inputs) => sameSize(inputs),
};

const upSampling2d: LayerHandler = {
  emit(layer, [input], output, ctx) {
    requireChannelsLast(layer);
    const [sh, sw] = pair(layer, 'size', 2);
    const interpolation = option(layer, 'interpolation', 'nearest');
    if (interpolation !== 'nearest') throw unsupported(layer, `interpolation "${interpolation}"`);
    const b = ctx.builder;
    const scales = b.addFloatInitializer(`${layer.name}_scales`, [4], [1, 1, sh, sw]);
    // tfjs-layers calls resizeNearestNeighbor(alignCorners false, halfPixelCenters false):
    // src = floor(dst · in/out) = floor(dst / s), which is ONNX asymmetric + floor.
    b.addNode('Resize', [input.name, '', scales], [output], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, layer.name);
    return input.channels;
  },
  size: (layer, axis, [n]) => n * pair(layer, 'size', 2)[axis],
};

/** UpscalerJS multiplies by this constant whatever the config says (esrgan.js: `BETA = 0.2`). */
const UPSCALERJS_BETA = 0.2;

const multiplyBeta: LayerHandler = {
  emit(layer, [input], output, ctx) {
    // ISR's original layer multiplies by config.beta instead; refuse a model where the two disagree.
    const beta = layer.config.beta;
    if (beta !== undefined && beta !== UPSCALERJS_BETA) throw unsupported(layer, `beta ${JSON.stringify(beta)} (UpscalerJS's MultiplyBeta always uses ${UPSCALERJS_BETA})`);
    const b = ctx.builder;
    b.addNode('Mul', [input.name, b.addFloatInitializer(`${layer.name}_beta`, [], [UPSCALERJS_BETA])], [output], {}, layer.name);
    return input.channels;
  },
  size: (_layer, _axis, [n]) => n,
};

/** UpscalerJS names the class after the scale it was registered with: PixelShuffle2x … PixelShuffle8x. */
const PIXEL_SHUFFLE = /^PixelShuffle(\d+)x$/;

function shuffleFactor(layer: TfjsLayer): number {
  const fromName = Number(PIXEL_SHUFFLE.exec(layer.className)![1]);
  const fromConfig = layer.config.scale ?? fromName;
  // The registered class uses the scale in its name, not the config; refuse a model where they differ.
  if (fromConfig !== fromName || fromName < 1) throw unsupported(layer, `config scale ${JSON.stringify(fromConfig)} in a ${layer.className} layer`);
  return fromName;
}

const pixelShuffle: LayerHandler = {
  emit(layer, [input], output, ctx) {
    const s = shuffleFactor(layer);
    if (input.channels % (s * s) !== 0) throw malformed(layer, `${input.channels} input channels do not divide by ${s}²`);
    // tf.depthToSpace(x, s, 'NHWC'): out[h·s+i, w·s+j, k] = in[h, w, (i·s+j)·C + k], which in
    // NCHW is ONNX DepthToSpace mode DCR (not CRD, PyTorch's pixel_shuffle order).
    ctx.builder.addNode('DepthToSpace', [input.name], [output], { blocksize: s, mode: 'DCR' }, layer.name);
    return input.channels / (s * s);
  },
  size: (layer, _axis, [n]) => n * shuffleFactor(layer),
};

const HANDLERS: Record<string, LayerHandler> = {
  Conv2D: conv2d,
  Activation: activation,
  Concatenate: concatenate,
  Add: add,
  UpSampling2D: upSampling2d,
  MultiplyBeta: multiplyBeta,
};

/** Layer classes the converter maps (InputLayer becomes the graph input). */
export const SUPPORTED_TFJS_LAYERS = ['InputLayer', ...Object.keys(HANDLERS), 'PixelShuffle<N>x'];

export function layerHandler(className: string): LayerHandler | undefined {
  if (Object.hasOwn(HANDLERS, className)) return HANDLERS[className];
  return PIXEL_SHUFFLE.test(className) ? pixelShuffle : undefined;
}
